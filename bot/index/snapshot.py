"""A read-only copy of a clean embedded index, so the commands that only read it never open Chroma.

Opening Chroma's embedded client means importing and starting a large library, which is most of
a cold `bot ask` outside the model. An embedded index of at most `SNAPSHOT_MAX_CHUNKS` chunks is
therefore also kept as plain files, per index generation, in that generation's keyword cache
folder (bot.index.keyword), beside the BM25 index and every chunk's vector (`vectors.npy`):

- `table.json`   the chunk ids, and the distinct (article id, title, outlet, url, published, date,
                 path) rows their metadata uses;
- `columns.npy`  per chunk: its row in that table, its index in the article, its offsets, and
                 where its text ends in `texts.npy` (UTF-8, one after the other);
- `norms.npy`    each vector's length, for exact cosine similarity;
- `articles.json` the manifest's articles; `snapshot.json` (written last) the generation, the
                 embedding model and the chunk count.

The pointer `<index folder>/snapshot-<collection>.json` names the generation the snapshot matches.
Every write to Chroma goes through `ArticleStore`, which removes the pointer (durably) before it
writes; `publish_snapshot` writes it (temp file + rename) only when the store is clean, after the
snapshot's files are on disk. A crash at any moment therefore leaves either no pointer (readers
use Chroma) or a pointer to a complete snapshot of the current generation. With a Chroma server
there is never a snapshot: another machine may write the index.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.core.diskspace import disk_full_message, says_disk_full
from bot.core.errors import BotWarning
from bot.index.filters import Filters, passing
from bot.index.keyword import (
    VECTORS_FILE,
    cache_base,
    cache_dir,
    index_folder,
    load_lexical_index,
)
from bot.index.records import ArticleEntry, StoredChunk

if TYPE_CHECKING:
    from bot.core.settings import Settings
    from bot.index.embeddings import Embedder
    from bot.index.store import ArticleStore

# Above this many chunks the index is searched by Chroma's HNSW graph, not by an exact scan of
# every vector: up to about this size the scan costs no more than Chroma's query (bench/README.md,
# "Retrieval latency").
SNAPSHOT_MAX_CHUNKS = 20_000
# Rows per matrix-vector product in the scan: the BLAS library runs a product this small on one
# thread, where a larger one spreads over threads that stall when other processes hold the cores.
SCAN_BLOCK_ROWS = 1024
SNAPSHOT_FORMAT = 1  # the layout of the files below; a snapshot of another layout is not read
TABLE_FILE = "table.json"
COLUMNS_FILE = "columns.npy"
TEXTS_FILE = "texts.npy"
NORMS_FILE = "norms.npy"
ARTICLES_FILE = "articles.json"
MARKER_FILE = "snapshot.json"
# Bytes a chunk takes in the snapshot's files besides its text (its id and row in the table, its
# columns and vector length): for the space a failed write needed.
SNAPSHOT_BYTES_PER_CHUNK = 160
# The columns of `columns.npy`, in order.
ROW, CHUNK_INDEX, START, END, TEXT_END = range(5)
# The columns of a row of `table.json`, in order.
ROW_FIELDS = ("article_id", "title", "source", "url", "published", "published_ts", "path")


# --- the pointer ----------------------------------------------------------------------------------


def pointer_path(settings: Settings) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", settings.collection)
    return settings.chroma_dir / f"snapshot-{safe}.json"


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # a file system that cannot sync a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def retract_snapshot(settings: Settings) -> None:
    """Remove the pointer, durably, before anything writes to the index: from then on readers
    use Chroma. The snapshot it named loses its `snapshot.json` too, so only a new one is ever
    published (a write need not start a new generation). A pointer that cannot be removed stops
    the write (the OSError propagates)."""
    if settings.chroma_url:
        return
    path = pointer_path(settings)
    generation = current_generation(settings)
    try:
        path.unlink()
    except FileNotFoundError:
        return
    _fsync_dir(path.parent)
    if generation is not None:
        marker = _folder_of(settings, generation) / MARKER_FILE
        marker.unlink(missing_ok=True)
        _fsync_dir(marker.parent)


def current_generation(settings: Settings) -> str | None:
    """The generation the pointer names (None: no usable snapshot, read Chroma)."""
    if settings.chroma_url:
        return None
    try:
        return str(json.loads(pointer_path(settings).read_text(encoding="utf-8"))["generation"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_durably(path: Path, data: bytes) -> None:
    """`data` in `path`, whole or not at all: a temp file synced, then renamed into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    """Every file of `folder` on disk, and the folder itself."""
    for item in folder.iterdir():
        if item.is_file():
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)


