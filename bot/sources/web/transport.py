"""The fetcher's connections, over httpcore: plain http in one pool, and https in another built
when the first https URL comes, so that a run of http URLs never loads the certificate store.

httpcore rather than httpx: importing httpx also imports its command-line tool (click, pygments,
rich), most of the cost of a short run such as an update where every feed answers 304. Redirects,
decompression and size caps are the fetcher's own (bot.sources.web.fetch)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpcore

# What fails a request on the wire (httpcore's exceptions share no base class).
TRANSPORT_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
)


@dataclass
class Answer:
    """A response whose body is still to be read: status, headers (names in lower case, the
    first of repeated ones), the URL it answers and its raw (still compressed) body."""

    url: str
    status: int
    reason: str
    headers: dict[str, str]
    body: Iterator[bytes]


class Connections:
    """Connection pools by scheme, shared by the fetcher's threads."""

    def __init__(self, max_connections: int, timeouts: dict[str, float | None]) -> None:
        self._max = max_connections
        self._timeouts = timeouts
        self._lock = threading.Lock()
        self._pools: dict[str, httpcore.ConnectionPool] = {}

    def _pool(self, scheme: str) -> httpcore.ConnectionPool:
        with self._lock:
            pool = self._pools.get(scheme)
            if pool is None:
                context = httpcore.default_ssl_context() if scheme == "https" else None
                pool = httpcore.ConnectionPool(ssl_context=context, max_connections=self._max)
                self._pools[scheme] = pool
            return pool

    @contextmanager
    def get(self, url: str, headers: dict[str, str]) -> Iterator[Answer]:
        """One GET of `url` (no redirect followed); the connection is released on exit."""
        scheme = url.split(":", 1)[0].lower()
        extensions = {"timeout": self._timeouts}
        sent = list(headers.items())
        with self._pool(scheme).stream("GET", url, headers=sent, extensions=extensions) as got:
            names: dict[str, str] = {}
            for name, value in got.headers:
                names.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
            reason = got.extensions.get("reason_phrase", b"")
            text = reason.decode("latin-1") if isinstance(reason, bytes) else ""
            yield Answer(url, got.status, text, names, got.iter_stream())

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
