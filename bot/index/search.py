"""Find the passages that matter for a question: dense + BM25, fused by reciprocal rank, then MMR.

- Dense: the question's vector against Chroma's HNSW index (with metadata filters in `where`).
- Lexical: BM25 (bm25s) over every chunk. The BM25 index is built from the store once per index
  generation (every ingest that changes something starts a new one) and cached on disk beside the
  data, with the chunk ids, sources and dates it needs for the same filters, and every chunk's
  stored vector (memory-mapped), which MMR compares.
- Fusion: reciprocal rank fusion, `sum(1 / (60 + rank))` over the two rankings.
- Diversity: maximal marginal relevance over the candidates' vectors, where two chunks of one
  article count as more alike than their vectors say, so one article does not fill every slot.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.errors import BotError
from bot.core.types import Passage
from bot.core.words import tokenize

RRF_K = 60
SAME_ARTICLE_BONUS = 0.15


@dataclass
class Filters:
    source: str | None = None
    since_ts: int | None = None
    until_ts: int | None = None

    @property
    def active(self) -> bool:
        return bool(self.source) or self.since_ts is not None or self.until_ts is not None

    def chroma_where(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if self.source:
            clauses.append({"source": self.source})
        if self.since_ts is not None:
            clauses.append({"published_ts": {"$gte": self.since_ts}})
        if self.until_ts is not None:
            clauses.append({"published_ts": {"$lte": self.until_ts}})
            clauses.append({"published_ts": {"$gte": 0}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def resolve_source(store: Any, name: str | None) -> str | None:
    """The indexed outlet `--source NAME` means: exact, else case-insensitive, else the one outlet
    whose name contains it ("bbc" -> "BBC News"). No match, or several: a BotError naming them."""
    if not name or not name.strip():
        return None
    wanted = " ".join(name.split())
    known = sorted({str(s) for s in load_lexical_index(store).sources if s})
    if wanted in known:
        return wanted
    for matches in (
        [s for s in known if s.casefold() == wanted.casefold()],
        [s for s in known if wanted.casefold() in s.casefold()],
    ):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise BotError(
                f"--source {wanted!r} matches several outlets: {_names(matches)}",
                hint="give the full name",
            )
    raise BotError(
        f"No indexed article is from {wanted!r}",
        hint=f"known outlets: {_names(known)}" if known else "the index has no outlet names",
    )


def _names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


@dataclass
class LexicalIndex:
    """BM25 over all chunks plus the per-chunk fields the filters need."""

    retriever: Any
    ids: list[str]
    sources: np.ndarray
    published_ts: np.ndarray
    vocab: dict[str, int] = field(default_factory=dict)
    # The stored vector of every chunk, row i for ids[i] (memory-mapped from the cache), so the
    # search needs no round trip to Chroma for the vectors MMR compares.
    vectors: np.ndarray | None = None
    _rows: dict[str, int] | None = None

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
            keep = np.ones(len(self.ids), dtype=bool)
            if filters.source:
                keep &= self.sources == filters.source
            if filters.since_ts is not None:
                keep &= self.published_ts >= filters.since_ts
            if filters.until_ts is not None:
                keep &= (self.published_ts <= filters.until_ts) & (self.published_ts >= 0)
            if not keep.any():
                return []
            mask = keep.astype(np.float32)
        k = min(k, len(self.ids))
        docs, scores = self.retriever.retrieve(
            [tokens], k=k, show_progress=False, weight_mask=mask, n_threads=0
        )
        out = []
        for doc, score in zip(docs[0], scores[0], strict=True):
            if score > 0:
                out.append((self.ids[int(doc)], float(score)))
        return out


def _cache_dir(store: Any) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{store.location}-{store.name}")[-120:]
    return store.settings.data_dir / "cache" / "bm25" / safe


VECTORS_FILE = "vectors.npy"  # float32, one row per chunk, beside the BM25 files

# The BM25 index last loaded for each store location, with its generation: a process that asks
# many questions (chat, the benchmarks, a server) loads it once, not once per question.
_LOADED: dict[str, tuple[str, LexicalIndex]] = {}


def load_lexical_index(store: Any) -> LexicalIndex:
    """The BM25 index of the store's current generation: from memory, from disk, or built."""
    base = _cache_dir(store)
    generation = store.generation or "none"
    loaded = _LOADED.get(str(base))
    if loaded is not None and loaded[0] == generation:
        return loaded[1]
    index = _load_or_build(store, base, generation)
    _LOADED[str(base)] = (generation, index)
    return index


