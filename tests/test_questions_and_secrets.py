"""Bad questions fail in one clean line; an API key never shows up in output, files or cassettes."""

from __future__ import annotations

import json
import re
import secrets
import socket
import string
import subprocess
import sys
from pathlib import Path

import pytest

from tests.llm_server import clean_env

REPO = Path(__file__).resolve().parent.parent
KEY_SHAPE = re.compile(r"sk-[A-Za-z0-9_\-]{16,}")
SEED_QUESTION = "What did Zelensky announce about prisoners?"


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        cwd=env["BOT_DATA_DIR"],  # an empty folder: no stray .env is read
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _one_error_line(stderr: bytes) -> str:
    text = stderr.decode("utf-8")
    assert "Traceback" not in text, text
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("error: "), text
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", lines[0]), lines[0]
    return lines[0]


BAD_QUESTIONS = {
    "empty": "",
    "whitespace": " \t  \n ",
    "huge": "why " * 25_600,  # 100 KB
    "controls_only": "\x01\x02\x03\x07\x08\x7f\x1f",
    "ansi_only": "\x1b[31m\x1b[0m\x1b]8;;http://evil\x07\x1b]8;;\x07\u202e",
}


def test_bad_questions_fail_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = clean_env(data)
    procs = {
        name: _start(env, "ask", q, *(["--json"] if name == "empty" else []))
        for name, q in BAD_QUESTIONS.items()
    }
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, (name, err)
        line = _one_error_line(err)
        assert out == b"", (name, out)
        if name == "huge":
            assert "limit" in line and "shorter" in line, line
        else:
            assert "empty" in line, line
    # the refusal came before any index was built
    assert not any(data.glob("**/chroma.sqlite3"))


def test_question_with_escapes_is_cleaned() -> None:
    from bot.app.ask import clean_question

    assert clean_question("\x1b[31mWhat  did\x1b[0m\n Zelensky\u202e say?\x07") == (
        "What did Zelensky say?"
    )
    assert clean_question("x" * 2000) == "x" * 2000
    from bot.core.errors import BotError

    with pytest.raises(BotError):
        clean_question("x" * 2001)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_key_never_printed_when_server_is_down(tmp_path: Path) -> None:
    key = "sk-test-" + "".join(
        secrets.choice(string.ascii_letters + string.digits) for _ in range(40)
    )
    port = _closed_port()
    data = tmp_path / "data"
    data.mkdir()
    env = clean_env(
        data,
        BOT_LLM="openai",
        OPENAI_API_KEY=key,
        OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1",
        BOT_LLM_MAX_RETRIES="0",
        BOT_LLM_TIMEOUT="2",
        BOT_MIN_RELEVANCE="0",  # make sure the model is actually called
    )
    # first run also builds the seed index; the second reuses it
    for extra in ([], ["--json"]):
        proc = _start(env, "ask", SEED_QUESTION, *extra)
        out, err = proc.communicate(timeout=120)
        everything = out + err
        assert key.encode() not in everything
        assert key[8:28].encode() not in everything  # nor a fragment of it
        assert proc.returncode == 1, err
        # stderr may hold the first-run note before the error; the error itself is one line
        lines = err.decode().splitlines()
        assert "Traceback" not in err.decode()
        errors = [ln for ln in lines if ln.startswith("error: ")]
        assert len(errors) == 1 and lines[-1] == errors[0], lines
        assert f"127.0.0.1:{port}" in errors[0], errors[0]
        if extra:
            assert out == b"" or json.loads(out) is not None
    # nothing the run wrote to its data folder holds the key either
    for path in data.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert key.encode() not in path.read_bytes(), path


def test_key_never_in_debug_logs_json_or_errors(tmp_path: Path) -> None:
    """With every debug switch on (the openai SDK's request log, BOT_DEBUG), an answer in --json
    and a 401 whose body echoes the key both keep the key out of stdout and stderr."""
    from tests.llm_server import FakeOpenAIServer, Reply, error_body

    key = "sk-test-" + "".join(
        secrets.choice(string.ascii_letters + string.digits) for _ in range(40)
    )
    answer = Reply(text="Zelensky announced that prisoners will be released [1].")
    echo = Reply(status=401, body=error_body(f"Incorrect API key provided: {key}", "bad_key"))
    with FakeOpenAIServer(answer) as ok_server, FakeOpenAIServer(echo) as bad_server:
        procs = {}
        for name, server in (("ok", ok_server), ("rejected", bad_server)):
            data = tmp_path / name
            data.mkdir()
            env = clean_env(
                data,
                BOT_LLM="openai",
                OPENAI_API_KEY=key,
                OPENAI_BASE_URL=server.url,
                BOT_MIN_RELEVANCE="0",
                BOT_LLM_MAX_RETRIES="0",
                OPENAI_LOG="debug",
                BOT_DEBUG="1",
            )
            procs[name] = _start(env, "ask", SEED_QUESTION, "--json")
        results = {name: proc.communicate(timeout=300) for name, proc in procs.items()}
    for server in (ok_server, bad_server):  # the key was sent, so its absence below means something
        assert server.requests[0][1]["authorization"] == f"Bearer {key}"
    out, err = results["ok"]
    assert procs["ok"].returncode == 0, err[-2000:]
    assert json.loads(out)["answer"].startswith("Zelensky announced")
    assert b"openai._base_client" in err  # the debug log was on
    out, err = results["rejected"]
    assert procs["rejected"].returncode == 1
    errors = [ln for ln in err.decode().splitlines() if ln.startswith("error: ")]
    assert errors == [
        f"error: The LLM server at {bad_server.url} rejected the API key (HTTP 401): "
        "check OPENAI_API_KEY"
    ]
    for out, err in results.values():
        for blob in (out, err):
            assert key.encode() not in blob and key[8:28].encode() not in blob
            assert b"Traceback" not in blob
            assert not KEY_SHAPE.search(blob.decode("utf-8", "replace"))


def test_dotenv_is_ignored_by_git() -> None:
    lines = (REPO / ".gitignore").read_text().splitlines()
    assert ".env" in [ln.strip() for ln in lines]


def test_cassettes_hold_no_key_shaped_strings() -> None:
    cassettes = REPO / "tests" / "cassettes"
    files = [p for p in cassettes.rglob("*") if p.is_file()]
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert not KEY_SHAPE.search(text), path
        assert not re.search(r"(?i)authorization:\s*\S", text), path
        assert not re.search(r"(?i)bearer\s+[A-Za-z0-9]", text), path