# --- writing --------------------------------------------------------------------------------------


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _write_files(folder: Path, chunks: list[StoredChunk], vectors: np.ndarray) -> None:
    """The chunk table, texts and vector lengths of `chunks` (row for row with `vectors`)."""
    rows: dict[tuple[Any, ...], int] = {}
    columns = np.zeros((len(chunks), 5), dtype=np.int64)
    texts = bytearray()
    for i, c in enumerate(chunks):
        key = (c.article_id, c.title, c.source, c.url, c.published, c.published_ts, c.path)
        texts += c.text.encode("utf-8", "surrogatepass")
        columns[i] = (rows.setdefault(key, len(rows)), c.chunk_index, c.start, c.end, len(texts))
    table = {"ids": [c.chunk_id for c in chunks], "rows": [list(k) for k in rows]}
    _write_durably(folder / TABLE_FILE, json.dumps(table).encode("utf-8"))
    _write_durably(folder / COLUMNS_FILE, _npy_bytes(columns))
    _write_durably(folder / TEXTS_FILE, _npy_bytes(np.frombuffer(bytes(texts), dtype=np.uint8)))
    norms = np.linalg.norm(np.asarray(vectors, dtype=np.float32), axis=1).astype(np.float32)
    _write_durably(folder / NORMS_FILE, _npy_bytes(norms))


def _snapshot_chunks(
    store: ArticleStore, ids: list[str], built: list[StoredChunk] | None
) -> list[StoredChunk] | None:
    """The store's chunks in the keyword index's row order (None when the two disagree)."""
    if built is None or [c.chunk_id for c in built] != ids:
        by_id = {c.chunk_id: c for c in store.iter_chunks(with_text=True)}
        if set(by_id) != set(ids):
            return None
        built = [by_id[i] for i in ids]
    return built


def publish_snapshot(store: ArticleStore) -> bool:
    """Make the snapshot of the store's current generation the one readers use (True when there
    is one). Nothing to do with a Chroma server, a store that is not clean, an empty one or one
    over `SNAPSHOT_MAX_CHUNKS`; a data folder that cannot be written leaves Chroma to answer."""
    settings = store.settings
    generation = store.generation
    if settings.chroma_url or not generation or store.dirty:
        return False
    folder = index_folder(cache_dir(store), generation)
    complete = _marker(folder, generation) is not None
    if complete and current_generation(settings) == generation:
        return True
    count = store.chunk_count()
    if count == 0 or count > SNAPSHOT_MAX_CHUNKS:
        return False
    if not (complete or _write_snapshot(store, folder, generation)):
        return False
    try:
        _write_durably(pointer_path(settings), json.dumps({"generation": generation}).encode())
        _fsync_dir(pointer_path(settings).parent)
    except OSError as exc:
        _warn_if_disk_full(settings, exc, SNAPSHOT_BYTES_PER_CHUNK)
        return False
    return True


def _warn_if_disk_full(settings: Settings, exc: OSError, needed: int) -> None:
    """A snapshot that does not fit is a warning: the commands read the index meanwhile."""
    if says_disk_full(exc):
        message = disk_full_message(settings.data_dir, needed, "the read snapshot")
        warnings.warn(f"{message}; reading the index instead", BotWarning, stacklevel=3)


