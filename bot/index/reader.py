"""`IndexReader`: what searching, asking, summarising and chat ask of the index.

Two stores answer it: `ArticleStore` (bot.index.store, Chroma: the index itself) and
`SnapshotStore` (bot.index.snapshot, the files a clean embedded index was last copied to).
`bot.index.store.open_reader` picks one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from bot.core.settings import Settings
    from bot.index.embeddings import Embedder
    from bot.index.filters import Filters
    from bot.index.records import ArticleEntry, StoredChunk


class IndexReader(Protocol):
    """The read side of the index: chunks by similarity, by ids and by filters; the manifest."""

    settings: Settings
    embedder: Embedder
    name: str  # the collection
    location: str  # the index folder or server URL, for messages and cache names

    @property
    def generation(self) -> str:
        """Changes with every ingest that changes the index (caches built from it key on it)."""
        ...

    @property
    def exists(self) -> bool: ...

    def reopened(self) -> IndexReader | None:
        """A reader of the newest complete generation when the index has one this reader does
        not (None: keep this one). Cheap enough for every request of a server."""
        ...

    def is_empty(self) -> bool:
        """No passage to answer from."""
        ...

    def dense_ids(self, vector: np.ndarray, n: int, filters: Filters | None = None) -> list[str]:
        """The ids of the `n` chunks nearest to `vector` that pass `filters`, nearest first."""
        ...

    def chunks_by_ids(self, ids: Sequence[str]) -> list[StoredChunk]:
        """The chunks with these ids, in that order; ids no chunk has (any more) are skipped."""
        ...

    def chunk_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of the chunks with these ids (ids no chunk has are left out)."""
        ...

    def chunks_where(
        self, filters: Filters | None = None, article_id: str | None = None
    ) -> list[StoredChunk]:
        """Every chunk that passes `filters` (and belongs to `article_id`, when given)."""
        ...

    def article_entries(self, ids: Sequence[str] | None = None) -> dict[str, ArticleEntry]:
        """The manifest's articles (those with these ids, when given), by article id."""
        ...

    def iter_chunk_pages(self) -> Iterator[tuple[list[StoredChunk], np.ndarray]]:
        """Every chunk, a page at a time: the chunks, and their vectors as a float32 array."""
        ...
