"""Slow failures are bounded: BOT_LLM_DEADLINE caps a request across its retries and waits, a
refused connection fails at once, a wait the user would notice is announced on one line, and a
Retry-After beyond the deadline fails at once naming the fix. Chat (through the real CLI) and
embeddings follow the same rule, against servers on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from bot.core.errors import BotError, BotNotice
from bot.core.settings import Settings
from tests.llm_server import FakeOpenAIServer, Reply, clean_env, closed_port_url, error_body
from tests.test_llm_faults import CITED, QUESTION, make_key, run_in_process

BUSY = error_body("Rate limit reached", "rate_limit_exceeded")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding the seed index (built once for the module)."""
    from bot.app.ask import AskOptions, answer_question

    base = tmp_path_factory.mktemp("deadline")
    data = base / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        settings = Settings(BOT_DATA_DIR=str(data), BOT_LLM="extractive")
        assert answer_question("warm up", AskOptions(llm="extractive"), settings=settings).passages
    return data


def _env(data: Path, url: str, **extra: str) -> dict[str, str]:
    return clean_env(
        data,
        BOT_LLM="openai",
        OPENAI_API_KEY=make_key(),
        OPENAI_BASE_URL=url,
        BOT_OPENAI_MODEL="fake-model",
        BOT_MIN_RELEVANCE="0",  # the model is always asked
        **extra,
    )


def _ask(data: Path, url: str, **extra: str) -> tuple[int, str, str, float]:
    """`bot ask` in this process: exit code, stdout, stderr, and when it ended (time.monotonic:
    the server's `request_times` say when the request began, after the imports)."""
    code, out, err, _ = run_in_process(_env(data, url, **extra), ["ask", QUESTION])
    return code, out.decode(), err.decode(), time.monotonic()


def _one_error(code: int, out: str, err: str) -> str:
    assert code == 1, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "Traceback" not in err
    return lines[0]


def test_retry_after_beyond_the_deadline_fails_at_once(seeded: Path) -> None:
    busy = Reply(status=429, body=BUSY, headers={"Retry-After": "30"})
    with FakeOpenAIServer(busy) as server:
        code, out, err, ended = _ask(
            seeded, server.url, BOT_LLM_DEADLINE="10", BOT_LLM_MAX_RETRIES="3"
        )
    line = _one_error(code, out, err)
    assert line == (
        f"error: The LLM server at {server.url} asks to wait 30 s before a retry (Retry-After), "
        "which would overrun BOT_LLM_DEADLINE (10 s); try again later or raise BOT_LLM_DEADLINE"
    )
    assert server.served == 1
    assert ended - server.request_times[0] < 5  # no wait: a single one would be 30 s


def test_a_busy_server_gets_one_progress_line_then_the_answer(seeded: Path) -> None:
    busy = Reply(status=429, body=BUSY, headers={"Retry-After": "2"})
    with FakeOpenAIServer(busy, busy, Reply(text=CITED)) as server:
        code, out, err, _ = _ask(seeded, server.url, BOT_LLM_MAX_RETRIES="3")
    assert code == 0, err
    assert server.served == 3
    assert err.splitlines() == [
        f"The LLM server at {server.url} is busy (HTTP 429); retrying in 2 s "
        "(gives up after 60 s, BOT_LLM_DEADLINE)…"
    ]
    assert "Zelensky announced that prisoners with combat experience" in out


def test_a_hanging_server_fails_within_the_deadline(seeded: Path) -> None:
    hang = Reply(text=CITED, delay=120)  # answers long after any timeout
    with FakeOpenAIServer(hang) as server:
        code, out, err, ended = _ask(
            seeded, server.url, BOT_LLM_DEADLINE="3", BOT_LLM_TIMEOUT="60", BOT_LLM_MAX_RETRIES="3"
        )
    line = _one_error(code, out, err)
    assert line == (
        f"error: The LLM server at {server.url} did not answer within BOT_LLM_DEADLINE (3 s); "
        "raise it or try again later"
    )
    assert server.served == 1
    assert 2.5 < ended - server.request_times[0] < 10  # one attempt of BOT_LLM_TIMEOUT: 60 s


def test_a_closed_port_fails_at_once_in_its_own_process(seeded: Path) -> None:
    url = closed_port_url()
    env = _env(seeded, url, BOT_LLM_MAX_RETRIES="3")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "ask", QUESTION],
        env=env,
        cwd=seeded,
        capture_output=True,
        timeout=300,
    )
    line = _one_error(done.returncode, done.stdout.decode(), done.stderr.decode())
    assert line == (
        f"error: The LLM server at {url} did not answer (connection refused); is it running? "
        "Check OPENAI_BASE_URL."
    )


def test_a_silent_server_is_announced_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.core.retry as retry

    monkeypatch.setattr(retry, "SILENT_NOTICE_S", 0.3)
    rule = retry.RetryRule(deadline=1.5, timeout=60, retries=2, subject="The test server")
    calls: list[float] = []

    def attempt(timeout: float) -> None:
        calls.append(timeout)
        time.sleep(timeout)
        raise TimeoutError("no answer")

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(TimeoutError):
            retry.call_with_retries(attempt, rule)
    notices = [str(w.message) for w in seen if issubclass(w.category, BotNotice)]
    assert notices == [
        "The test server has not answered for 0.3 s; still waiting "
        "(gives up after 1.5 s, BOT_LLM_DEADLINE)…"
    ]
    assert len(calls) == 1 and calls[0] <= 1.5  # the deadline capped the attempt


# --- embeddings: the same rule --------------------------------------------------------------


def _embedder(url: str, **values: Any) -> Any:
    from bot.index.openai_embeddings import OpenAIEmbedder

    return OpenAIEmbedder(
        Settings(OPENAI_API_KEY=make_key(), OPENAI_BASE_URL=url, BOT_EMBEDDING="openai", **values)
    )


def test_embeddings_fail_at_once_on_a_closed_port() -> None:
    embedder = _embedder(closed_port_url(), BOT_LLM_MAX_RETRIES=3)
    embedder._get_client()  # the SDK imported: only the request is timed
    start = time.monotonic()
    with pytest.raises(BotError, match="OpenAI embedding request failed"):
        embedder.embed(["hello"])
    assert time.monotonic() - start < 2.0  # three retries back off 2.6 s at least


def test_embeddings_refuse_a_retry_after_beyond_the_deadline() -> None:
    busy = Reply(status=429, body=BUSY, headers={"Retry-After": "30"})
    with FakeOpenAIServer(busy) as server:
        embedder = _embedder(server.url, BOT_LLM_MAX_RETRIES=3, BOT_LLM_DEADLINE=5)
        start = time.monotonic()
        with pytest.raises(BotError, match=r"asks to wait 30 s .*raise BOT_LLM_DEADLINE"):
            embedder.embed(["hello"])
    assert time.monotonic() - start < 5
    assert server.served == 1