def _write_snapshot(store: ArticleStore, folder: Path, generation: str) -> bool:
    """The snapshot's files in `folder` (the keyword cache folder of `generation`), on disk."""
    lexical = load_lexical_index(store, keep_chunks=True)
    built, lexical.built_from = lexical.built_from, None
    chunks = _snapshot_chunks(store, lexical.ids, built)
    if chunks is None or lexical.vectors is None or not folder.is_dir():
        return False
    articles = {i: e.to_metadata() for i, e in store.article_entries().items()}
    marker = {
        "format": SNAPSHOT_FORMAT,
        "generation": generation,
        "embedding_model": store.embedder.name,
        "embedding_dim": store.embedder.dimension,
        "chunks": len(chunks),
    }
    try:
        _write_files(folder, chunks, lexical.vectors)
        _write_durably(folder / ARTICLES_FILE, json.dumps(articles).encode("utf-8"))
        _write_durably(folder / MARKER_FILE, json.dumps(marker).encode("utf-8"))
        _sync_folder(folder)
    except OSError as exc:
        texts = sum(len(c.text.encode("utf-8", "surrogatepass")) for c in chunks)
        _warn_if_disk_full(store.settings, exc, texts + SNAPSHOT_BYTES_PER_CHUNK * len(chunks))
        return False
    return True


# --- reading --------------------------------------------------------------------------------------


def _marker(folder: Path, generation: str) -> dict[str, Any] | None:
    """The snapshot's description, when `folder` holds a complete snapshot of `generation`."""
    try:
        marker = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict):
        return None
    if marker.get("format") != SNAPSHOT_FORMAT or marker.get("generation") != generation:
        return None
    return marker


def _folder_of(settings: Settings, generation: str) -> Path:
    """The keyword cache folder of `generation` of the embedded index, which holds its snapshot."""
    from bot.index.chroma import describe_location

    base = cache_base(settings, describe_location(settings), settings.collection)
    return index_folder(base, generation)


def _snapshot_folder(settings: Settings) -> tuple[Path, dict[str, Any]] | None:
    generation = current_generation(settings)
    if generation is None:
        return None
    folder = _folder_of(settings, generation)
    marker = _marker(folder, generation)
    if marker is None or int(marker.get("chunks", 0)) > SNAPSHOT_MAX_CHUNKS:
        return None
    return folder, marker


def snapshot_ready(settings: Settings) -> bool:
    """A current snapshot will answer (unless it was written with another embedding model)."""
    return _snapshot_folder(settings) is not None


def open_snapshot(settings: Settings, embedder: Embedder) -> SnapshotStore | None:
    """The snapshot of the index, when one is current and written with `embedder`'s model; None
    when Chroma must answer (it also says why an index does not fit this run)."""
    found = _snapshot_folder(settings)
    if found is None:
        return None
    folder, marker = found
    if marker.get("embedding_model") != embedder.name:
        return None
    if marker.get("embedding_dim") != embedder.dimension:
        return None
    try:
        return SnapshotStore(settings, embedder, folder, str(marker["generation"]))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


