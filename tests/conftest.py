"""Shared fixtures: every test gets its own data directory and a clean provider environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"

# Variables that would let a test reach a real provider, a developer's index or tracing service.
_PROVIDER_VARS = [
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT",
    "LANGSMITH_TRACING",
    "LANGCHAIN_TRACING_V2",
    "LANGSMITH_API_KEY",
]


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BOT_CACHE_DIR for the whole run: models derived from the installed ones (the fast question
    model) are built once per run, in a temp folder, never in the developer's own cache. Set in
    the environment for the session, so module fixtures that start `bot` see it too."""
    folder = tmp_path_factory.mktemp("bot-cache")
    before = os.environ.get("BOT_CACHE_DIR")
    os.environ["BOT_CACHE_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("BOT_CACHE_DIR", None)
    else:
        os.environ["BOT_CACHE_DIR"] = before


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_cache: Path) -> Path:
    """A fresh data dir, no provider keys, no `.env` from the developer's working directory."""
    for name in list(os.environ):
        if name.startswith("BOT_") or name in _PROVIDER_VARS:
            monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "bot-data"
    monkeypatch.setenv("BOT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("BOT_CACHE_DIR", str(model_cache))
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    monkeypatch.setenv("BOT_LLM", "extractive")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # so no stray .env is read by bot's settings or Chroma
    from bot.core.settings import get_settings

    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()


@pytest.fixture
def seeds_dir() -> Path:
    return SEEDS


# --- cassettes (vcrpy via pytest-recording) ---------------------------------------------------
# Replay is the default (`--record-mode` unset = "none"): a request not in the cassette raises
# instead of reaching the network. Re-record with scripts/record-cassettes.

_KEEP_REQUEST_HEADERS = {"content-type", "accept"}
_KEEP_RESPONSE_HEADERS = {"content-type"}


def _redacted_body(body: object) -> object:
    """A recorded body with every secret `bot.core.secrets.redact` knows replaced."""
    from bot.core.secrets import redact

    if isinstance(body, bytes):
        return redact(body.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
    return redact(body) if isinstance(body, str) else body


def _scrub_request(request):  # type: ignore[no-untyped-def]
    from bot.core.secrets import redact

    for name in list(request.headers):
        if name.lower() not in _KEEP_REQUEST_HEADERS:
            del request.headers[name]
    request.uri = redact(request.uri)
    request.body = _redacted_body(request.body)
    return request


def _scrub_response(response: dict) -> dict:
    response["headers"] = {
        name: value
        for name, value in response.get("headers", {}).items()
        if name.lower() in _KEEP_RESPONSE_HEADERS
    }
    body = response.get("body")
    if isinstance(body, dict) and "string" in body:
        body["string"] = _redacted_body(body["string"])
    return response


@pytest.fixture
def vcr_config() -> dict:
    return {
        "filter_headers": [
            "authorization",
            "api-key",
            "x-api-key",
            "openai-organization",
            "openai-project",
            "cookie",
        ],
        "before_record_request": _scrub_request,
        "before_record_response": _scrub_response,
        "match_on": ["method", "path", "body"],  # not host/port: replay works with any port
        "decode_compressed_response": True,
    }
