"""A real uvicorn server on 127.0.0.1, in a thread of the test process, serving `bot serve`'s app
over a given `ServeState` (so a test can give it a fake LLM), and a free port for a `bot serve`
process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from bot.serve.api import create_app
from bot.serve.state import ServeState

START_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(state: ServeState) -> Iterator[str]:
    """The base URL of a running server over `state` (warmed first), stopped on exit."""
    state.warm_up()
    config = uvicorn.Config(
        create_app(state), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_SECONDS
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_for_json(url: str, seconds: float = 90) -> dict:
    """The JSON `url` answers once a server starting meanwhile is up."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            return dict(httpx.get(url, timeout=5).json())
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
