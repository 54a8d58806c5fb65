"""BM25 scoring over the arrays bm25s saves, read with numpy alone.

Ingest builds and saves the BM25 index with bm25s; a question only needs its precomputed
term-by-chunk scores (a CSC matrix: `data`, `indices`, `indptr`) and the vocabulary. Reading those
files here spares every `bot ask` the import of the bm25s package (its progress bars pull in
asyncio, multiprocessing and thread pools). The scores and the top-k order are computed exactly
as bm25s's numpy backend computes them, so both give the same ranking (tested).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PARAMS_FILE = "params.index.json"
VOCAB_FILE = "vocab.index.json"
DATA_FILE = "data.csc.index.npy"
INDICES_FILE = "indices.csc.index.npy"
INDPTR_FILE = "indptr.csc.index.npy"
# bm25s's variants whose saved matrix is the whole score; the others ("bm25l", "bm25+") also add
# a score for every document a term is absent from, which this reader does not implement.
PLAIN_METHODS = frozenset({"lucene", "robertson", "atire"})


@dataclass
class Bm25Scores:
    """The precomputed BM25 scores of every (term, chunk) pair and the term ids."""

    data: np.ndarray  # the scores, column (term) after column
    indices: np.ndarray  # the chunk row of each score
    indptr: np.ndarray  # where each term's column starts in `data`
    num_docs: int
    vocab: dict[str, int]
    dtype: np.dtype[Any]

    @classmethod
    def of(cls, retriever: Any) -> Bm25Scores:
        """The scores of a bm25s index just built in this process."""
        scores = retriever.scores
        return cls(
            scores["data"],
            scores["indices"],
            scores["indptr"],
            int(scores["num_docs"]),
            retriever.vocab_dict,
            np.dtype(retriever.dtype),
        )

    @classmethod
    def load(cls, folder: Path) -> Bm25Scores:
        """The scores bm25s saved in `folder`; ValueError when it used a variant not read here."""
        params = json.loads((folder / PARAMS_FILE).read_text(encoding="utf-8"))
        if params.get("method") not in PLAIN_METHODS:
            raise ValueError(f"BM25 variant {params.get('method')!r} is not read here")
        vocab = json.loads((folder / VOCAB_FILE).read_text(encoding="utf-8"))
        return cls(
            np.load(folder / DATA_FILE),
            np.load(folder / INDICES_FILE),
            np.load(folder / INDPTR_FILE),
            int(params["num_docs"]),
            vocab,
            np.dtype(params.get("dtype", "float32")),
        )

    def scores(self, tokens: list[str]) -> np.ndarray:
        """Every chunk's score for `tokens` (repeats count again; unknown terms add nothing), the
        additions in bm25s's order so that equal sums stay equal."""
        out = np.zeros(self.num_docs, dtype=self.dtype)
        for token in tokens:
            column = self.vocab.get(token)
            if column is None:
                continue
            start, end = self.indptr[column], self.indptr[column + 1]
            np.add.at(out, self.indices[start:end], self.data[start:end])
        return out

    def top(
        self, tokens: list[str], k: int, weights: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """The `k` best (row, score) pairs, best first, as bm25s's numpy top-k orders them;
        `weights` multiplies each chunk's score (0 drops it)."""
        scores = self.scores(tokens)
        if weights is not None:
            scores *= weights
        k = min(k, self.num_docs)
        if k <= 0:
            return []
        rows = np.argpartition(scores, -k)[-k:]  # the k largest, in no order
        best = np.take(scores, rows)
        order = np.flip(np.argsort(best))
        return [(int(r), float(s)) for r, s in zip(rows[order], best[order], strict=True)]

    def rows_of(self, column: int) -> np.ndarray:
        """The chunk rows holding the term with id `column`, in index order."""
        return self.indices[self.indptr[column] : self.indptr[column + 1]]
