"""Secrets are redacted by value, whatever their shape, and a malformed `.env` is reported once.

- The configured key (`mysecret-…`, not shaped like `sk-…`) echoed by a server in an HTTP 400
  body, the credentials of an OPENAI_BASE_URL (user:password, a key in the query string) and the
  value of any `*_TOKEN` variable never reach stdout, stderr, the logs or a cassette.
- A `.env` line python-dotenv cannot parse gives one line naming the file and line (not one per
  reader of the file: Chroma reads it too); when it sets a bot setting, the command fails (exit 1).
"""

from __future__ import annotations

import json
import secrets
import string
import subprocess
import sys
from pathlib import Path

from bot.core.secrets import redact, remember_secret
from tests.llm_server import FakeOpenAIServer, Reply, clean_env, error_body
from tests.test_llm_faults import CITED, QUESTION, run_in_process


def _random(prefix: str, n: int = 24) -> str:
    """A made-up secret (no secret-shaped literal in the repository)."""
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(n))


def _bot(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, cwd=cwd, capture_output=True, timeout=300
    )


def test_a_key_of_any_shape_echoed_by_a_server_is_redacted(tmp_path: Path) -> None:
    key = _random("mysecret-")
    password, query_key, token = _random("pw-"), _random("q-"), _random("tok-")
    # The server echoes the key, and the whole request line with the URL's query key, in a 400.
    echo = Reply(status=400, body=error_body(f"Bad key {key} for request with {query_key}"))
    with FakeOpenAIServer(echo) as server:
        host = server.url.removeprefix("http://")
        url = f"http://bot-user:{password}@{host}?api-key={query_key}"
        env = clean_env(
            tmp_path / "data",
            BOT_LLM="openai",
            OPENAI_API_KEY=key,
            OPENAI_BASE_URL=url,
            BOT_MIN_RELEVANCE="0",
            MY_SERVICE_TOKEN=token,
        )
        code, out, err, logs = run_in_process(env, ["ask", QUESTION])
    # the request was sent, with the URL's credentials (httpx turns them into Basic auth)
    assert server.requests[0][1]["authorization"].startswith("Basic ")
    everything = out + err + "\n".join(logs).encode()
    for secret in (key, password, query_key, token):
        assert secret.encode() not in everything, secret
        assert secret[4:18].encode() not in everything  # nor a piece of it
    assert code == 1
    lines = err.decode().splitlines()  # the first run indexes the seeds, and says so
    errors = [line for line in lines if line.startswith("error")]
    assert (
        errors
        == lines[-1:]
        == [
            f"error: The LLM server at {server.url} rejected the request (HTTP 400: Bad key "
            "[redacted] for request with [redacted]); check BOT_OPENAI_MODEL and the server's "
            "settings"
        ]
    )


def test_a_token_the_model_repeats_is_redacted_from_json_output(tmp_path: Path) -> None:
    token = _random("tok-")
    answer = Reply(text=CITED.replace("[1].", f"[1]. The token is {token}."))
    with FakeOpenAIServer(answer) as server:
        env = clean_env(
            tmp_path / "data",
            BOT_LLM="openai",
            OPENAI_BASE_URL=server.url,
            BOT_MIN_RELEVANCE="0",
            DEPLOY_TOKEN=token,
        )
        code, out, err, logs = run_in_process(env, ["ask", QUESTION, "--json"])
    assert code == 0, err
    result = json.loads(out)
    assert token not in out.decode() + err.decode() + "\n".join(logs)
    assert "[redacted]" in result["answer"]


def test_redact_finds_secrets_by_shape_and_by_value() -> None:
    value = _random("plain", 20)
    remember_secret(value)
    shaped = _random("sk-", 10)  # shaped like a key, never remembered: redacted by its shape
    text = (
        f"a {value} b {value[3:17]} c https://me:pw-{value[:4]}x@h.example/v1?token=abc&x=1 "
        f"d Bearer xyz e {shaped}"
    )
    assert redact(text) == (
        "a [redacted] b [redacted] c https://redacted@h.example/v1?token=redacted&x=1 "
        "d [redacted] e [redacted]"
    )
    assert redact("ordinary text with short words") == "ordinary text with short words"


def test_the_cassette_filter_redacts_bodies_and_urls() -> None:
    from vcr.request import Request

    from tests.conftest import _scrub_request, _scrub_response

    key = _random("mysecret-")
    remember_secret(key)
    request = Request(
        "POST",
        f"http://u:{key}@127.0.0.1:8099/v1/chat/completions?api_key={key}",
        json.dumps({"note": f"key {key}"}).encode(),
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    scrubbed = _scrub_request(request)
    assert key not in scrubbed.uri and key.encode() not in scrubbed.body
    assert list(scrubbed.headers) == ["Content-Type"]
    response = {"headers": {"X-Key": [key]}, "body": {"string": f"echo {key}".encode()}}
    assert _scrub_response(response) == {"headers": {}, "body": {"string": b"echo [redacted]"}}


# --- a malformed .env ------------------------------------------------------------------------


def test_a_bad_env_line_that_sets_a_setting_fails_in_one_line(tmp_path: Path) -> None:
    key = _random("mysecret-")
    work = tmp_path / "work"
    work.mkdir()
    (work / ".env").write_text(f'BOT_TOP_K=5\nOPENAI_API_KEY="{key}\nBOT_LLM=openai\n')
    done = _bot(clean_env(tmp_path / "data"), work, "ask", "--llm", "openai", QUESTION)
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert done.stdout == b""
    assert err.splitlines() == [
        f"error: {work / '.env'} line 2: OPENAI_API_KEY could not be read (an unclosed quote or "
        "a missing '='?); fix that line"
    ]
    assert key[9:] not in err


def test_a_bad_env_line_of_another_tool_is_one_warning(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / ".env").write_text("BOT_TOP_K=5\nnot a statement\nOTHER_TOOL='unclosed\n")
    done = _bot(clean_env(tmp_path / "data"), work, "sources")  # opens Chroma, which reads .env
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert err.splitlines() == [
        f"warning: {work / '.env'} lines 2, 3 could not be parsed and are ignored (an unclosed "
        "quote or a missing '='?)"
    ]
