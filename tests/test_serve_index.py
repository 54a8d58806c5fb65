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
