"""Cosines between the sentences disagreement compares, each embedded once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from bot.core.words import content_words

if TYPE_CHECKING:
    from bot.index.embeddings import Embedder

# Sentences this close state the same fact in MiniLM's space (paraphrases sit at 0.6-0.9).
SAME_THING_COSINE = 0.55
# Without an embedder: share of content words (values aside) two statements of one fact share.
SAME_THING_JACCARD = 0.5


class Similarity:
    """Cosines between texts, each embedded once, in batches as they are added (content-word
    Jaccard on the cosine's scale without an embedder)."""

    def __init__(self, embedder: Embedder | None) -> None:
        self.embedder = embedder
        self.vectors: dict[str, np.ndarray] = {}

    def add(self, texts: Sequence[str]) -> None:
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if self.embedder is None or not missing:
            return
        vectors = np.asarray(self.embedder.embed(missing), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = np.nan_to_num(vectors / np.where(norms > 0, norms, 1.0))
        self.vectors.update(zip(missing, vectors, strict=True))

    def __call__(self, a: str, b: str) -> float:
        if self.embedder is None:
            wa = {w for w in content_words(a) if not w[:1].isdigit()}
            wb = {w for w in content_words(b) if not w[:1].isdigit()}
            share = len(wa & wb) / len(wa | wb) if wa | wb else 0.0
            return share / SAME_THING_JACCARD * SAME_THING_COSINE
        return float(self.vectors[a] @ self.vectors[b])
