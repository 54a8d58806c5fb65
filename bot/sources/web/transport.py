"""The https side of the fetcher's client, built when the first https request is sent: loading the
certificate store is a noticeable part of a short run (an update where every feed answers 304),
and a run that only meets http URLs never needs it."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx


class OnFirstUse(httpx.BaseTransport):
    """A transport made by `build` on the first request it carries."""

    def __init__(self, build: Callable[[], httpx.BaseTransport]) -> None:
        self._build = build
        self._inner: httpx.BaseTransport | None = None
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if self._inner is None:
                self._inner = self._build()
            inner = self._inner
        return inner.handle_request(request)

    def close(self) -> None:
        with self._lock:
            if self._inner is not None:
                self._inner.close()
