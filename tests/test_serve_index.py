"""`bot serve` while another process writes the index: every ask is answered from the old
generation or the new one, and the new one is answered from without a restart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from bot.core.settings import Settings
from bot.serve.state import ServeState

from .live_server import live_server

REPO = Path(__file__).resolve().parent.parent
QUESTION = "What did Zelensky announce about prisoners?"
NEW_QUESTION = "How many seals did the Saltmarsh lighthouse keeper count?"
NEW_ARTICLE = (
    "Saltmarsh lighthouse keeper counts record seal colony\n\n"
    "The Saltmarsh lighthouse keeper counted 412 grey seals on the northern sandbank on Tuesday, "
    "the largest colony recorded there since the count began. The keeper said the seals arrived "
    "after a week of calm weather."
)


def _answer(url: str, question: str) -> dict:
    response = httpx.post(f"{url}/api/ask", json={"question": question}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_asks_go_on_during_an_ingest_and_the_new_generation_needs_no_restart(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    news = tmp_path / "news"
    news.mkdir()
    (news / "saltmarsh.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    settings = Settings(data_dir=data_dir, llm="extractive")  # type: ignore[call-arg]
    with live_server(ServeState(settings)) as url:
        before = httpx.get(f"{url}/healthz").json()["generation"]
        old = _answer(url, QUESTION)
        assert _answer(url, NEW_QUESTION)["refused"]
        env = {**os.environ, "BOT_DATA_DIR": str(data_dir), "BOT_LLM": "extractive"}
        ingest = subprocess.Popen(
            [sys.executable, "-m", "bot", "ingest", str(REPO / "seeds"), str(news)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        during = []
        while ingest.poll() is None:
            during.append(_answer(url, QUESTION))
        out, err = ingest.communicate()
        assert ingest.returncode == 0, err
        after = httpx.get(f"{url}/healthz").json()["generation"]
        assert after != before
        fresh = _answer(url, NEW_QUESTION)
        new = _answer(url, QUESTION)
    assert during, "no ask ran while the ingest did"
    for result in during:  # the old index or the new one, whole
        assert result["answer"] in (old["answer"], new["answer"])
        assert result["passages"] in (old["passages"], new["passages"])
    assert not fresh["refused"] and "412" in fresh["answer"]
    assert any("saltmarsh.txt" in p["path"] for p in fresh["passages"] if p["cited"])


def test_the_previous_generations_keyword_index_stays_loaded(tmp_path: Path) -> None:
    """A request that began on the old generation still finds its BM25 index in memory after a
    new generation was loaded (it is neither read from disk nor rebuilt again)."""
    from bot.app.ingest import ingest_paths
    from bot.index.keyword import load_lexical_index
    from bot.index.store import open_reader

    news = tmp_path / "news"
    news.mkdir()
    settings = Settings(data_dir=tmp_path / "data", llm="extractive")  # type: ignore[call-arg]
    ingest_paths([REPO / "seeds", news], settings)
    old = open_reader(settings)
    old_index = load_lexical_index(old)
    (news / "saltmarsh.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    ingest_paths([REPO / "seeds", news], settings, embedder=old.embedder)
    new = open_reader(settings, old.embedder)
    assert new.generation != old.generation
    new_index = load_lexical_index(new)
    assert new_index is not old_index
    assert load_lexical_index(old) is old_index
    assert load_lexical_index(new) is new_index