def _load_or_build(store: Any, base: Path, generation: str) -> LexicalIndex:
    import bm25s

    folder = base / generation
    meta_file = folder / "chunks.json"
    if meta_file.exists():
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            retriever = bm25s.BM25.load(str(folder), mmap=False, show_progress=False)
            vectors = np.load(folder / VECTORS_FILE, mmap_mode="r")
            if vectors.shape[0] != len(meta["ids"]):
                raise ValueError("vectors and ids disagree")
            return LexicalIndex(
                retriever,
                meta["ids"],
                np.array(meta["sources"], dtype=object),
                np.array(meta["published_ts"], dtype=np.int64),
                retriever.vocab_dict,
                vectors,
            )
        except Exception:  # a cache from another version or a half-written one: rebuild it
            shutil.rmtree(folder, ignore_errors=True)

    ids, sources, dates, corpus, pages = [], [], [], [], []
    for page_ids, metas, texts, page_vectors in store.iter_chunk_pages():
        pages.append(page_vectors)
        for chunk_id, meta, text in zip(page_ids, metas, texts, strict=True):
            ids.append(chunk_id)
            sources.append(str(meta.get("source", "")))
            dates.append(int(meta.get("published_ts", -1)))
            corpus.append(tokenize(f"{meta.get('title', '')}\n{text}"))
    vectors = np.concatenate(pages) if pages else None
    retriever = bm25s.BM25()
    vocab: dict[str, int] = {}
    if ids:
        retriever.index(corpus, show_progress=False)
        vocab = retriever.vocab_dict
        tmp = base / f".{generation}.{time.time_ns()}"
        try:
            tmp.mkdir(parents=True, exist_ok=True)
            retriever.save(str(tmp))
            np.save(tmp / VECTORS_FILE, vectors)
            (tmp / "chunks.json").write_text(
                json.dumps({"ids": ids, "sources": sources, "published_ts": dates}),
                encoding="utf-8",
            )
            for old in base.iterdir():  # older generations are never read again
                if old.name != tmp.name:
                    shutil.rmtree(old, ignore_errors=True)
            tmp.rename(folder)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # a read-only data dir: work without the cache
    return LexicalIndex(
        retriever,
        ids,
        np.array(sources, dtype=object),
        np.array(dates, dtype=np.int64),
        vocab,
        vectors,
    )


