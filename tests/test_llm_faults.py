"""`bot ask` and `bot summarise` against an OpenAI-compatible server on 127.0.0.1 that misbehaves
on purpose.

Every case runs the real CLI entry point, `bot.ui.cli.main`, with BOT_LLM=openai, OPENAI_BASE_URL at
its own FakeOpenAIServer and a key made up at run time, on one seed index: in this process (so the
model and the index load once, and every log record can be searched for the key) and, for the
cases marked `process`, also as its own `python -m bot ask` process, started at once, which
shows what a user's terminal gets: the bytes, the exit code, no traceback.

For every run: at most one `error:` line on stderr and the exit code the case calls for, no
traceback, and the key nowhere in stdout, stderr or the logs. None of them may write to the index.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import secrets
import sqlite3
import string
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.llm_server import FakeOpenAIServer, Reply, chat_chunk, clean_env, error_body

REPO = Path(__file__).resolve().parent.parent
QUESTION = "What did Zelensky announce about prisoners?"
CITED = (
    "Zelensky announced that prisoners with combat experience will be released to defend "
    "Ukraine [1]."
)
# Bytes a terminal would act on: C0 controls but \t and \n, DEL, and C1 controls (UTF-8 encoded).
RAW_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")


def _chunk_bytes(content: str) -> bytes:
    """One SSE chunk whose JSON text is given verbatim (to smuggle in escapes and bad bytes)."""
    return (
        b'{"id":"x","object":"chat.completion.chunk","created":1,"model":"fake-model",'
        b'"choices":[{"index":0,"delta":{"content":"' + content.encode("latin-1") + b'"},'
        b'"finish_reason":null}]}'
    )


@dataclass
class Case:
    replies: list[Reply]
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    process: bool = False  # also run as its own `python -m bot` process
    command: list[str] = field(default_factory=lambda: ["ask", QUESTION])


SUMMARISE = ["summarise", "--length", "short"]
NOTE = "- Zelensky announced that prisoners with combat experience will be released [1][99]."


CASES: dict[str, Case] = {
    "rate_limited_then_ok": Case(
        [
            Reply(status=429, body=error_body("Rate limit reached", "rate_limit_exceeded"),
                  headers={"Retry-After": "0"}),
            Reply(status=429, body=error_body("Rate limit reached", "rate_limit_exceeded")),
            Reply(text=CITED),
        ],
        env={"BOT_LLM_MAX_RETRIES": "3"},
        process=True,
    ),
    "server_errors": Case(
        [Reply(status=500, body=error_body("internal error", type_="server_error"))],
        env={"BOT_LLM_MAX_RETRIES": "2"},
        process=True,
    ),
    "timeout": Case(
        [Reply(text=CITED, delay=4.0)],
        env={"BOT_LLM_TIMEOUT": "0.5", "BOT_LLM_MAX_RETRIES": "1"},
    ),
    "dropped_connections": Case(
        [Reply(drop=True)], env={"BOT_LLM_MAX_RETRIES": "1"}
    ),
    "empty_completion": Case([Reply(text="")], args=["--json"]),
    "malformed_json": Case([Reply(events=[b'{"id": "x", "object": "chat.completion.chu'])]),
    "wrong_types": Case(
        [Reply(events=[{"id": "x", "object": "chat.completion.chunk", "created": 1,
                        "model": "m", "choices": [{"index": 0, "delta": {"content": 5},
                                                   "finish_reason": "stop"}]}])]
    ),
    "truncated_chunk": Case(
        [Reply(events=[chat_chunk("Zelensky "), b'{"id":"x","choices":[{"delta":{"content":"ann'])]
    ),
    "stream_cut": Case(
        [Reply(events=[chat_chunk("Zelensky announced "), chat_chunk("that pris")], cut=True)],
        process=True,
    ),
    "phantom_citations": Case(
        [Reply(text=CITED.replace("[1].", "[1][7].") + " He said they must fight [99].")],
        args=["--json", "--k", "3"],
    ),
    "phantom_citations_text": Case(
        [Reply(text=CITED.replace("[1].", "[7].") + " They will defend Ukraine [1][99].")],
        args=["--k", "3"],
    ),
    "broken_unicode": Case(
        [
            Reply(
                events=[
                    _chunk_bytes("Zelensky announced caf\xc3 \xff"),  # invalid UTF-8 bytes
                    _chunk_bytes(" \\ud800 that prisoners \\udc80with combat experience will be "
                                 "released to defend Ukraine [1]."),  # lone surrogates, escaped
                    chat_chunk(None, "stop"),
                ]
            )
        ],
        args=["--json"],
    ),
    "broken_unicode_text": Case(
        [Reply(events=[_chunk_bytes("caf\xc3 \\ud800 " + CITED), chat_chunk(None, "stop")])]
    ),
    "control_only": Case(
        [Reply(text="\x1b[2J\x1b[H\x1b[31m\x07\x08\r\x1b]0;pwned\x07\x1b]8;;http://evil.example"
                    "\x1b\\\x9b1m\x9d2;t\x07\x00\x01\x7f\x1bc")],
        process=True,
    ),
    "control_mixed": Case(
        [Reply(text="\x1b[31mZelensky\x1b[0m announced \x1b]8;;http://evil.example\x07that"
                    "\x1b]8;;\x07 prisoners with combat experience will be released\x07 to "
                    "defend Ukraine [1].\x1b[2J")],
        args=["--json"],
    ),
    # `bot summarise`: map calls (not streamed), then the final merge (streamed).
    "summarise_server_errors": Case(
        [Reply(status=500, body=error_body("internal error", type_="server_error"))],
        env={"BOT_LLM_MAX_RETRIES": "1"},
        command=SUMMARISE,
        process=True,
    ),
    "summarise_timeout": Case(
        [Reply(text=NOTE, delay=4.0)],
        env={"BOT_LLM_TIMEOUT": "0.5", "BOT_LLM_MAX_RETRIES": "0"},
        command=SUMMARISE,
    ),
    "summarise_phantom_and_controls": Case(
        [
            Reply(text=NOTE + "\n- \x1b[2JThe notes cite [42] too."),
            Reply(text="\x1b]8;;http://evil.example\x07Zelensky announced\x1b]8;;\x07 that "
                       "prisoners with combat experience will be released [1][42]."),
        ],
        args=["--json"],
        command=SUMMARISE,
    ),
    "summarise_stream_cut": Case(
        [Reply(text=NOTE), Reply(events=[chat_chunk("Zelensky announced ")], cut=True)],
        command=SUMMARISE,
    ),
}  # fmt: skip


def make_key() -> str:
    """A fake key, made up at run time (no key-shaped literal in the repository)."""
    alphabet = string.ascii_letters + string.digits
    return "sk-" + "proj-" + "".join(secrets.choice(alphabet) for _ in range(40))


def index_snapshot(data_dir: Path) -> dict[str, list[str]]:
    """Everything the embedded index holds, read straight from Chroma's SQLite file (read-only).

    `acquire_write` is left out: Chroma takes its write lock there even to read.
    """
    path = data_dir / "chroma" / "chroma.sqlite3"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        return {
            name: sorted(repr(row) for row in conn.execute(f'SELECT * FROM "{name}"'))
            for name in sorted(tables)
            if name != "acquire_write"
        }
    finally:
        conn.close()


@dataclass
class Run:
    returncode: int
    stdout: bytes
    stderr: bytes
    server: FakeOpenAIServer
    key: str
    seconds: float
    logs: list[str] | None = None  # in-process runs: every log record, DEBUG up
    command: str = "ask"

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8")

    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)


def case_env(data: Path, server: FakeOpenAIServer, key: str, case: Case) -> dict[str, str]:
    settings = {
        "BOT_LLM": "openai",
        "OPENAI_API_KEY": key,
        "OPENAI_BASE_URL": server.url,
        "BOT_OPENAI_MODEL": "fake-model",
        "BOT_MIN_RELEVANCE": "0",  # the model is always asked
        "BOT_LLM_TIMEOUT": "20",
        "BOT_LLM_MAX_RETRIES": "0",
    }
    return clean_env(data, **{**settings, **case.env})


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.lines.append(f"{record.name}: {record.getMessage()} {record.args!r}")


def run_in_process(env: dict[str, str], argv: list[str]) -> tuple[int, bytes, bytes, list[str]]:
    """`bot ARGV` through `bot.ui.cli.main` here, `env` being the whole BOT_/OPENAI_ environment."""
    from bot.core.settings import get_settings
    from bot.ui.cli import main

    out, err = io.StringIO(), io.StringIO()
    records = _Records()
    root = logging.getLogger()
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("BOT_", "OPENAI_")):
                mp.delenv(name)
        for name, value in env.items():
            mp.setenv(name, value)
        mp.setattr(sys, "argv", ["bot", *argv])
        level = root.level
        root.setLevel(logging.DEBUG)  # setLevel, not the attribute: it clears loggers' caches
        root.addHandler(records)
        get_settings.cache_clear()
        code: int | str | None = 0
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                main()
        except SystemExit as exc:
            code = exc.code
        finally:
            root.removeHandler(records)
            root.setLevel(level)
            get_settings.cache_clear()
    returncode = code if isinstance(code, int) else (0 if code is None else 1)

    def raw(text: str) -> bytes:
        return text.encode("utf-8", "surrogatepass")  # a lone surrogate fails strict decoding

    return returncode, raw(out.getvalue()), raw(err.getvalue()), records.lines


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from bot.app.ask import AskOptions, answer_question
    from bot.app.ingest import ingest_paths
    from bot.core.settings import Settings

    base = tmp_path_factory.mktemp("llm-faults")
    data = base / "data"
    work = base / "cwd"  # an empty folder: no stray .env is read
    work.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        # One seed index, and the BM25 cache warm, before the cases read it.
        settings = Settings(BOT_DATA_DIR=str(data), BOT_LLM="extractive")
        warm = answer_question("warm up", AskOptions(llm="extractive"), settings=settings)
        assert warm.passages
        before = index_snapshot(data)

        results: dict[str, Run] = {}
        with contextlib.ExitStack() as stack:
            # the `process` cases first: they run while this process works through the rest
            threads = []
            for name, case in CASES.items():
                if not case.process:
                    continue
                server = stack.enter_context(FakeOpenAIServer(*case.replies))
                key = make_key()
                proc = subprocess.Popen(
                    [sys.executable, "-m", "bot", *case.command, *case.args],
                    env=case_env(data, server, key, case),
                    cwd=work,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )

                def collect(
                    name: str = name,
                    proc: subprocess.Popen[bytes] = proc,
                    server: FakeOpenAIServer = server,
                    key: str = key,
                    command: str = case.command[0],
                    t0: float = time.monotonic(),
                ) -> None:
                    out, err = proc.communicate(timeout=300)
                    seconds = time.monotonic() - t0
                    results[f"{name}@process"] = Run(
                        proc.returncode, out, err, server, key, seconds, command=command
                    )

                thread = threading.Thread(target=collect, daemon=True)
                thread.start()
                threads.append(thread)
            for name, case in CASES.items():
                server = stack.enter_context(FakeOpenAIServer(*case.replies))
                key = make_key()
                t0 = time.monotonic()
                code, out, err, logs = run_in_process(
                    case_env(data, server, key, case), [*case.command, *case.args]
                )
                seconds = time.monotonic() - t0
                results[name] = Run(
                    code, out, err, server, key, seconds, logs, command=case.command[0]
                )
            for thread in threads:
                thread.join(timeout=300)
        after = index_snapshot(data)
        # The snapshot must be able to see a write: ingest one more article and look again.
        extra = base / "extra"
        extra.mkdir()
        (extra / "note.txt").write_text("The harbour council of Port Lina met on Tuesday.\n")
        assert ingest_paths([extra], settings).added == 1
    return {
        "runs": results,
        "before": before,
        "after": after,
        "after_write": index_snapshot(data),
    }


def runs_of(runs: dict[str, Any], name: str) -> list[Run]:
    """The in-process run of a case, and its own-process run when it has one."""
    found = [runs["runs"][name]]
    if CASES[name].process:
        found.append(runs["runs"][f"{name}@process"])
    return found


def run_of(runs: dict[str, Any], name: str) -> Run:
    return runs["runs"][name]


def assert_clean(run: Run, *, ok: bool) -> str | None:
    """The checks every case shares; returns the error line (None when the command succeeded)."""
    if run.logs is not None:  # in this process: the SDK's request log was captured too
        assert any(line.startswith("openai._base_client: ") for line in run.logs), run.logs[:5]
    logs = "\n".join(run.logs or []).encode("utf-8", "replace")
    everything = run.stdout + run.stderr + logs
    assert run.key.encode() not in everything
    assert run.key[3:23].encode() not in everything  # nor a piece of it
    # the key was really sent, so not finding it above means something
    assert run.server.requests[0][1]["authorization"] == f"Bearer {run.key}"
    if run.command == "ask":
        assert run.server.requests[0][2]["stream"] is True  # the CLI streams
    assert b"Traceback" not in everything
    assert b"unexpected" not in run.stderr
    if ok:
        assert run.returncode == 0, run.err
        assert run.stderr == b"", run.err
        run.stdout.decode("utf-8")  # strictly valid UTF-8
        return None
    assert run.returncode == 1, (run.returncode, run.err)
    assert run.stdout == b""
    lines = run.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert not RAW_CONTROL.search(run.stderr.rstrip(b"\n")), run.stderr
    return lines[0]


# --- the cases ------------------------------------------------------------------------------------


def test_nothing_is_written_to_the_index(runs: dict[str, Any]) -> None:
    assert runs["before"] == runs["after"]
    assert runs["after_write"] != runs["after"]  # the comparison does see writes


def test_rate_limited_then_answered_after_backoff(runs: dict[str, Any]) -> None:
    for run in runs_of(runs, "rate_limited_then_ok"):
        assert_clean(run, ok=True)
        assert run.server.served == 3  # two 429s, then the answer
        times = run.server.request_times
        first_gap, second_gap = times[1] - times[0], times[2] - times[1]
        # exponential backoff: about 0.5 s then 1 s (less up to 25 % jitter)
        assert first_gap >= 0.3 and second_gap >= 0.6, (first_gap, second_gap)
        text = run.stdout.decode()
        assert "Zelensky announced that prisoners with combat experience will be released" in text
        assert "[1]" in text and "Sources" in text


def test_repeated_500s_fail_in_one_line_naming_the_server(runs: dict[str, Any]) -> None:
    for run in runs_of(runs, "server_errors"):
        line = assert_clean(run, ok=False)
        assert run.server.served == 3  # the first try and two retries
        assert line == (
            f"error: The LLM server at {run.server.url} failed with HTTP 500 after 2 retries; "
            "try again later"
        )


def test_timeouts_fail_in_one_line(runs: dict[str, Any]) -> None:
    run = run_of(runs, "timeout")
    line = assert_clean(run, ok=False)
    assert run.server.served == 2
    assert line == (
        f"error: The LLM server at {run.server.url} did not answer within 0.5 s after 1 retry; "
        "raise BOT_LLM_TIMEOUT or try again later"
    )
    assert run.seconds < 4  # gave up: did not wait for the slow server's answers


def test_dropped_connections_fail_in_one_line(runs: dict[str, Any]) -> None:
    run = run_of(runs, "dropped_connections")
    line = assert_clean(run, ok=False)
    assert run.server.served == 2
    assert line.startswith(
        f"error: The LLM server at {run.server.url} did not answer after 1 retry"
    )


def test_empty_completion_is_reported(runs: dict[str, Any]) -> None:
    run = run_of(runs, "empty_completion")
    assert_clean(run, ok=True)
    result = run.json()
    assert result["refused"] is True and result["answer"] == "The articles don't say."
    assert "the model returned an empty answer" in result["warnings"]
    assert result["passages"]  # the closest passages are still shown


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("malformed_json", "sent a response that is not OpenAI chat-completion JSON"),
        ("wrong_types", "sent a response that is not OpenAI chat-completion JSON"),
        ("truncated_chunk", "was cut off"),
        ("stream_cut", "was cut off (connection closed mid-response); try again"),
    ],
)
def test_malformed_or_cut_completions_fail_in_one_line(
    runs: dict[str, Any], name: str, expected: str
) -> None:
    for run in runs_of(runs, name):
        line = assert_clean(run, ok=False)
        assert expected in line, line
        assert run.server.url in line


def test_citations_to_passages_never_given_are_dropped_and_reported(
    runs: dict[str, Any],
) -> None:
    run = run_of(runs, "phantom_citations")
    assert_clean(run, ok=True)
    result = run.json()
    assert result["dropped_citations"] == [7, 99]
    assert "removed citations to passages that were never given: [7], [99]" in result["warnings"]
    assert "[7]" not in result["answer"] and "[99]" not in result["answer"]
    given = {p["n"] for p in result["passages"]}
    assert 1 <= len(given) <= 3
    cited = {n for s in result["sentences"] for n in s["citations"]}
    cited |= {int(n) for n in re.findall(r"\[(\d+)\]", result["answer"])}
    assert cited and cited <= given

    text_run = run_of(runs, "phantom_citations_text")
    assert_clean(text_run, ok=True)
    out = text_run.stdout.decode()
    assert "removed citations to passages that were" in out and "[7], [99]" in out
    answer = out.split("\nSources")[0]
    assert "[7]" not in answer.split("warning:")[0] and "[99]" not in answer.split("warning:")[0]


def test_broken_unicode_is_replaced_not_fatal(runs: dict[str, Any]) -> None:
    run = run_of(runs, "broken_unicode")
    assert_clean(run, ok=True)
    result = run.json()
    answer = result["answer"]
    assert "\ufffd" in answer  # the bad bytes and lone surrogates became U+FFFD
    assert not re.search("[\ud800-\udfff]", answer)
    assert "prisoners" in answer and "[1]" in answer
    text_run = run_of(runs, "broken_unicode_text")
    assert_clean(text_run, ok=True)
    assert "\ufffd" in text_run.stdout.decode("utf-8")


def test_control_sequences_never_reach_stdout(runs: dict[str, Any]) -> None:
    for run in runs_of(runs, "control_only"):
        assert_clean(run, ok=True)
        assert not RAW_CONTROL.search(run.stdout), run.stdout[:300]
        out = run.stdout.decode()
        assert "pwned" not in out and "evil.example" not in out
        assert out.startswith("The articles don't say.")
        assert "warning: the model returned an empty answer" in out

    mixed = run_of(runs, "control_mixed")
    assert_clean(mixed, ok=True)
    assert b"\\u001b" not in mixed.stdout and not RAW_CONTROL.search(mixed.stdout)
    answer = mixed.json()["answer"]
    assert answer.startswith(
        "Zelensky announced that prisoners with combat experience will be released to defend "
        "Ukraine [1]"
    ), answer
    assert "[31m" not in answer and "[0m" not in answer and "evil.example" not in answer


def test_summarise_server_failures_are_one_line_naming_the_server(runs: dict[str, Any]) -> None:
    for run in runs_of(runs, "summarise_server_errors"):
        line = assert_clean(run, ok=False)
        assert run.server.served == 2  # the first map call and one retry; nothing queued after
        assert line == (
            f"error: The LLM server at {run.server.url} failed with HTTP 500 after 1 retry; "
            "try again later"
        )
    run = run_of(runs, "summarise_timeout")
    line = assert_clean(run, ok=False)
    assert line.startswith(f"error: The LLM server at {run.server.url} did not answer within 0.5 s")
    assert run.seconds < 4
    cut = run_of(runs, "summarise_stream_cut")
    line = assert_clean(cut, ok=False)
    assert "was cut off" in line and cut.server.url in line


def test_summarise_drops_phantom_citations_and_control_sequences(runs: dict[str, Any]) -> None:
    run = run_of(runs, "summarise_phantom_and_controls")
    assert_clean(run, ok=True)
    assert not RAW_CONTROL.search(run.stdout) and b"\\u001b" not in run.stdout
    result = run.json()
    assert result["kind"] == "summary" and result["refused"] is False
    assert result["dropped_citations"] == [42, 99]
    assert "removed citations to passages that were never given: [42], [99]" in result["warnings"]
    assert "evil.example" not in result["answer"] and "[42]" not in result["answer"]
    assert result["answer"].startswith("Zelensky announced that prisoners"), result["answer"]
    given = {p["n"] for p in result["passages"]}
    cited = {n for s in result["sentences"] for n in s["citations"]}
    assert cited and cited <= given
    assert [body.get("stream") for _, _, body in run.server.requests][-1] is True  # the merge
