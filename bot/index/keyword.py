"""The keyword side of the search: BM25 (bm25s) over every chunk's title and text.

The index is built from the store once per index generation (every ingest that changes something
starts a new one) and cached on disk beside the data, with the chunk ids, sources and dates the
filters need, and every chunk's stored vector (memory-mapped), which MMR compares: the search then
asks Chroma only for the dense ranking and for the chosen passages.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.core.diskspace import disk_full_message, says_disk_full
from bot.core.errors import BotWarning
from bot.core.words import tokenize, tokens_version
from bot.index.bm25_scores import Bm25Scores
from bot.index.filters import Filters, passing

if TYPE_CHECKING:
    from bot.core.settings import Settings
    from bot.index.reader import IndexReader
    from bot.index.records import StoredChunk

VECTORS_FILE = "vectors.npy"  # float32, one row per chunk, beside the BM25 files
CHUNKS_FILE = "chunks.json"  # the ids, sources and dates, row for row
# Characters of the store's location and name kept in the cache folder's name.
CACHE_NAME_CHARS = 120
# The cache's size for each byte of its vectors: the BM25 postings and the chunk list add a sixth.
CACHE_BYTES_PER_VECTOR_BYTE = 1.2
# ... plus a disk block at least for each of its files (seven, with room for one more).
CACHE_FILES_BYTES = 8 * 4096


@dataclass
class LexicalIndex:
    """BM25 over all chunks plus the per-chunk fields the filters need."""

    bm25: Bm25Scores
    ids: list[str]
    sources: np.ndarray
    published_ts: np.ndarray
    # The stored vector of every chunk, row i for ids[i] (memory-mapped from the cache), so the
    # search needs no round trip to Chroma for the vectors MMR compares.
    vectors: np.ndarray | None = None
    _rows: dict[str, int] | None = None
    _id_array: np.ndarray | None = None  # `ids` as an array, to pick many by row at once
    _outlets: list[str] | None = None
    # The chunks it was built from, row for row, kept only when the caller asked (the snapshot is
    # written from them without reading the store again).
    built_from: list[StoredChunk] | None = None
    # The bm25s index of one built in this process, which writes its files to the cache.
    built_retriever: Any = None

    @property
    def vocab(self) -> dict[str, int]:
        return self.bm25.vocab

    def outlets(self) -> list[str]:
        """The distinct outlet names of the chunks, in first-seen order (read once per index:
        every question compares its words with them)."""
        if self._outlets is None:
            self._outlets = list(dict.fromkeys(str(s) for s in self.sources))
        return self._outlets

    def vectors_of(self, chunk_ids: list[str]) -> dict[str, np.ndarray]:
        """The stored vectors of those of `chunk_ids` this index holds."""
        if self.vectors is None or not chunk_ids:
            return {}
        if self._rows is None:
            self._rows = {cid: i for i, cid in enumerate(self.ids)}
        found = [(cid, self._rows[cid]) for cid in chunk_ids if cid in self._rows]
        if not found:
            return {}
        rows = np.asarray(self.vectors[[row for _, row in found]], dtype=np.float32)
        return {cid: rows[i] for i, (cid, _) in enumerate(found)}

    def search(self, question: str, k: int, filters: Filters) -> list[tuple[str, float]]:
        tokens = [t for t in tokenize(question) if t in self.vocab]
        if not tokens or not self.ids:
            return []
        mask = None
        if filters.active:
            keep = passing(filters, self.sources, self.published_ts)
            if not keep.any():
                return []
            mask = keep.astype(np.float32)
        top = self.bm25.top(tokens, min(k, len(self.ids)), mask)
        return [(self.ids[row], score) for row, score in top if score > 0]

    def term_chunks(
        self, words: list[str], filters: Filters, *, limit: int | None = None
    ) -> dict[str, list[str]]:
        """For each of `words` (as written), the ids of the chunks passing `filters` whose title
        or text holds it, in index order: the first `limit` of them, when given (enough to tell
        a rare word from a common one without listing every chunk a common word is in)."""
        if not self.ids or not self.vocab:
            return {word: [] for word in words}
        keep = passing(filters, self.sources, self.published_ts) if filters.active else None
        if self._id_array is None:
            self._id_array = np.array(self.ids, dtype=object)
        out: dict[str, list[str]] = {}
        for word in words:
            column = self.vocab.get(next(iter(tokenize(word)), ""))
            rows = self.bm25.rows_of(column) if column is not None else np.zeros(0, np.int64)
            if keep is not None:
                rows = rows[keep[rows]]
            out[word] = self._id_array[rows[:limit]].tolist()
        return out


def cache_dir(store: IndexReader) -> Path:
    """Where the BM25 indexes of this store's generations are cached."""
    return cache_base(store.settings, store.location, store.name)


