"""`bot serve` as clients use it: httpx against a real uvicorn on 127.0.0.1, over a real index
(Chroma, the bundled MiniLM, the seed articles); a fake LLM only where an answer needs a model."""

from __future__ import annotations

import html
import json
import os
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.answer.providers import Message, Provider, get_provider
from bot.app.ingest import list_sources
from bot.core.errors import BotError
from bot.core.settings import Settings
from bot.core.types import NO_ANSWER
from bot.serve.api import create_app
from bot.serve.state import ServeState

from .fakes import FakeChatModel, fake_provider
from .live_server import free_port, live_server, wait_for_json

QUESTION = "What did Zelensky announce about prisoners?"
# A made-up key, built at run time: no key-shaped literal in the repository.
KEY = "sk-test-" + secrets.token_hex(16)
TOKEN = "a-long-enough-serve-token-0123"
REPO = Path(__file__).resolve().parent.parent


def _settings(data_dir: Path, **extra: object) -> Settings:
    return Settings(data_dir=data_dir, llm="extractive", **extra)  # type: ignore[arg-type]


_PASSAGE_RE = re.compile(r'<passage id="(\d+)"[^>]*>\n(.*?)\n</passage>', re.S)


def _model_reply(messages: list[Message]) -> str:
    """The first sentence of the first passage, citing it, as a faithful model would write."""
    found = _PASSAGE_RE.findall(messages[-1].content)
    if not found:
        return NO_ANSWER
    n, body = found[0]
    first = re.split(r"(?<=[.!?])\s+", html.unescape(body).strip())[0]
    return f"{first.rstrip('.')} [{n}]."


class Fakes:
    """The providers the test server makes: a fake chat model for `openai`, the real rest."""

    def __init__(self, settings: Settings, model: FakeChatModel) -> None:
        self.settings = settings
        self.model = model

    def __call__(self, llm: str | None) -> Provider:
        if llm == "openai":
            return fake_provider(self.model)
        return get_provider(self.settings, llm)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve-data")


@pytest.fixture(scope="module")
def model() -> FakeChatModel:
    return FakeChatModel(respond=_model_reply, delay=0.2)


@pytest.fixture(scope="module")
def server(data_dir: Path, model: FakeChatModel) -> Iterator[str]:
    settings = _settings(data_dir)
    with live_server(ServeState(settings, provider_for=Fakes(settings, model))) as url:
        yield url


def _ask(url: str, **body: object) -> httpx.Response:
    return httpx.post(f"{url}/api/ask", json={"question": QUESTION, **body}, timeout=60)


def _without_timings(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "timings_ms"}


def test_ask_returns_exactly_the_ask_json_object(server: str, data_dir: Path) -> None:
    response = _ask(server)
    assert response.status_code == 200
    env = {**os.environ, "BOT_DATA_DIR": str(data_dir), "BOT_LLM": "extractive"}
    cli = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--json", QUESTION],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    served = response.json()
    assert not served["refused"] and served["sentences"]
    assert _without_timings(served) == _without_timings(json.loads(cli.stdout))


def test_each_passage_is_its_articles_text_between_its_offsets(server: str) -> None:
    passages = _ask(server).json()["passages"]
    assert passages
    for passage in passages:
        article = httpx.get(f"{server}/api/articles/{passage['article_id']}").json()
        assert article["text"][passage["start"] : passage["end"]] == passage["text"]
        assert article["title"] == passage["title"]
    missing = httpx.get(f"{server}/api/articles/no-such-article")
    assert missing.status_code == 404
    assert set(missing.json()) == {"error", "hint"}


def test_sources_lists_the_indexed_articles(server: str, data_dir: Path) -> None:
    served = httpx.get(f"{server}/api/sources").json()
    assert served == list_sources(_settings(data_dir))
    assert len(served) == len(list((REPO / "seeds").iterdir()))


def test_stream_sends_the_tokens_then_the_checked_result(server: str) -> None:
    events: list[tuple[str, dict]] = []
    body = {"question": QUESTION, "llm": "openai"}
    with httpx.stream("POST", f"{server}/api/ask/stream", json=body, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: ") :])))
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "result" and kinds.count("result") == 1
    assert kinds[:-1] == ["token"] * (len(kinds) - 1) and len(kinds) > 3  # word by word
    result = events[-1][1]
    assert result["provider"] == "openai" and result["model"] == "fake-chat"
    streamed = "".join(data["text"] for _, data in events[:-1])
    assert streamed.strip().endswith("[1].")
    assert not result["refused"] and result["sentences"][0]["citations"] == [1]


def test_a_follow_up_is_rewritten_from_the_conversation(server: str) -> None:
    first = _ask(server).json()
    turn = {"asked": QUESTION, "question": first["question"], "answer": first["answer"]}
    reply = _ask(server, question="what else did he say?", history=[turn]).json()
    assert reply["asked"] == "what else did he say?"
    assert reply["rewrite"]["method"] == "keywords"
    assert "Zelensky" in reply["question"]


def test_summarise_takes_the_summarise_options(server: str) -> None:
    body = {"topic": "prisoners", "length": "short"}
    result = httpx.post(f"{server}/api/summarise", json=body, timeout=120).json()
    assert result["kind"] == "summary" and result["topic"] == "prisoners"
    assert result["length"] == "short" and result["sentences"]
    bad = httpx.post(f"{server}/api/summarise", json={"length": "huge"}, timeout=30)
    assert bad.status_code == 422 and set(bad.json()) == {"error", "hint"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"question": "   "}, 400),
        ({"question": "why? " * 450}, 400),  # over the question limit, under the field limit
        ({"question": "x" * 5000}, 422),
        ({"question": QUESTION, "k": 0}, 422),
        ({"question": QUESTION, "since": "not a date"}, 400),
        ({"question": QUESTION, "llm": "gpt-9"}, 422),
        ({}, 422),
    ],
)
def test_bad_requests_are_one_json_error(server: str, body: dict, status: int) -> None:
    response = httpx.post(f"{server}/api/ask", json=body, timeout=30)
    assert response.status_code == status
    data = response.json()
    assert set(data) == {"error", "hint"} and data["error"] and "Traceback" not in response.text