def rrf_fuse(rankings: list[list[str]], k: int = RRF_K) -> dict[str, float]:
    """Reciprocal rank fusion of ranked id lists."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank + 1)
    return scores


def mmr_select(
    relevance: np.ndarray,
    vectors: np.ndarray,
    groups: list[str],
    k: int,
    lambda_: float,
) -> list[int]:
    """Indices chosen by maximal marginal relevance; same-group items count as more alike."""
    n = len(relevance)
    if n == 0:
        return []
    rel = relevance.astype(np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones_like(rel)
    sims = vectors @ vectors.T
    _, codes = np.unique(np.asarray(groups, dtype=object), return_inverse=True)
    same = codes[:, None] == codes[None, :]
    sims = np.minimum(1.0, sims + SAME_ARTICLE_BONUS * same)
    chosen: list[int] = []
    left = list(range(n))
    while left and len(chosen) < k:
        penalty = sims[np.ix_(left, chosen)].max(axis=1) if chosen else np.zeros(len(left))
        scores = lambda_ * rel[left] - (1 - lambda_) * penalty
        best = left[int(np.argmax(scores))]
        chosen.append(best)
        left.remove(best)
    return chosen


def _article_groups(chunk_ids: list[str]) -> list[str]:
    """The article of each chunk, from its id (`<article_id>:<index>`, as the store
    writes it)."""
    return [cid.rsplit(":", 1)[0] for cid in chunk_ids]


@dataclass
class Retrieval:
    passages: list[Passage]
    best_dense: float
    timings_ms: dict[str, float]


def retrieve_passages(
    question: str,
    store: Any,
    *,
    k: int,
    filters: Filters | None = None,
    mode: str = "hybrid",
    mmr_lambda: float = 0.7,
    fetch_k: int | None = None,
) -> Retrieval:
    """The `k` passages for `question`, numbered 1..k in the order given to the model."""
    filters = filters or Filters()
    fetch_k = fetch_k or max(4 * k, 30)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    qvec = np.asarray(store.embedder.embed_questions([question]), dtype=np.float32)[0]
    timings["embed_question"] = (time.perf_counter() - t0) * 1000

    # The BM25 cache also holds every chunk's stored vector (memory-mapped): MMR's vectors come
    # from there, so Chroma is asked only for the dense ranking and for the chosen passages.
    lexical = load_lexical_index(store)
    dense_ids: list[str] = []
    t0 = time.perf_counter()
    if mode in ("hybrid", "dense"):
        got = store.chunks.query(
            query_embeddings=[qvec.tolist()],
            n_results=fetch_k,
            where=filters.chroma_where(),
            include=[],  # ids only
        )
        dense_ids = list(got["ids"][0])
    timings["dense"] = (time.perf_counter() - t0) * 1000

    lexical_ids: list[str] = []
    t0 = time.perf_counter()
    if mode in ("hybrid", "bm25"):
        lexical_ids = [cid for cid, _ in lexical.search(question, fetch_k, filters)]
    timings["bm25"] = (time.perf_counter() - t0) * 1000

    t0 = time.perf_counter()
    if mode == "dense":
        fused = {cid: 1.0 / (RRF_K + r + 1) for r, cid in enumerate(dense_ids)}
    elif mode == "bm25":
        fused = {cid: 1.0 / (RRF_K + r + 1) for r, cid in enumerate(lexical_ids)}
    else:
        fused = rrf_fuse([dense_ids, lexical_ids])
    ranked = sorted(fused, key=fused.get, reverse=True)
    if mode != "hybrid":
        ranked = ranked[: 2 * k]  # no MMR: the top k, with spares for chunks that are gone
    vectors = lexical.vectors_of(ranked)
    missing = [cid for cid in ranked if cid not in vectors]
    if missing:  # chunks newer than the cache: from Chroma (chunks that are gone are skipped)
        got = store.chunks.get(ids=missing, include=["embeddings"])
        for i, chunk_id in enumerate(got["ids"]):
            vectors[chunk_id] = np.asarray(got["embeddings"][i], dtype=np.float32)
    candidates = [cid for cid in ranked if cid in vectors]
    if not candidates:
        timings["fuse_mmr"] = (time.perf_counter() - t0) * 1000
        return Retrieval([], 0.0, timings)
    matrix = np.stack([vectors[c] for c in candidates])
    dense_sim = matrix @ qvec
    relevance = np.array([fused[c] for c in candidates])
    groups = _article_groups(candidates)
    rows: dict[str, tuple[dict, str]] = {}
    gone: set[int] = set()
    for _ in range(3):  # a cache older than a deletion may name a chunk that is gone: choose again
        pool = [i for i in range(len(candidates)) if i not in gone]
        if mode == "hybrid":
            picked = mmr_select(
                relevance[pool], matrix[pool], [groups[i] for i in pool], k, mmr_lambda
            )
            order = [pool[i] for i in picked]
        else:
            order = pool[:k]
        wanted = [candidates[i] for i in order if candidates[i] not in rows]
        if wanted:
            got = store.chunks.get(ids=wanted, include=["metadatas", "documents"])
            for cid, meta, doc in zip(got["ids"], got["metadatas"], got["documents"], strict=True):
                rows[cid] = (meta or {}, doc or "")
        lost = {i for i in order if candidates[i] not in rows}
        if not lost:
            break
        gone |= lost
    order = [i for i in order if candidates[i] in rows]
    timings["fuse_mmr"] = (time.perf_counter() - t0) * 1000

    passages = []
    for n, idx in enumerate(order, start=1):
        chunk_id = candidates[idx]
        meta, text = rows[chunk_id]
        passages.append(
            Passage.from_chunk(
                n,
                chunk_id,
                meta,
                text,
                score=round(float(relevance[idx]), 6),
                dense=round(float(dense_sim[idx]), 4),
            )
        )
    if passages:  # the checker and extractive reuse the stored vectors
        store.embedder.remember(
            [p.text for p in passages], np.stack([vectors[p.chunk_id] for p in passages])
        )
    best = float(dense_sim.max()) if len(dense_sim) else 0.0
    return Retrieval(passages, best, timings)
