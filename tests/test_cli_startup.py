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
    for command in ("ingest", "sources", "ask"):
        assert command in out.stdout
