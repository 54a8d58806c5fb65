"""The HTTP client of the OpenAI chat model: response bytes are always valid UTF-8.

The openai SDK decodes JSON bodies and SSE lines strictly, so one broken byte from a server would
crash the answer; this client turns bad bytes into U+FFFD. httpx is imported on first use only.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=8)
def utf8_safe_client(timeout: float) -> Any:
    """An httpx client whose response bytes are valid UTF-8 (bad bytes become U+FFFD).

    Compressed bodies are passed through untouched. One client per timeout, shared by every chat
    model of the process (httpx clients are thread-safe): a model per `ask` then reuses the
    connection pool instead of leaving a keep-alive socket open until the garbage collector finds
    its client.
    """
    try:
        import httpx2 as hx  # the transport of openai >= 3
    except ImportError:  # pragma: no cover - older openai SDKs use httpx
        import httpx as hx  # type: ignore[no-redef]

    class Utf8Stream(hx.SyncByteStream):
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __iter__(self) -> Iterator[bytes]:
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            for chunk in self._inner:
                text = decoder.decode(chunk)
                if text:
                    yield text.encode("utf-8")
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail.encode("utf-8")

        def close(self) -> None:
            close = getattr(self._inner, "close", None)  # any iterable of bytes may stand here
            if close is not None:
                close()

    class Utf8Transport(hx.BaseTransport):
        def __init__(self) -> None:
            self._inner = hx.HTTPTransport()

        def handle_request(self, request: Any) -> Any:
            response = self._inner.handle_request(request)
            if response.headers.get("content-encoding", "identity").lower() not in ("", "identity"):
                return response
            headers = [(k, v) for k, v in response.headers.raw if k.lower() != b"content-length"]
            return hx.Response(
                status_code=response.status_code,
                headers=headers,
                stream=Utf8Stream(response.stream),
                extensions=response.extensions,
            )

        def close(self) -> None:
            self._inner.close()

    return hx.Client(transport=Utf8Transport(), timeout=timeout, follow_redirects=True)