def test_malformed_and_oversized_bodies_are_refused(server: str) -> None:
    broken = httpx.post(
        f"{server}/api/ask", content=b'{"question": ', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422 and set(broken.json()) == {"error", "hint"}
    huge = json.dumps({"question": QUESTION, "source": "x" * 100_000}).encode()
    declared = httpx.post(f"{server}/api/ask", content=huge)
    assert declared.status_code == 413 and set(declared.json()) == {"error", "hint"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"question": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    streamed = httpx.post(f"{server}/api/ask", content=chunks())
    assert streamed.status_code == 413


def test_model_answers_run_under_the_concurrency_limit(server: str, model: FakeChatModel) -> None:
    model.max_active = 0
    statuses: list[int] = []

    def one() -> None:
        statuses.append(_ask(server, llm="openai").status_code)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 6
    assert 1 <= model.max_active <= Settings().serve_concurrency


def test_health_names_the_provider_and_the_docs_are_served(server: str) -> None:
    health = httpx.get(f"{server}/healthz").json()
    assert health["status"] == "ok" and health["provider"] == "extractive" and health["generation"]
    assert httpx.get(f"{server}/docs").status_code == 200
    paths = httpx.get(f"{server}/openapi.json").json()["paths"]
    assert {"/api/ask", "/api/ask/stream", "/api/summarise", "/api/sources"} <= set(paths)
    page = httpx.get(f"{server}/")
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_the_api_key_never_reaches_a_response_or_the_log(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    model = FakeChatModel(BotError(f"the provider refused key {KEY}"), RuntimeError(f"{KEY} boom"))
    settings = _settings(data_dir)
    with live_server(ServeState(settings, provider_for=Fakes(settings, model))) as url:
        refused = _ask(url, llm="openai")
        crashed = _ask(url, llm="openai")
    assert refused.status_code == 400 and "refused key" in refused.json()["error"]
    assert crashed.status_code == 500 and set(crashed.json()) == {"error", "hint"}
    for text in (refused.text, crashed.text, caplog.text):
        assert KEY not in text and KEY[:16] not in text
    assert "RuntimeError" in caplog.text


def test_with_a_token_every_api_call_needs_it(data_dir: Path) -> None:
    with live_server(ServeState(_settings(data_dir, serve_token=TOKEN))) as url:
        assert httpx.get(f"{url}/api/sources").status_code == 401
        wrong = httpx.get(f"{url}/api/sources", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and set(wrong.json()) == {"error", "hint"}
        assert _ask(url).status_code == 401
        right = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{url}/api/sources", headers=right).status_code == 200
        assert httpx.get(f"{url}/healthz").status_code == 200  # for load balancers


def test_no_cors_unless_configured(data_dir: Path) -> None:
    from fastapi.testclient import TestClient

    origin = {"Origin": "http://elsewhere.example", "Access-Control-Request-Method": "POST"}
    closed = TestClient(create_app(ServeState(_settings(data_dir))))
    assert "access-control-allow-origin" not in closed.options("/api/ask", headers=origin).headers
    opened = ServeState(_settings(data_dir, serve_cors_origins="http://elsewhere.example"))
    preflight = TestClient(create_app(opened)).options("/api/ask", headers=origin)
    assert preflight.headers["access-control-allow-origin"] == "http://elsewhere.example"


def _bot(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, timeout=timeout
    )


def test_serving_beyond_loopback_needs_a_long_token(monkeypatch: pytest.MonkeyPatch) -> None:
    open_bind = _bot("serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert open_bind.returncode == 1
    assert open_bind.stderr.startswith("error: ") and "BOT_SERVE_TOKEN" in open_bind.stderr
    assert len(open_bind.stderr.strip().splitlines()) == 1
    monkeypatch.setenv("BOT_SERVE_TOKEN", "short")
    weak = _bot("serve", "--port", str(free_port()))
    assert weak.returncode == 1 and "shorter than" in weak.stderr and "short" not in weak.stdout


def test_bot_serve_runs_and_stops(data_dir: Path) -> None:
    port = free_port()
    env = {**os.environ, "BOT_DATA_DIR": str(data_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = wait_for_json(f"http://127.0.0.1:{port}/healthz")
        assert health["status"] == "ok"
        assert _ask(f"http://127.0.0.1:{port}").json()["passages"]
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert "Traceback" not in err