class SnapshotStore:
    """The index as its snapshot holds it (an `IndexReader`). Use `open_snapshot` to get one.

    Every file is opened (the arrays memory-mapped) when the store is made, so a newer ingest
    that deletes this generation's folder meanwhile does not take the files from under it."""

    def __init__(
        self, settings: Settings, embedder: Embedder, folder: Path, generation: str
    ) -> None:
        from bot.index.chroma import describe_location

        self.settings = settings
        self.embedder = embedder
        self.name = settings.collection
        self.location = describe_location(settings)
        self._generation = generation
        table = json.loads((folder / TABLE_FILE).read_text(encoding="utf-8"))
        self._ids: list[str] = list(table["ids"])
        self._rows: list[list[Any]] = list(table["rows"])
        self._columns = np.load(folder / COLUMNS_FILE, mmap_mode="r", allow_pickle=False)
        self._texts = np.load(folder / TEXTS_FILE, mmap_mode="r", allow_pickle=False)
        self._norms = np.load(folder / NORMS_FILE, allow_pickle=False)
        self._vectors = np.load(folder / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
        articles = json.loads((folder / ARTICLES_FILE).read_text(encoding="utf-8"))
        self._articles: dict[str, dict[str, Any]] = dict(articles)
        n = len(self._ids)
        if not (self._columns.shape[0] == self._vectors.shape[0] == len(self._norms) == n):
            raise ValueError("the snapshot's files disagree")
        self._index = {cid: i for i, cid in enumerate(self._ids)}
        by_row = np.asarray(self._columns[:, ROW], dtype=np.int64)
        fields = {name: [r[j] for r in self._rows] for j, name in enumerate(ROW_FIELDS)}
        self._sources = np.asarray(fields["source"], dtype=object)[by_row]
        self._dates = np.asarray(fields["published_ts"], dtype=np.int64)[by_row]
        self._article_ids = np.asarray(fields["article_id"], dtype=object)[by_row]

    @property
    def generation(self) -> str:
        return self._generation

    @property
    def exists(self) -> bool:
        return True

    def reopened(self) -> SnapshotStore | None:
        """The newer generation's snapshot once its pointer is published (while an ingest runs
        there is none, and this one, whose files stay open, answers)."""
        published = current_generation(self.settings)
        if published is None or published == self._generation:
            return None
        return open_snapshot(self.settings, self.embedder)

    def is_empty(self) -> bool:
        return not self._ids

    def _chunk(self, i: int) -> StoredChunk:
        row, chunk_index, start, end, text_end = (int(v) for v in self._columns[i])
        text_start = int(self._columns[i - 1, TEXT_END]) if i else 0
        text = bytes(self._texts[text_start:text_end]).decode("utf-8", "surrogatepass")
        fields = dict(zip(ROW_FIELDS, self._rows[row], strict=True))
        return StoredChunk(
            chunk_id=self._ids[i],
            article_id=str(fields["article_id"]),
            chunk_index=chunk_index,
            start=start,
            end=end,
            title=str(fields["title"]),
            source=str(fields["source"]),
            url=str(fields["url"]),
            published=str(fields["published"]),
            published_ts=int(fields["published_ts"]),
            path=str(fields["path"]),
            text=text,
        )

    def dense_ids(self, vector: np.ndarray, n: int, filters: Filters | None = None) -> list[str]:
        """Exact cosine similarity against every chunk that passes `filters`, best first."""
        query = np.asarray(vector, dtype=np.float32)
        keep = np.flatnonzero(passing(filters, self._sources, self._dates))
        if n <= 0 or keep.size == 0:
            return []
        whole = keep.size == len(self._ids)
        vectors = self._vectors if whole else self._vectors[keep]
        norms = self._norms if whole else self._norms[keep]
        scale = norms * (float(np.linalg.norm(query)) or 1.0)
        dots = [
            vectors[a : a + SCAN_BLOCK_ROWS] @ query for a in range(0, len(norms), SCAN_BLOCK_ROWS)
        ]
        sims = np.concatenate(dots) / np.where(scale > 0, scale, 1.0)
        top = np.argpartition(-sims, n - 1)[:n] if n < sims.size else np.arange(sims.size)
        best = top[np.argsort(-sims[top], kind="stable")]
        return [self._ids[int(keep[i])] for i in best]

    def chunks_by_ids(self, ids: Sequence[str]) -> list[StoredChunk]:
        return [self._chunk(self._index[i]) for i in ids if i in self._index]

    def chunk_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        return {
            i: np.asarray(self._vectors[self._index[i]], dtype=np.float32)
            for i in ids
            if i in self._index
        }

    def chunks_where(
        self, filters: Filters | None = None, article_id: str | None = None
    ) -> list[StoredChunk]:
        keep = passing(filters, self._sources, self._dates, self._article_ids, article_id)
        return [self._chunk(int(i)) for i in np.flatnonzero(keep)]

    def article_entries(self, ids: Sequence[str] | None = None) -> dict[str, ArticleEntry]:
        wanted = self._articles if ids is None else [i for i in ids if i in self._articles]
        return {i: ArticleEntry.from_metadata(i, self._articles[i]) for i in wanted}

    def iter_chunk_pages(self) -> Iterator[tuple[list[StoredChunk], np.ndarray]]:
        if self._ids:
            chunks = [self._chunk(i) for i in range(len(self._ids))]
            yield chunks, np.asarray(self._vectors, dtype=np.float32)
