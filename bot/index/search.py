"""Find the passages that matter for a question: dense + BM25, fused by reciprocal rank, then MMR.

- Dense: the question's vector against the store's `dense_ids`, filtered: Chroma's HNSW index, or
  an exact scan of the read snapshot (bot.index.snapshot).
- Lexical: BM25 over every chunk (bot.index.keyword), whose per-generation cache also holds every
  chunk's stored vector, which MMR compares.
- Fusion: reciprocal rank fusion, `sum(1 / (60 + rank))` over the two rankings.
- Rare names: a name of the question (capitalised, or with a digit) that at most
  RARE_TERM_MAX_CHUNKS chunks hold names one story. When BM25 ranks one of them among its first
  k and none is chosen, whatever the dense ranking thinks of them, its best chunk takes the last
  place (for at most MAX_RARE_SLOTS names). The Retrieval says which passages hold each rare
  name, and which names no chunk holds, so the answer can refuse rather than answer about
  something else.
- Diversity: maximal marginal relevance over the candidates' vectors, where two chunks of one
  article count as more alike than their vectors say, so one article does not fill every slot.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from bot.core.errors import BotError
from bot.core.types import Passage
from bot.core.values import name_matches
from bot.core.words import stopwords, tokenize
from bot.index.filters import Filters, list_names, match_outlet
from bot.index.keyword import LexicalIndex, load_lexical_index
from bot.index.records import StoredChunk, article_of

if TYPE_CHECKING:
    from bot.index.reader import IndexReader

# Reciprocal rank fusion's constant, from the paper that introduced it (Cormack et al., 2009):
# large enough that the first few ranks of one list cannot outweigh agreement between the lists.
RRF_K = 60
# Added to the similarity of two chunks of one article in MMR: a second chunk of an article is
# chosen only when it is clearly more relevant than another article's best.
SAME_ARTICLE_BONUS = 0.15
# Candidates each ranking contributes: 4 per passage wanted, at least 30, so MMR has choices.
FETCH_PER_PASSAGE = 4
MIN_FETCH = 30
# Without MMR, candidates kept per passage wanted: the spares replace chunks that are gone.
SPARES_PER_PASSAGE = 2
# Times the choice is made again when chosen chunks are gone since the BM25 cache was built.
MAX_CHOICES = 3
# A question's name held by at most this many chunks is rare: those chunks are the story asked
# about, while a name most articles mention says little about which chunk answers.
RARE_TERM_MAX_CHUNKS = 3
# Places a rare name may take from the fused choice: enough for the story asked about, while the
# passages both rankings agree on keep the others.
MAX_RARE_SLOTS = 1
# A question word holding a digit ("Quorvel2") is as rare as a name.
_DIGIT_WORD_RE = re.compile(r"\b\w*\d\w*")


def resolve_source(store: IndexReader, name: str | None) -> str | None:
    """The indexed outlet `--source NAME` means (`match_outlet`); a BotError naming the known
    outlets when none matches."""
    if not name or not name.strip():
        return None
    known = [str(s) for s in load_lexical_index(store).sources]
    outlet = match_outlet(name, known)
    if outlet is None:
        outlets = sorted({s for s in known if s})
        raise BotError(
            f"No indexed article is from {' '.join(name.split())!r}",
            hint=f"known outlets: {list_names(outlets)}"
            if outlets
            else "the index has no outlet names",
        )
    return outlet


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
    number: dict[str, int] = {}
    codes = np.array([number.setdefault(g, len(number)) for g in groups])
    same = codes[:, None] == codes[None, :]
    sims = np.minimum(1.0, sims + SAME_ARTICLE_BONUS * same)
    chosen: list[int] = []
    # The largest similarity of each item to the chosen ones, kept up to date as each is chosen.
    penalty = np.zeros(n)
    taken = np.zeros(n, dtype=bool)
    while len(chosen) < min(k, n):
        scores = lambda_ * rel - (1 - lambda_) * penalty
        scores[taken] = -np.inf
        best = int(np.argmax(scores))  # the first of equal scores, as in index order
        chosen.append(best)
        taken[best] = True
        # Similarities may be negative: the first choice sets the penalty, later ones raise it.
        penalty = sims[:, best].copy() if len(chosen) == 1 else np.maximum(penalty, sims[:, best])
    return chosen


@dataclass
class Retrieval:
    passages: list[Passage]
    best_dense: float
    timings_ms: dict[str, float]
    # Names of the question that few chunks hold, each with the passages (numbers) holding it.
    rare_terms: dict[str, list[int]] = field(default_factory=dict)
    # Names of the question that no chunk passing the filters holds.
    unmatched_terms: list[str] = field(default_factory=list)


def question_names(question: str) -> list[str]:
    """The question's name words (`name_matches`, capitalised anywhere: "Crepriquasha",
    "Lumora funding?") and words holding a digit, in question order, once each."""
    stops = stopwords()
    found = [(m.start(), m.group()) for m in name_matches(question, openers=True)]
    found += [(m.start(), m.group()) for m in _DIGIT_WORD_RE.finditer(question)]
    words = [w for _, w in sorted(found) if len(w) > 1 and tokenize(w)]
    return list(dict.fromkeys(w for w in words if w.lower() not in stops))


def _rare_chunks(names: dict[str, list[str]], lexical_ids: list[str], k: int) -> list[list[str]]:
    """The chunks of each rare name, best BM25 rank first, for the names whose best chunk BM25
    ranks among its first `k` (the question is about it, not only naming it in passing); names
    with a better-ranked chunk first."""
    position = {cid: i for i, cid in enumerate(lexical_ids)}
    rank = lambda cid: (position.get(cid, len(position)), cid)  # noqa: E731
    groups = [
        sorted(ids, key=rank) for ids in names.values() if 0 < len(ids) <= RARE_TERM_MAX_CHUNKS
    ]
    return sorted((g for g in groups if rank(g[0])[0] < k), key=lambda ids: rank(ids[0]))


def _with_rare(picked: list[int], rare_rows: list[list[int]], gone: set[int]) -> list[int]:
    """`picked` with the best row of each rare name none of whose rows is picked in the last
    places (at most MAX_RARE_SLOTS of them)."""
    out = list(picked)
    slots = 0
    for rows in rare_rows:
        rows = [r for r in rows if r not in gone]
        if not rows or any(r in out for r in rows) or slots >= MAX_RARE_SLOTS or not out:
            continue
        slots += 1
        out[len(out) - slots] = rows[0]
    return out


@dataclass
class _Candidates:
    """The fused ranking's chunks that have a vector, best first, row for row."""

    ids: list[str]
    vectors: np.ndarray
    relevance: np.ndarray  # the fused score
    dense: np.ndarray  # the cosine similarity with the question

    def pick(self, k: int, mmr_lambda: float | None, gone: set[int]) -> list[int]:
        """The rows of the `k` passages to show, leaving out `gone`: by MMR, or (None) the top
        `k`."""
        pool = [i for i in range(len(self.ids)) if i not in gone]
        if mmr_lambda is None:
            return pool[:k]
        groups = [article_of(self.ids[i]) for i in pool]
        picked = mmr_select(self.relevance[pool], self.vectors[pool], groups, k, mmr_lambda)
        return [pool[i] for i in picked]


