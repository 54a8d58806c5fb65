"""Opening Chroma, and Chroma's failures as one-line errors (for bot.index.store, its only user).

chromadb is imported on first use, not when bot is: `bot --help` and the commands that never
open the index do not pay for it. Once the store is open, a failure of Chroma itself (a server
that goes away mid-command, a database that turns read-only, a full disk) becomes a one-line
`BotError` that names the server URL or the index folder and the fix (`store_failure`); our own
bugs still surface as what they are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlparse

from bot.core.errors import BotError
from bot.core.settings import Settings
from bot.index.embeddings import Embedder

# The vector of every manifest record: the manifests are looked up by id, never by similarity.
MANIFEST_VECTOR = [1.0]
# Longest Chroma error text quoted in a message.
DETAIL_CHARS = 200


def import_chromadb() -> Any:
    """The chromadb module, imported on first use."""
    import chromadb

    return chromadb


def _chroma_settings() -> Any:
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def describe_location(settings: Settings) -> str:
    return settings.chroma_url or str(settings.chroma_dir)


def open_client(settings: Settings) -> Any:
    """A Chroma client for the embedded index or the server named by BOT_CHROMA_URL."""
    if settings.chroma_url:
        return _open_http_client(settings, settings.chroma_url)
    try:
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BotError(
            f"Cannot create the data directory {settings.data_dir}: {exc.strerror}",
            hint="set BOT_DATA_DIR to a writable folder",
        ) from exc
    chromadb = import_chromadb()
    try:
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=_chroma_settings())
    except Exception as exc:
        detail = short_detail(exc)
        if "readonly" in detail.lower() or "read-only" in detail.lower():
            # Chroma writes to its database whenever it opens it, even to read.
            raise BotError(
                f"The index in {settings.chroma_dir} is read-only ({detail})",
                hint="make the folder writable, or set BOT_DATA_DIR to a writable folder",
            ) from exc
        raise BotError(
            f"Cannot open the index in {settings.chroma_dir}: {detail}",
            hint="check the folder's permissions, or set BOT_DATA_DIR",
        ) from exc


def _open_http_client(settings: Settings, chroma_url: str) -> Any:
    url = urlparse(chroma_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise BotError(
            f"BOT_CHROMA_URL={chroma_url!r} is not an http(s) URL",
            hint="use e.g. http://127.0.0.1:8000",
        )
    port = url.port or (443 if url.scheme == "https" else 8000)
    chromadb = import_chromadb()
    try:
        client = chromadb.HttpClient(
            host=url.hostname, port=port, ssl=url.scheme == "https", settings=_chroma_settings()
        )
        client.heartbeat()
    except Exception as exc:  # chromadb raises several unrelated types for a dead server
        raise BotError(
            f"Cannot reach the Chroma server at {chroma_url}",
            hint="start it with `chroma run`, or unset BOT_CHROMA_URL to use the embedded index",
        ) from exc
    return client


def short_detail(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none), shortened."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:DETAIL_CHARS]


# Libraries whose exceptions mean "Chroma or the way to it failed" (not a bug in bot).
_STORE_ERROR_ROOTS = frozenset(
    {"chromadb", "chromadb_rust_bindings", "httpx", "httpcore", "httpx2", "httpcore2", "sqlite3"}
)
_CONNECTION_REASONS = (
    ("connection refused", "connection refused"),
    ("server disconnected", "the server disconnected"),
    ("peer closed connection", "the server disconnected"),
    ("incomplete chunked read", "the server disconnected"),
    ("connection reset", "connection reset"),
    ("broken pipe", "connection reset"),
    ("timed out", "timed out"),
    ("name or service not known", "host not found"),
)


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _is_store_error(exc: BaseException) -> bool:
    for err in _chain(exc):
        if isinstance(err, OSError):
            return True
        if {cls.__module__.split(".")[0] for cls in type(err).__mro__} & _STORE_ERROR_ROOTS:
            return True
    return False


def connection_reason(exc: BaseException) -> str | None:
    """'connection refused', 'the server disconnected'...; None when not a connection failure."""
    chain = _chain(exc)
    text = " ".join(f"{type(e).__name__} {e}" for e in chain).lower()
    for needle, reason in _CONNECTION_REASONS:
        if needle in text:
            return reason
    names = " ".join(type(e).__name__ for e in chain)
    if any(k in names for k in ("ConnectError", "RemoteProtocolError", "ReadError", "WriteError")):
        return "the connection failed"
    if any(isinstance(e, ConnectionError) for e in chain):
        return "the connection failed"
    return None


def store_failure(settings: Settings, exc: BaseException) -> BotError | None:
    """A one-line BotError for a Chroma failure while the store is in use (None: not one)."""
    if isinstance(exc, BotError):
        return exc
    if not _is_store_error(exc):
        return None
    if settings.chroma_url:
        reason = connection_reason(exc)
        if reason is not None:
            return BotError(
                f"Lost the Chroma server at {settings.chroma_url} ({reason})",
                hint="is it still running? Start it again and re-run the command; "
                "`bot ingest` repairs what an interrupted run left",
            )
        return BotError(
            f"The Chroma server at {settings.chroma_url} failed: {short_detail(exc)}",
            hint="check the server's log, then re-run the command",
        )
    detail = short_detail(exc)
    lowered = detail.lower()
    if "readonly" in lowered or "read-only" in lowered or "permission" in lowered:
        hint = "make the folder writable, or set BOT_DATA_DIR to a writable folder"
    elif "disk" in lowered or "space" in lowered or "full" in lowered:
        hint = "free some disk space, then run `bot ingest` again"
    else:
        hint = "run the command again; if it keeps failing, rebuild with `bot ingest --rebuild`"
    return BotError(f"The index in {settings.chroma_dir} failed: {detail}", hint=hint)


@contextlib.contextmanager
def failures_as_bot_errors(settings: Settings) -> Iterator[None]:
    """Inside: a Chroma failure is raised as its one-line BotError (`store_failure`)."""
    try:
        yield
    except Exception as exc:
        mapped = store_failure(settings, exc)
        if mapped is None or mapped is exc:
            raise
        raise mapped from exc


def embedding_function(embedder: Embedder | None) -> Any:
    """Our embedder as Chroma's embedding function (None: the manifests' constant vector), so
    Chroma never falls back to its own default function, which downloads a model."""
    from chromadb.api.types import EmbeddingFunction

    class BotEmbeddingFunction(EmbeddingFunction):
        def __init__(self, inner: Embedder | None) -> None:
            self._inner = inner

        def __call__(self, input: Sequence[str]) -> Any:  # noqa: A002 - Chroma's parameter name
            if self._inner is None:
                return [list(MANIFEST_VECTOR) for _ in input]
            return list(self._inner.embed(list(input)))

    return BotEmbeddingFunction(embedder)


def collection_names(name: str) -> tuple[str, str, str]:
    """The chunk collection and the two manifests of the index called `name`."""
    return name, f"{name}__articles", f"{name}__files"


def drop_collections(client: Any, name: str) -> None:
    """Delete the index called `name`, as far as it exists."""
    for collection in collection_names(name):
        with contextlib.suppress(Exception):  # a collection that was never created
            client.delete_collection(collection)