def cache_base(settings: Settings, location: str, name: str) -> Path:
    """Where the BM25 indexes of the index at `location` called `name` are cached."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{location}-{name}")
    return settings.data_dir / "cache" / "bm25" / safe[-CACHE_NAME_CHARS:]


def index_folder(base: Path, generation: str) -> Path:
    """The cache folder of one generation's BM25 index. Its name holds the token rules too, so an
    index whose terms came from other rules (an older `tokenize`) is rebuilt, never read."""
    return base / f"{generation}-{tokens_version()}"


# The BM25 indexes last loaded for each store location, by generation: a process that asks many
# questions (chat, the benchmarks, a server) loads one once, not once per question. Two are kept:
# a server's requests that began before a new generation still read the previous one meanwhile.
KEEP_GENERATIONS = 2
_LOADED: dict[str, dict[str, LexicalIndex]] = {}
_LOADED_LOCK = threading.Lock()


def load_lexical_index(store: IndexReader, *, keep_chunks: bool = False) -> LexicalIndex:
    """The BM25 index of the store's current generation: from memory, from disk, or built. With
    `keep_chunks`, one built here keeps the chunks it was built from (`built_from`)."""
    base = cache_dir(store)
    generation = store.generation or "none"
    with _LOADED_LOCK:
        found = _LOADED.get(str(base), {}).get(generation)
    if found is not None:
        return found
    index = _load_cached(index_folder(base, generation))
    if index is None:
        index = _build(store)
        _save(index, base, generation, store.settings.data_dir)
        if not keep_chunks:
            index.built_from = None
    with _LOADED_LOCK:
        loaded = _LOADED.setdefault(str(base), {})
        loaded[generation] = index
        while len(loaded) > KEEP_GENERATIONS:
            del loaded[next(iter(loaded))]  # the oldest loaded
    return index


def forget_loaded() -> None:
    """Forget the indexes loaded in this process (the next load reads the disk cache again)."""
    _LOADED.clear()


def _load_cached(folder: Path) -> LexicalIndex | None:
    """The index cached in `folder`; None when there is none (a cache from another version or a
    half-written one is deleted, to be built again)."""
    meta_file = folder / CHUNKS_FILE
    if not meta_file.exists():
        shutil.rmtree(folder, ignore_errors=True)  # not an index this version can read
        return None
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        bm25 = Bm25Scores.load(folder)
        vectors = np.load(folder / VECTORS_FILE, mmap_mode="r")
        if vectors.shape[0] != len(meta["ids"]):
            raise ValueError("vectors and ids disagree")
        return LexicalIndex(
            bm25,
            meta["ids"],
            np.array(meta["sources"], dtype=object),
            np.array(meta["published_ts"], dtype=np.int64),
            vectors,
        )
    except Exception:  # noqa: BLE001 - any unreadable cache is rebuilt
        shutil.rmtree(folder, ignore_errors=True)
        return None


def _build(store: IndexReader) -> LexicalIndex:
    """BM25 over every chunk of the store, read a page at a time."""
    import bm25s

    ids, sources, dates, corpus, pages = [], [], [], [], []
    built_from: list[StoredChunk] = []
    for chunks, page_vectors in store.iter_chunk_pages():
        pages.append(page_vectors)
        built_from.extend(chunks)
        for chunk in chunks:
            ids.append(chunk.chunk_id)
            sources.append(chunk.source)
            dates.append(chunk.published_ts)
            corpus.append(tokenize(f"{chunk.title}\n{chunk.text}"))
    retriever = bm25s.BM25()
    if ids:
        retriever.index(corpus, show_progress=False)
        bm25 = Bm25Scores.of(retriever)
    else:  # nothing to index: no term, no score
        empty = np.zeros(0, dtype=np.float32)
        bm25 = Bm25Scores(empty, empty.astype(np.int32), np.zeros(1, np.int32), 0, {}, empty.dtype)
    return LexicalIndex(
        bm25,
        ids,
        np.array(sources, dtype=object),
        np.array(dates, dtype=np.int64),
        np.concatenate(pages) if pages else None,
        built_from=built_from,
        built_retriever=retriever,
    )


def _save(index: LexicalIndex, base: Path, generation: str, data_dir: Path) -> None:
    """Write the index to its `index_folder` (a folder renamed into place whole), and delete the
    older generations, which are never read again. A read-only data dir: no cache, no error; a
    full disk: no cache, and a warning that says so. A folder another process wrote for this
    generation meanwhile is kept (it may hold the snapshot, bot.index.snapshot)."""
    if index.vectors is None or index.built_retriever is None:  # no chunk: nothing worth caching
        return
    final = index_folder(base, generation)
    if final.exists():
        return
    tmp = base / f".{generation}.{time.time_ns()}"
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        index.built_retriever.save(str(tmp))
        np.save(tmp / VECTORS_FILE, index.vectors)
        (tmp / CHUNKS_FILE).write_text(
            json.dumps(
                {
                    "ids": index.ids,
                    "sources": index.sources.tolist(),
                    "published_ts": index.published_ts.tolist(),
                }
            ),
            encoding="utf-8",
        )
        for old in base.iterdir():
            if old.name not in (tmp.name, final.name):
                shutil.rmtree(old, ignore_errors=True)
        tmp.rename(final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if says_disk_full(exc):
            # Searching goes on without the cache (rebuilt in memory by every process).
            needed = int(index.vectors.nbytes * CACHE_BYTES_PER_VECTOR_BYTE) + CACHE_FILES_BYTES
            message = disk_full_message(data_dir, needed, "the search cache")
            warnings.warn(f"{message}; searching without it", BotWarning, stacklevel=2)