@contextlib.contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = (time.perf_counter() - started) * 1000


def _candidates(
    store: IndexReader,
    lexical: LexicalIndex,
    question_vector: np.ndarray,
    fused: dict[str, float],
    limit: int | None,
) -> _Candidates | None:
    """The best `limit` (None: all) of the fused ranking with their vectors: from the BM25
    cache, or from Chroma for chunks newer than the cache. Chunks that are gone are skipped."""
    ranked = sorted(fused, key=fused.__getitem__, reverse=True)[:limit]
    vectors = lexical.vectors_of(ranked)
    missing = [cid for cid in ranked if cid not in vectors]
    if missing:
        vectors.update(store.chunk_vectors(missing))
    ids = [cid for cid in ranked if cid in vectors]
    if not ids:
        return None
    matrix = np.stack([vectors[c] for c in ids])
    relevance = np.array([fused[c] for c in ids])
    return _Candidates(ids, matrix, relevance, matrix @ question_vector)


def _fetch_chosen(
    store: IndexReader, found: _Candidates, choose: Callable[[set[int]], list[int]]
) -> tuple[list[int], dict[str, StoredChunk]]:
    """The rows `choose` picks and their chunks from the store. A BM25 cache older than a deletion
    may name a chunk that is gone: then the choice is made again without it."""
    chunks: dict[str, StoredChunk] = {}
    gone: set[int] = set()
    order: list[int] = []
    for _ in range(MAX_CHOICES):
        order = choose(gone)
        wanted = [found.ids[i] for i in order if found.ids[i] not in chunks]
        chunks.update((c.chunk_id, c) for c in store.chunks_by_ids(wanted))
        lost = {i for i in order if found.ids[i] not in chunks}
        if not lost:
            break
        gone |= lost
    return [i for i in order if found.ids[i] in chunks], chunks


