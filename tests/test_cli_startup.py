"""`bot --help` must stay fast: importing the CLI pulls in no heavy library."""

from __future__ import annotations

import subprocess
import sys

HEAVY = [
    "chromadb",
    "onnxruntime",
    "openai",
    "langchain_core",
    "langchain_openai",
    "llama_cpp",
    "trafilatura",
    "bm25s",
    "tokenizers",
    "numpy",
]


def test_importing_the_cli_imports_no_heavy_library() -> None:
    code = f"import sys, bot.ui.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_lists_the_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("ingest", "sources", "ask", "summarise", "chat"):
        assert command in out.stdout


def test_chromadb_is_imported_without_overrides_checks_or_the_otlp_exporter() -> None:
    code = (
        "import sys, overrides\n"
        "from bot.index import store\n"
        "chromadb = store.import_chromadb()\n"
        "assert overrides.override is overrides.overrides is store._mark_override\n"
        "from chromadb.api.rust import RustBindingsAPI\n"
        "assert getattr(RustBindingsAPI.heartbeat, '__override__', False)\n"
        "assert store.import_chromadb() is sys.modules['chromadb']\n"
        "assert 'grpc' not in sys.modules\n"
        "assert store._OTLP_EXPORTER not in sys.modules\n"
        "print(chromadb.EphemeralClient().heartbeat() > 0)\n"
        # Asked for (CHROMA_OTEL_COLLECTION_ENDPOINT), the real exporter is imported and made.
        "from chromadb.telemetry import opentelemetry as otel\n"
        "exporter = otel.OTLPSpanExporter(endpoint='http://127.0.0.1:9', insecure=True)\n"
        "real = sys.modules[store._OTLP_EXPORTER].OTLPSpanExporter\n"
        "print(type(exporter) is real, 'grpc' in sys.modules)\n"
        "exporter.shutdown()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "True", "True"]
