"""The same commands against a real `chroma run` server on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core.errors import BotError
from bot.core.settings import get_settings

from .chroma_run import chroma_run, free_port

pytestmark = pytest.mark.server


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    with chroma_run(tmp_path) as url:
        yield url


def test_ingest_sources_and_ask_against_a_server(
    chroma_server: str, monkeypatch, seeds_dir
) -> None:
    from bot.app.ask import answer_question
    from bot.app.ingest import ingest_paths, list_sources

    monkeypatch.setenv("BOT_CHROMA_URL", chroma_server)
    get_settings.cache_clear()
    report = ingest_paths([seeds_dir])
    assert report.added == 2 and report.chunks_embedded > 0
    again = ingest_paths([seeds_dir])
    assert (again.unchanged, again.chunks_embedded) == (2, 0)
    assert len(list_sources()) == 2
    result = answer_question("what did Zelensky announce?")
    assert not result.refused
    assert result.passages and all(p.path.endswith(".txt") for p in result.passages)
    # Nothing was written to the embedded store in the data directory.
    assert not (get_settings().data_dir / "chroma" / "chroma.sqlite3").exists()


def test_a_server_that_is_down_is_one_clear_error(monkeypatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("BOT_CHROMA_URL", url)
    get_settings.cache_clear()
    from bot.index.store import open_store

    with pytest.raises(BotError, match=url):
        open_store(get_settings())
    result = subprocess.run(
        [sys.executable, "-m", "bot", "sources"],
        capture_output=True,
        text=True,
        env={**os.environ, "BOT_CHROMA_URL": url},
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and url in lines[0] and "Traceback" not in result.stderr
