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


# Run in a fresh interpreter: importing bot's modules, opening a store and asking it something
# must leave the host as it was: other libraries' attributes, sys.modules, the garbage collector,
# os._exit and the environment.
HOST_UNCHANGED = """
import gc, os, sys, overrides
from types import ModuleType
exporter = "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"
decorators = (overrides.override, overrides.overrides)
os_exit, environ = os._exit, dict(os.environ)
import bot.ui.cli, bot.app.ask, bot.app.chat, bot.app.ingest, bot.app.summarise, bot.index.search
from bot.core.settings import Settings
from bot.index.store import open_store
store = open_store(Settings(BOT_DATA_DIR=sys.argv[1]), create=True)
print(store.is_empty(), "chromadb" in sys.modules)
assert (overrides.override, overrides.overrides) == decorators, "overrides was replaced"
found = sys.modules.get(exporter)
assert found is None or getattr(found, "__file__", None), f"{exporter} is planted: {found!r}"
planted = [
    name for name, module in sys.modules.items()
    if isinstance(module, ModuleType) and module.__spec__ is None and name.startswith(
        ("bot", "chromadb", "opentelemetry", "overrides", "onnxruntime", "numpy", "grpc")
    )
]
assert not planted, planted
assert gc.isenabled() and gc.get_freeze_count() == 0, "the garbage collector was switched"
assert os._exit is os_exit
assert dict(os.environ) == environ, set(os.environ.items()) ^ set(environ.items())
"""


def test_importing_bot_and_opening_a_store_leave_the_host_unchanged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = subprocess.run(
        [sys.executable, "-c", HOST_UNCHANGED, str(tmp_path / "data")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "True"]