def _passages(
    found: _Candidates, order: list[int], chunks: dict[str, StoredChunk]
) -> list[Passage]:
    return [
        chunks[found.ids[i]].to_passage(
            n,
            score=round(float(found.relevance[i]), 6),
            dense=round(float(found.dense[i]), 4),
        )
        for n, i in enumerate(order, start=1)
    ]


def retrieve_passages(
    question: str,
    store: IndexReader,
    *,
    k: int,
    filters: Filters | None = None,
    mode: str = "hybrid",
    mmr_lambda: float = 0.7,
    fetch_k: int | None = None,
) -> Retrieval:
    """The `k` passages for `question`, numbered 1..k in the order given to the model. `mode`:
    hybrid (both rankings, then MMR), dense or bm25 (one ranking, no MMR)."""
    filters = filters or Filters()
    fetch_k = fetch_k or max(FETCH_PER_PASSAGE * k, MIN_FETCH)
    timings: dict[str, float] = {}
    with _timed(timings, "embed_question"):
        qvec = np.asarray(store.embedder.embed_questions([question]), dtype=np.float32)[0]
    lexical = load_lexical_index(store)
    dense_ids: list[str] = []
    with _timed(timings, "dense"):
        if mode in ("hybrid", "dense"):
            dense_ids = store.dense_ids(qvec, fetch_k, filters)
    lexical_ids: list[str] = []
    with _timed(timings, "bm25"):
        if mode in ("hybrid", "bm25"):
            lexical_ids = [cid for cid, _ in lexical.search(question, fetch_k, filters)]
        # One chunk more than a rare name may have tells it from a common one.
        names = lexical.term_chunks(
            question_names(question), filters, limit=RARE_TERM_MAX_CHUNKS + 1
        )
        unmatched = [name for name, ids in names.items() if not ids]
        rare = _rare_chunks(names, lexical_ids, k) if mode == "hybrid" else []
    with _timed(timings, "fuse_mmr"):
        hybrid = mode == "hybrid"
        fused = rrf_fuse([dense_ids, lexical_ids])  # one of them is empty unless hybrid
        for cid in (cid for ids in rare for cid in ids):
            fused.setdefault(cid, 0.0)  # a candidate, whatever either ranking says
        found = _candidates(store, lexical, qvec, fused, None if hybrid else SPARES_PER_PASSAGE * k)
        if found is None:
            return Retrieval([], 0.0, timings, unmatched_terms=unmatched)
        lambda_ = mmr_lambda if hybrid else None
        row = {cid: i for i, cid in enumerate(found.ids)}
        rare_rows = [[row[c] for c in ids if c in row] for ids in rare]
        order, chunks = _fetch_chosen(
            store, found, lambda gone: _with_rare(found.pick(k, lambda_, gone), rare_rows, gone)
        )
    passages = _passages(found, order, chunks)
    if passages:  # the checker and extractive reuse the stored vectors
        store.embedder.remember([p.text for p in passages], found.vectors[order])
    by_chunk = {p.chunk_id: p.n for p in passages}
    holding = {
        name: [by_chunk[cid] for cid in ids if cid in by_chunk]
        for name, ids in names.items()
        if 0 < len(ids) <= RARE_TERM_MAX_CHUNKS
    }
    return Retrieval(passages, float(found.dense.max()), timings, holding, unmatched)
