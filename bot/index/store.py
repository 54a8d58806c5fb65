"""The Chroma index: chunks with their embeddings, plus two manifests that say what is indexed.

Three collections live side by side (embedded in the data directory, or on a Chroma server):

- `<name>`           one record per chunk: id `<article_id>:<index>`, the chunk text, its vector and
                     metadata (article id, offsets, title, source, url, published, path).
- `<name>__articles` one record per article (the manifest): metadata and the paths that hold it.
- `<name>__files`    one record per ingested file: size, mtime and the article id of each record.

The manifests are the source of truth. Writes follow one order so that a crash at any point leaves
nothing a later run cannot repair: chunks are written before their article record, an article
record is deleted before its chunks, and a file record is written last. While an ingest is writing,
the chunk collection is marked `dirty`; an ingest that finds the mark deletes chunks no article
record claims.

Once the store is open, a failure of Chroma itself (a server that goes away mid-command, a database
that turns read-only, a full disk) becomes a one-line `BotError` that names the server URL or the
index folder and the fix (`GuardedChroma`); our own bugs still surface as what they are.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from bot.core.errors import BotError
from bot.core.settings import Settings
from bot.index.embeddings import Embedder

SCHEMA_VERSION = 1
_MANIFEST_VECTOR = [1.0]


@dataclass
class ArticleEntry:
    """An article as the manifest records it."""

    article_id: str
    title: str
    source: str
    url: str
    published: str
    content_hash: str
    n_chunks: int
    chars: int
    paths: list[str] = field(default_factory=list)

    def to_metadata(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "source": self.source,
            "url": self.url,
            "published": self.published,
            "content_hash": self.content_hash,
            "n_chunks": self.n_chunks,
            "chars": self.chars,
            "paths": json.dumps(sorted(set(self.paths)), ensure_ascii=False),
        }

    @classmethod
    def from_metadata(cls, article_id: str, meta: dict[str, Any]) -> ArticleEntry:
        return cls(
            article_id=article_id,
            title=str(meta.get("title", "")),
            source=str(meta.get("source", "")),
            url=str(meta.get("url", "")),
            published=str(meta.get("published", "")),
            content_hash=str(meta.get("content_hash", "")),
            n_chunks=int(meta.get("n_chunks", 0)),
            chars=int(meta.get("chars", 0)),
            paths=list(json.loads(str(meta.get("paths", "[]")))),
        )


@dataclass
class FileEntry:
    """A file as the manifest records it: `records` maps each record path to its article id."""

    path: str
    size: int
    mtime_ns: int
    records: dict[str, str]

    @property
    def record_id(self) -> str:
        return file_record_id(self.path)

    def to_metadata(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "mtime_ns": str(self.mtime_ns),
            "records": json.dumps(self.records, ensure_ascii=False),
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> FileEntry:
        return cls(
            path=str(meta["path"]),
            size=int(meta.get("size", -1)),
            mtime_ns=int(meta.get("mtime_ns", -1)),
            records=dict(json.loads(str(meta.get("records", "{}")))),
        )


def file_record_id(path: str) -> str:
    import hashlib

    return "f" + hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _chroma_settings() -> Any:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def describe_location(settings: Settings) -> str:
    return settings.chroma_url or str(settings.chroma_dir)


def _mark_override(method: Any = None, **_options: Any) -> Any:
    """`overrides.override` without its signature comparison (see import_chromadb)."""

    def mark(target: Any) -> Any:
        with contextlib.suppress(AttributeError, TypeError):
            target.__override__ = True  # what EnforceOverrides looks for
        return target

    return mark if method is None else mark(method)


_OTLP_EXPORTER = "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"


def _deferred_otlp_exporter(*args: Any, **kwargs: Any) -> Any:
    """Stands in for OTLPSpanExporter while chromadb imports; the real one is imported on use."""
    import importlib
    import sys

    if getattr(sys.modules.get(_OTLP_EXPORTER), "OTLPSpanExporter", None) is (
        _deferred_otlp_exporter
    ):
        del sys.modules[_OTLP_EXPORTER]
    return importlib.import_module(_OTLP_EXPORTER).OTLPSpanExporter(*args, **kwargs)


def import_chromadb() -> Any:
    """`import chromadb`, about twice as fast. Measured on 2 cores: import plus opening a
    client 0.98 s -> 0.45 s.

    - chromadb decorates some 80 methods with `overrides.override`, which compares each one's
      signature with its base class's as the class is created, at import and again when the
      client loads its backend. That check only guards chromadb's own development, so the
      decorator is replaced, for this process, by one that just marks the method (~0.4 s).
    - chromadb imports the gRPC span exporter of OpenTelemetry at import time but uses it only
      when CHROMA_OTEL_COLLECTION_ENDPOINT is set. A stand-in is imported instead; it imports
      the real exporter when called (~0.12 s).
    """
    import gc
    import sys
    import types

    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    if "chromadb" not in sys.modules:
        try:
            import overrides

            overrides.override = overrides.overrides = _mark_override
        except ImportError:
            pass
        stand_in = None
        if _OTLP_EXPORTER not in sys.modules:
            stand_in = types.ModuleType(_OTLP_EXPORTER)
            stand_in.OTLPSpanExporter = _deferred_otlp_exporter  # type: ignore[attr-defined]
            sys.modules[_OTLP_EXPORTER] = stand_in
        # No garbage collection while the import builds its ~half a million long-lived objects
        # (~80 ms less); then they are frozen, so later collections never walk them again.
        # `bot.ui.cli.main` starts with the collector off, so this is where commands turn it on.
        gc.disable()
        try:
            import chromadb  # noqa: F401
        finally:
            if stand_in is not None and sys.modules.get(_OTLP_EXPORTER) is stand_in:
                del sys.modules[_OTLP_EXPORTER]  # a later import gets the real module
            gc.freeze()
    gc.enable()
    return sys.modules["chromadb"]


def open_client(settings: Settings) -> Any:
    """A Chroma client for the embedded index or the server named by BOT_CHROMA_URL."""
    chromadb = import_chromadb()

    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise BotError(
                f"BOT_CHROMA_URL={settings.chroma_url!r} is not an http(s) URL",
                hint="use e.g. http://127.0.0.1:8000",
            )
        port = url.port or (443 if url.scheme == "https" else 8000)
        try:
            client = chromadb.HttpClient(
                host=url.hostname, port=port, ssl=url.scheme == "https", settings=_chroma_settings()
            )
            client.heartbeat()
        except Exception as exc:  # chromadb raises several unrelated types for a dead server
            raise BotError(
                f"Cannot reach the Chroma server at {settings.chroma_url}",
                hint="start it with `chroma run`, "
                "or unset BOT_CHROMA_URL to use the embedded index",
            ) from exc
        return client
    try:
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BotError(
            f"Cannot create the data directory {settings.data_dir}: {exc.strerror}",
            hint="set BOT_DATA_DIR to a writable folder",
        ) from exc
    try:
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=_chroma_settings())
    except Exception as exc:
        detail = _short(exc)
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


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


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


def _connection_reason(exc: BaseException) -> str | None:
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
        reason = _connection_reason(exc)
        if reason is not None:
            return BotError(
                f"Lost the Chroma server at {settings.chroma_url} ({reason})",
                hint="is it still running? Start it again and re-run the command; "
                "`bot ingest` repairs what an interrupted run left",
            )
        return BotError(
            f"The Chroma server at {settings.chroma_url} failed: {_short(exc)}",
            hint="check the server's log, then re-run the command",
        )
    detail = _short(exc)
    lowered = detail.lower()
    if "readonly" in lowered or "read-only" in lowered or "permission" in lowered:
        hint = "make the folder writable, or set BOT_DATA_DIR to a writable folder"
    elif "disk" in lowered or "space" in lowered or "full" in lowered:
        hint = "free some disk space, then run `bot ingest` again"
    else:
        hint = "run the command again; if it keeps failing, rebuild with `bot ingest --rebuild`"
    return BotError(f"The index in {settings.chroma_dir} failed: {detail}", hint=hint)


class GuardedChroma:
    """A Chroma client or collection whose failures become one-line BotErrors (`store_failure`).

    Attributes pass through; method calls are wrapped.
    """

    def __init__(self, inner: Any, settings: Settings) -> None:
        self._inner = inner
        self._settings = settings

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value):
            return value
        settings = self._settings

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return value(*args, **kwargs)
            except Exception as exc:
                mapped = store_failure(settings, exc)
                if mapped is None or mapped is exc:
                    raise
                raise mapped from exc

        return call


def _embedding_adapter(embedder: Embedder | None) -> Any:
    """Wrap our embedder so Chroma never falls back to its downloading default function."""
    from chromadb.api.types import EmbeddingFunction

    class BotEmbeddingFunction(EmbeddingFunction):
        def __init__(self, inner: Embedder | None) -> None:
            self._inner = inner

        def __call__(self, input: Sequence[str]) -> Any:  # noqa: A002 - Chroma's parameter name
            if self._inner is None:
                return [list(_MANIFEST_VECTOR) for _ in input]
            return list(self._inner.embed(list(input)))

    return BotEmbeddingFunction(embedder)


class ArticleStore:
    """The index of one collection. Use `open_store` to get one."""

    def __init__(
        self, settings: Settings, embedder: Embedder, client: Any, *, create: bool
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self._raw_client = client
        self.client = GuardedChroma(client, settings)
        self.name = settings.collection
        self.location = describe_location(settings)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            chunk_ef = _embedding_adapter(embedder)
            manifest_ef = _embedding_adapter(None)
        self._chunk_ef = chunk_ef
        self._manifest_ef = manifest_ef
        self.chunks = self._collection(self.name, chunk_ef, create)
        self.articles = self._collection(f"{self.name}__articles", manifest_ef, create)
        self.files = self._collection(f"{self.name}__files", manifest_ef, create)
        if self.chunks is not None:
            self._check_compatible()

    # -- opening ---------------------------------------------------------------------------
    def _collection(self, name: str, ef: Any, create: bool) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                if create:
                    meta = {"hnsw:space": "cosine", **self._fresh_meta()}
                    found = self._raw_client.get_or_create_collection(
                        name=name, embedding_function=ef, metadata=meta
                    )
                else:
                    found = self._raw_client.get_collection(name=name, embedding_function=ef)
                return GuardedChroma(found, self.settings)
            except BotError:
                raise
            except Exception as exc:
                if not create and "does not exist" in str(exc).lower():
                    return None
                if not create and type(exc).__name__ in (
                    "NotFoundError",
                    "InvalidCollectionException",
                ):
                    return None
                if self.settings.chroma_url and _connection_reason(exc) is not None:
                    raise store_failure(self.settings, exc) from exc
                raise BotError(
                    f"Cannot open collection {name!r} at {self.location}: {_short(exc)}"
                ) from exc

    def _fresh_meta(self) -> dict[str, Any]:
        return {
            "bot_schema": SCHEMA_VERSION,
            "embedding_model": self.embedder.name,
            "embedding_dim": self.embedder.dimension,
            "generation": uuid.uuid4().hex,
            "dirty": False,
        }

    @property
    def exists(self) -> bool:
        return self.chunks is not None and self.articles is not None and self.files is not None

    def is_empty(self) -> bool:
        """No passage to answer from. Asks the chunk collection, which the search opens anyway:
        the first call on a Chroma collection loads it (~60 ms for 2,500 articles)."""
        return not self.exists or self.chunks.count() == 0

    def _meta(self) -> dict[str, Any]:
        return dict(self.chunks.metadata or {})

    def _check_compatible(self) -> None:
        meta = self._meta()
        schema = int(meta.get("bot_schema", SCHEMA_VERSION))
        if schema > SCHEMA_VERSION:
            raise BotError(
                f"The index at {self.location} was written by a newer bot (schema {schema}, "
                f"this one reads {SCHEMA_VERSION})",
                hint="upgrade bot, or rebuild with `bot ingest --rebuild`",
            )
        model = meta.get("embedding_model")
        dim = meta.get("embedding_dim")
        if model is not None and (model != self.embedder.name or dim != self.embedder.dimension):
            raise BotError(
                f"The index at {self.location} was built with embedding model {model} "
                f"({dim} dims), but this run uses {self.embedder.name} "
                f"({self.embedder.dimension} dims)",
                hint="rebuild it with `bot ingest --rebuild`, or set BOT_EMBEDDING back",
            )

    # -- state -----------------------------------------------------------------------------
    @property
    def generation(self) -> str:
        return str(self._meta().get("generation", "")) if self.chunks is not None else ""

    @property
    def dirty(self) -> bool:
        return bool(self._meta().get("dirty", False))

    def set_state(self, *, dirty: bool, new_generation: bool = False) -> None:
        meta = self._meta()
        meta.pop("hnsw:space", None)  # fixed at creation; Chroma refuses to modify it
        meta["dirty"] = dirty
        if new_generation:
            meta["generation"] = uuid.uuid4().hex
        self.chunks.modify(metadata=meta)

    def info(self) -> dict[str, Any]:
        meta = self._meta() if self.chunks is not None else {}
        return {
            "location": self.location,
            "collection": self.name,
            "embedding_model": meta.get("embedding_model", self.embedder.name),
            "embedding_dim": meta.get("embedding_dim", self.embedder.dimension),
            "articles": self.articles.count() if self.articles is not None else 0,
            "chunks": self.chunks.count() if self.chunks is not None else 0,
        }

    # -- manifests -------------------------------------------------------------------------
    def _get_all(self, collection: Any, include: list[str]) -> Iterator[tuple[str, Any, Any]]:
        for got in self._pages(collection, include):
            metas = got.get("metadatas") or [None] * len(got["ids"])
            docs = got.get("documents") or [None] * len(got["ids"])
            yield from zip(got["ids"], metas, docs, strict=True)

    @staticmethod
    def _pages(collection: Any, include: list[str], page: int = 5000) -> Iterator[dict]:
        total = collection.count()
        for offset in range(0, total, page):
            yield collection.get(include=include, limit=page, offset=offset)

    def file_entries(self) -> dict[str, FileEntry]:
        if self.files is None:
            return {}
        entries = (
            FileEntry.from_metadata(m) for _, m, _ in self._get_all(self.files, ["metadatas"])
        )
        return {e.path: e for e in entries}

    def article_entries(self, ids: Sequence[str] | None = None) -> dict[str, ArticleEntry]:
        if self.articles is None:
            return {}
        if ids is None:
            rows = self._get_all(self.articles, ["metadatas"])
            return {i: ArticleEntry.from_metadata(i, m) for i, m, _ in rows}
        out: dict[str, ArticleEntry] = {}
        ids = list(ids)
        for start in range(0, len(ids), 5000):
            got = self.articles.get(ids=ids[start : start + 5000], include=["metadatas"])
            for i, m in zip(got["ids"], got["metadatas"], strict=True):
                out[i] = ArticleEntry.from_metadata(i, m)
        return out

    def _batches(self, n: int) -> Iterator[tuple[int, int]]:
        size = max(1, min(int(self.client.get_max_batch_size()), 4000))
        for start in range(0, n, size):
            yield start, min(n, start + size)

    def upsert_articles(self, entries: Sequence[ArticleEntry]) -> None:
        for a, b in self._batches(len(entries)):
            part = entries[a:b]
            self.articles.upsert(
                ids=[e.article_id for e in part],
                embeddings=[list(_MANIFEST_VECTOR)] * len(part),
                metadatas=[e.to_metadata() for e in part],
            )

    def delete_articles(self, ids: Sequence[str]) -> None:
        """Forget articles: manifest record first, then chunks (see the module docstring)."""
        ids = list(ids)
        for a, b in self._batches(len(ids)):
            self.articles.delete(ids=ids[a:b])
        for article_id in ids:
            self.chunks.delete(where={"article_id": article_id})

    def upsert_files(self, entries: Sequence[FileEntry]) -> None:
        for a, b in self._batches(len(entries)):
            part = entries[a:b]
            self.files.upsert(
                ids=[e.record_id for e in part],
                embeddings=[list(_MANIFEST_VECTOR)] * len(part),
                metadatas=[e.to_metadata() for e in part],
            )

    def delete_files(self, paths: Sequence[str]) -> None:
        ids = [file_record_id(p) for p in paths]
        for a, b in self._batches(len(ids)):
            self.files.delete(ids=ids[a:b])

    # -- chunks ----------------------------------------------------------------------------
    def upsert_chunks(
        self,
        ids: Sequence[str],
        embeddings: Any,
        documents: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        for a, b in self._batches(len(ids)):
            self.chunks.upsert(
                ids=list(ids[a:b]),
                embeddings=embeddings[a:b],
                documents=list(documents[a:b]),
                metadatas=list(metadatas[a:b]),
            )

    def delete_chunk_ids(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for a, b in self._batches(len(ids)):
            self.chunks.delete(ids=ids[a:b])

    def iter_chunks(self, include_documents: bool = True) -> Iterator[tuple[str, dict, str]]:
        """Every chunk as (id, metadata, text), in pages."""
        include = ["metadatas", "documents"] if include_documents else ["metadatas"]
        for chunk_id, meta, doc in self._get_all(self.chunks, include):
            yield chunk_id, meta or {}, doc or ""

    def iter_chunk_pages(self) -> Iterator[tuple[list[str], list[dict], list[str], Any]]:
        """Every chunk, a page at a time: (ids, metadatas, texts, vectors as a float32 array)."""
        import numpy as np

        for got in self._pages(self.chunks, ["metadatas", "documents", "embeddings"]):
            ids = list(got["ids"])
            vectors = np.asarray(got["embeddings"], dtype=np.float32).reshape(len(ids), -1)
            metas = [m or {} for m in got.get("metadatas") or [None] * len(ids)]
            docs = [d or "" for d in got.get("documents") or [None] * len(ids)]
            yield ids, metas, docs, vectors

    def orphan_chunk_ids(self) -> list[str]:
        """Chunks that no article record claims (left behind by a crash)."""
        articles = self.article_entries()
        orphans = []
        for chunk_id, meta, _ in self.iter_chunks(include_documents=False):
            entry = articles.get(str(meta.get("article_id", "")))
            if entry is None or int(meta.get("chunk_index", -1)) >= entry.n_chunks:
                orphans.append(chunk_id)
        return orphans

    def drop(self) -> None:
        """Delete all three collections (for `--rebuild`)."""
        _drop_collections(self._raw_client, self.name)


def _drop_collections(client: Any, name: str) -> None:
    for collection in (name, f"{name}__articles", f"{name}__files"):
        with contextlib.suppress(Exception):  # a collection that was never created
            client.delete_collection(collection)


def drop_index(settings: Settings) -> None:
    """Delete the index named by the settings, whichever model or bot version wrote it (for
    `bot ingest --rebuild`, the fix for an index that `open_store` refuses)."""
    _drop_collections(open_client(settings), settings.collection)


def open_store(
    settings: Settings, embedder: Embedder | None = None, *, create: bool = False
) -> ArticleStore:
    """Open the index named by the settings; with `create`, make its collections if missing."""
    if embedder is None:
        from bot.index.embeddings import get_embedder

        embedder = get_embedder(settings)
    client = open_client(settings)
    return ArticleStore(settings, embedder, client, create=create)
