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
    code = f"import sys, bot.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_lists_the_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("ingest", "sources", "ask", "summarise", "chat"):
        assert command in out.stdout


def test_chromadb_is_imported_without_overrides_checks_and_the_decorator_is_restored() -> None:
    code = (
        "import overrides, sys\n"
        "before = (overrides.override, overrides.overrides)\n"
        "from bot.store import import_chromadb\n"
        "chromadb = import_chromadb()\n"
        "from chromadb.api.rust import RustBindingsAPI\n"
        "assert (overrides.override, overrides.overrides) == before\n"
        "assert getattr(RustBindingsAPI.heartbeat, '__override__', False)\n"
        "assert import_chromadb() is sys.modules['chromadb']\n"
        "client = chromadb.EphemeralClient()\n"
        "print(client.heartbeat() > 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "True"
