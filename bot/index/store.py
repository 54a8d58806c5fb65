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

Every method that writes first removes the pointer to the read snapshot (bot.index.snapshot), so
no reader takes that copy for the index once it may differ; `open_reader` reads the snapshot when
it is current, and this store otherwise.

This module (with bot.index.chroma, which opens the client, and bot.index.lease, which keeps a
server's writer lease in a collection of its own) is the only one that touches Chroma objects:
the rest of bot asks `ArticleStore` typed questions and gets `StoredChunk`,
`ArticleEntry` and `FileEntry` records back (bot.index.records). Once the store is open, a failure
of Chroma itself becomes a one-line `BotError` that names the server URL or the index folder and
the fix: every method that calls Chroma is `guarded` (bot.index.guards).
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.core.diskspace import says_disk_full
from bot.core.errors import BotError
from bot.core.settings import Settings
from bot.index.chroma import (
    MANIFEST_VECTOR,
    REBUILD_FIX,
    IndexDamaged,
    collection_names,
    connection_reason,
    damage_at_a_glance,
    damage_found,
    describe_location,
    drop_collections,
    embedding_function,
    failures_as_bot_errors,
    import_chromadb,
    is_damage,
    is_missing_collection,
    lost_collection,
    open_client,
    rebuild_from_scratch,
    short_detail,
    store_failure,
)
from bot.index.embeddings import Embedder
from bot.index.filters import Filters, where_clause
from bot.index.guards import guarded, space_for, writing
from bot.index.kill_switch import wrote
from bot.index.reader import IndexReader
from bot.index.records import ArticleEntry, FileEntry, StoredChunk, chunks_of, file_record_id
from bot.index.snapshot import open_snapshot, retract_snapshot, snapshot_ready

if TYPE_CHECKING:
    from bot.index.lease import WriterLease

SCHEMA_VERSION = 1
# Records per read: few round trips to a server, while a page of chunks with their vectors stays
# a few megabytes.
PAGE_SIZE = 5000
# Records per write at most (Chroma's own limit, `get_max_batch_size`, may be lower).
WRITE_BATCH = 4000
# Articles per `$in` filter when moving chunks to a new path: a short query string for a server.
REPOINT_ARTICLES = 200


class ArticleStore:
    """The index of one collection. Use `open_store` to get one."""

    def __init__(
        self, settings: Settings, embedder: Embedder, client: Any, *, create: bool
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self._client = client
        # With a Chroma server, the writer lease this store's writes run under (bot.index.lease).
        self.lease: WriterLease | None = None
        self.name = settings.collection
        self.location = describe_location(settings)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._chunk_ef = embedding_function(embedder)
            manifest_ef = embedding_function(None)
        chunks, articles, files = collection_names(self.name)
        self._chunks = self._collection(chunks, self._chunk_ef, create)
        self._articles = self._collection(articles, manifest_ef, create)
        self._files = self._collection(files, manifest_ef, create)
        if self._chunks is not None:
            self._check_compatible()

    # -- opening ---------------------------------------------------------------------------
    def _collection(self, name: str, ef: Any, create: bool) -> Any:
        """The collection called `name` (None when it does not exist and `create` is off)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                try:
                    return self._client.get_collection(name=name, embedding_function=ef)
                except Exception as exc:
                    if not (create and is_missing_collection(exc)):
                        raise
                retract_snapshot(self.settings)  # creating a collection writes to the index
                meta = {"hnsw:space": "cosine", **self._fresh_meta()}
                return self._client.get_or_create_collection(
                    name=name, embedding_function=ef, metadata=meta
                )
            except Exception as exc:
                if not create and is_missing_collection(exc):
                    self._check_not_lost(name)
                    return None
                lost = self.settings.chroma_url and connection_reason(exc) is not None
                known = lost or is_damage(exc) or says_disk_full(exc)
                mapped = store_failure(self.settings, exc) if known else None
                if mapped is not None:
                    raise mapped from exc
                raise BotError(
                    f"Cannot open collection {name!r} at {self.location}: {short_detail(exc)}"
                ) from exc

    @guarded
    def _check_not_lost(self, name: str) -> None:
        """A collection that looks missing from a damaged index raises IndexDamaged: `bot ask`
        would otherwise load the seeds into it."""
        reason = lost_collection(self.settings, self._client, name)
        if reason is not None:
            raise IndexDamaged(self.settings, reason)

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
        return self._chunks is not None and self._articles is not None and self._files is not None

    def is_empty(self) -> bool:
        """No passage to answer from. Asks the chunk collection, which the search opens anyway:
        the first call on a Chroma collection loads it, which takes time on a large index."""
        return not self.exists or self.chunk_count() == 0

    def _meta(self) -> dict[str, Any]:
        return dict(self._chunks.metadata or {}) if self._chunks is not None else {}

    def _check_compatible(self) -> None:
        meta = self._meta()
        schema = int(meta.get("bot_schema", SCHEMA_VERSION))
        if schema > SCHEMA_VERSION:
            raise BotError(
                f"The index at {self.location} was written by a newer bot (schema {schema}, "
                f"this one reads {SCHEMA_VERSION})",
                hint=f"upgrade bot, or rebuild with {REBUILD_FIX}",
            )
        model = meta.get("embedding_model")
        dim = meta.get("embedding_dim")
        if model is not None and (model != self.embedder.name or dim != self.embedder.dimension):
            raise BotError(
                f"The index at {self.location} was built with embedding model {model} "
                f"({dim} dims), but this run uses {self.embedder.name} "
                f"({self.embedder.dimension} dims)",
                hint=f"rebuild it with {REBUILD_FIX}, or set BOT_EMBEDDING back",
            )

    # -- state -----------------------------------------------------------------------------
    @property
    def generation(self) -> str:
        """Changes with every ingest that changes the index (caches built from it key on it)."""
        return str(self._meta().get("generation", ""))

    @guarded
    def reopened(self) -> IndexReader | None:
        """A reader of the index's newest generation when another process wrote one since this
        store opened (None: this one is current): one small request to a Chroma server."""
        try:
            now = self._client.get_collection(name=self.name, embedding_function=self._chunk_ef)
        except Exception as exc:
            if is_missing_collection(exc):
                return None  # being rebuilt: nothing newer to read yet
            raise
        if (now.metadata or {}).get("generation") == (self.generation or None):
            return None
        return open_reader(self.settings, self.embedder)

    @property
    def dirty(self) -> bool:
        """An ingest was writing and did not finish (see the module docstring)."""
        return bool(self._meta().get("dirty", False))

    def _space_for(self, records: Sequence[Any] = (), vector_bytes: int = 0) -> Any:
        return space_for(self.settings, records, vector_bytes)

    @writing
    def set_state(self, *, dirty: bool, new_generation: bool = False) -> None:
        meta = self._meta()
        meta.pop("hnsw:space", None)  # fixed at creation; Chroma refuses to modify it
        meta["dirty"] = dirty
        if new_generation:
            meta["generation"] = uuid.uuid4().hex
        with self._space_for([meta]):
            self._chunks.modify(metadata=meta)
            wrote()

    @guarded
    def chunk_count(self) -> int:
        return self._chunks.count() if self._chunks is not None else 0

    @guarded
    def article_count(self) -> int:
        return self._articles.count() if self._articles is not None else 0

    def info(self) -> dict[str, Any]:
        meta = self._meta()
        return {
            "location": self.location,
            "collection": self.name,
            "embedding_model": meta.get("embedding_model", self.embedder.name),
            "embedding_dim": meta.get("embedding_dim", self.embedder.dimension),
            "articles": self.article_count(),
            "chunks": self.chunk_count(),
        }

    # -- reading in pages --------------------------------------------------------------------
    @guarded
    def _get(self, collection: Any, **query: Any) -> dict[str, Any]:
        return dict(collection.get(**query))

    def _pages(
        self, collection: Any, include: list[str], where: dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every record of `collection` (that passes `where`), PAGE_SIZE at a time."""
        if collection is None:
            return
        offset = 0
        while True:
            got = self._get(
                collection, where=where, include=include, limit=PAGE_SIZE, offset=offset
            )
            if got["ids"]:
                yield got
            if len(got["ids"]) < PAGE_SIZE:
                return
            offset += PAGE_SIZE

    def _rows(self, collection: Any, include: list[str]) -> Iterator[tuple[str, Any]]:
        """(id, metadata) of every record of a manifest."""
        for got in self._pages(collection, include):
            yield from zip(got["ids"], got["metadatas"], strict=True)

    # -- manifests -------------------------------------------------------------------------
    def file_entries(self) -> dict[str, FileEntry]:
        entries = (FileEntry.from_metadata(m) for _, m in self._rows(self._files, ["metadatas"]))
        return {e.path: e for e in entries}

    def article_entries(self, ids: Sequence[str] | None = None) -> dict[str, ArticleEntry]:
        if self._articles is None:
            return {}
        if ids is None:
            rows = self._rows(self._articles, ["metadatas"])
            return {i: ArticleEntry.from_metadata(i, m) for i, m in rows}
        out: dict[str, ArticleEntry] = {}
        ids = list(ids)
        for start in range(0, len(ids), PAGE_SIZE):
            got = self._get(
                self._articles, ids=ids[start : start + PAGE_SIZE], include=["metadatas"]
            )
            for i, m in zip(got["ids"], got["metadatas"], strict=True):
                out[i] = ArticleEntry.from_metadata(i, m)
        return out

    @guarded
    def _batches(self, n: int) -> list[tuple[int, int]]:
        size = max(1, min(int(self._client.get_max_batch_size()), WRITE_BATCH))
        return [(start, min(n, start + size)) for start in range(0, n, size)]

    @writing
    def upsert_articles(self, entries: Sequence[ArticleEntry]) -> None:
        for a, b in self._batches(len(entries)):
            metadatas = [e.to_metadata() for e in entries[a:b]]
            with self._space_for(metadatas):
                self._articles.upsert(
                    ids=[e.article_id for e in entries[a:b]],
                    embeddings=[list(MANIFEST_VECTOR)] * len(metadatas),
                    metadatas=metadatas,
                )
                wrote()

    @writing
    def delete_articles(self, ids: Sequence[str]) -> None:
        """Forget articles: manifest record first, then chunks (see the module docstring)."""
        ids = list(ids)
        with self._space_for():
            for a, b in self._batches(len(ids)):
                self._articles.delete(ids=ids[a:b])
                wrote()
            for article_id in ids:
                self._chunks.delete(where={"article_id": article_id})
                wrote()

    @writing
    def upsert_files(self, entries: Sequence[FileEntry]) -> None:
        for a, b in self._batches(len(entries)):
            metadatas = [e.to_metadata() for e in entries[a:b]]
            with self._space_for(metadatas):
                self._files.upsert(
                    ids=[e.record_id for e in entries[a:b]],
                    embeddings=[list(MANIFEST_VECTOR)] * len(metadatas),
                    metadatas=metadatas,
                )
                wrote()

    @writing
    def delete_files(self, paths: Sequence[str]) -> None:
        ids = [file_record_id(p) for p in paths]
        with self._space_for():
            for a, b in self._batches(len(ids)):
                self._files.delete(ids=ids[a:b])
                wrote()

    # -- chunks ----------------------------------------------------------------------------
    @writing
    def upsert_chunks(self, chunks: Sequence[StoredChunk], vectors: Any) -> None:
        """Write chunks with their vectors (row i of `vectors` for `chunks[i]`)."""
        for a, b in self._batches(len(chunks)):
            part = chunks[a:b]
            documents = [c.text for c in part]
            metadatas = [c.to_metadata() for c in part]
            with self._space_for(documents + metadatas, np.asarray(vectors[a:b]).nbytes):
                self._chunks.upsert(
                    ids=[c.chunk_id for c in part],
                    embeddings=vectors[a:b],
                    documents=documents,
                    metadatas=metadatas,
                )
                wrote()

    @writing
    def delete_chunk_ids(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        with self._space_for():
            for a, b in self._batches(len(ids)):
                self._chunks.delete(ids=ids[a:b])
                wrote()

    def iter_chunks(self, *, with_text: bool = True) -> Iterator[StoredChunk]:
        """Every chunk, read a page at a time (without its text, unless `with_text`)."""
        include = ["metadatas", "documents"] if with_text else ["metadatas"]
        for got in self._pages(self._chunks, include):
            yield from chunks_of(got)

    def iter_chunk_pages(self) -> Iterator[tuple[list[StoredChunk], np.ndarray]]:
        """Every chunk, a page at a time: the chunks, and their vectors as a float32 array."""
        for got in self._pages(self._chunks, ["metadatas", "documents", "embeddings"]):
            vectors = np.asarray(got["embeddings"], dtype=np.float32)
            yield chunks_of(got), vectors.reshape(len(got["ids"]), -1)

    def orphan_chunk_ids(self) -> list[str]:
        """Chunks that no article record claims (left behind by a crash)."""
        articles = self.article_entries()
        orphans = []
        for chunk in self.iter_chunks(with_text=False):
            entry = articles.get(chunk.article_id)
            if entry is None or chunk.chunk_index >= entry.n_chunks:
                orphans.append(chunk.chunk_id)
        return orphans

    @writing
    def repoint_chunks(self, paths: dict[str, list[str]]) -> int:
        """Give the chunks of these articles whose path is not one of `paths[article]` the first
        of them (sorted): metadata only, nothing is embedded again. Returns how many moved."""
        ids = sorted(a for a, held in paths.items() if held)
        moved: list[tuple[str, dict[str, Any]]] = []
        for start in range(0, len(ids), REPOINT_ARTICLES):
            where = {"article_id": {"$in": ids[start : start + REPOINT_ARTICLES]}}
            for got in self._pages(self._chunks, ["metadatas"], where):
                for i, meta in zip(got["ids"], got["metadatas"], strict=True):
                    held = paths[str(meta["article_id"])]
                    if meta.get("path") not in held:
                        moved.append((i, {**meta, "path": min(held)}))
        for a, b in self._batches(len(moved)):
            part = moved[a:b]
            with self._space_for([m for _, m in part]):
                self._chunks.update(ids=[i for i, _ in part], metadatas=[m for _, m in part])
                wrote()
        return len(moved)

    # -- questions the search and the summaries ask --------------------------------------------
    @guarded
    def dense_ids(self, vector: np.ndarray, n: int, filters: Filters | None = None) -> list[str]:
        """The ids of the `n` chunks nearest to `vector` that pass `filters`, nearest first."""
        if self._chunks is None:
            return []
        got = self._chunks.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32).tolist()],
            n_results=n,
            where=where_clause(filters),
            include=[],  # ids only
        )
        return list(got["ids"][0])

    def chunks_by_ids(self, ids: Sequence[str]) -> list[StoredChunk]:
        """The chunks with these ids, in that order; ids no chunk has (any more) are skipped."""
        if self._chunks is None or not ids:
            return []
        got = self._get(self._chunks, ids=list(ids), include=["metadatas", "documents"])
        found = {c.chunk_id: c for c in chunks_of(got)}
        return [found[i] for i in ids if i in found]

    def chunk_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of the chunks with these ids (ids no chunk has are left out)."""
        if self._chunks is None or not ids:
            return {}
        got = self._get(self._chunks, ids=list(ids), include=["embeddings"])
        return {
            chunk_id: np.asarray(got["embeddings"][i], dtype=np.float32)
            for i, chunk_id in enumerate(got["ids"])
        }

    def chunks_where(
        self, filters: Filters | None = None, article_id: str | None = None
    ) -> list[StoredChunk]:
        """Every chunk that passes `filters` (and belongs to `article_id`, when given)."""
        where = where_clause(filters, article_id)
        pages = self._pages(self._chunks, ["metadatas", "documents"], where)
        return [chunk for got in pages for chunk in chunks_of(got)]

    # -- dropping --------------------------------------------------------------------------
    @writing
    def drop(self) -> None:
        """Delete all three collections (for `--rebuild`)."""
        drop_collections(self._client, self.name)


def import_backend(settings: Settings) -> None:
    """Import Chroma now rather than when the first store opens (`bot ask` times it as a stage
    of its own, and embeds the question meanwhile), unless a snapshot will answer instead."""
    if not snapshot_ready(settings):
        import_chromadb()


def drop_index(settings: Settings) -> None:
    """Delete the index named by the settings, whichever model or bot version wrote it (for
    `bot ingest PATHS --rebuild`, the fix for an index that `open_store` refuses); an embedded
    index whose files are damaged is moved aside whole (`rebuild_from_scratch`)."""
    with failures_as_bot_errors(settings):
        retract_snapshot(settings)
    rebuild_from_scratch(settings)


def refuse_damaged(settings: Settings) -> None:
    """Raise IndexDamaged when any page of the embedded index is damaged: for an index that looks
    empty, which `bot ask` would otherwise fill with the seed articles."""
    reason = damage_found(settings)
    if reason is not None:
        raise IndexDamaged(settings, reason)


def open_store(
    settings: Settings, embedder: Embedder | None = None, *, create: bool = False
) -> ArticleStore:
    """Open the index named by the settings; with `create`, make its collections if missing."""
    if embedder is None:
        from bot.index.embeddings import get_embedder

        embedder = get_embedder(settings)
    client = open_client(settings)
    return ArticleStore(settings, embedder, client, create=create)


def open_reader(settings: Settings, embedder: Embedder | None = None) -> IndexReader:
    """The index to read from: its snapshot when a current one exists (Chroma is then never
    imported), else the Chroma store itself (`open_store`)."""
    if embedder is None:
        from bot.index.embeddings import get_embedder

        embedder = get_embedder(settings)
    problem = None if settings.chroma_url else damage_at_a_glance(settings.chroma_dir)
    if problem is not None:  # the snapshot would hide it until the next write
        raise IndexDamaged(settings, problem)
    return open_snapshot(settings, embedder) or open_store(settings, embedder)
