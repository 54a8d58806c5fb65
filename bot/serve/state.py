"""What a `bot serve` process keeps warm between requests: the index reader, the embedding model,
the providers, and the slots that bound how many answers run at once.

The index: every request asks for `reader()`, which asks the reader it holds whether the index has
a newer generation (`IndexReader.reopened`). From a snapshot (bot.index.snapshot), a new one is
opened only once its snapshot is complete (the pointer is written after its files); while an
ingest runs the pointer is gone and the old reader, whose files stay open, keeps answering. So a
request reads the old generation or the new one, never a half-written index, and a new
generation needs no restart. Without a snapshot (a Chroma server, or an index too large for one)
the reader is Chroma itself, and the generation is read from Chroma on every request: a replica
whose index another process (or machine) wrote rebuilds its keyword index before it answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from bot.core.errors import BotError

if TYPE_CHECKING:
    from bot.answer.providers import Provider
    from bot.core.settings import Settings
    from bot.index.reader import IndexReader

# How long a request waits for a free answer slot before it is told the server is busy.
SLOT_WAIT_SECONDS = 120.0


class ServeState:
    """The warm parts of a server. `provider_for` makes the provider of an `--llm` name (tests
    give a fake one); each is made once and kept."""

    def __init__(
        self,
        settings: Settings,
        *,
        provider_for: Callable[[str | None], Provider] | None = None,
    ) -> None:
        self.settings = settings
        self._provider_for = provider_for
        self._providers: dict[str | None, Provider] = {}
        self._reader: IndexReader | None = None
        self._lock = threading.Lock()  # the providers
        self._reader_lock = threading.Lock()  # opening a generation
        self._slots = threading.BoundedSemaphore(settings.serve_concurrency)

    def provider(self, llm: str | None = None) -> Provider:
        """The provider `llm` (None: BOT_LLM) names, made on first use."""
        with self._lock:
            found = self._providers.get(llm)
            if found is None:
                found = self._make_provider(llm)
                self._providers[llm] = found
            return found

    def _make_provider(self, llm: str | None) -> Provider:
        if self._provider_for is not None:
            return self._provider_for(llm)
        from bot.answer.providers import get_provider

        return get_provider(self.settings, llm)

    def reader(self) -> IndexReader:
        """The index to answer from: the newest complete generation (see the module doc)."""
        held = self._reader
        if held is None:
            with self._reader_lock:
                if self._reader is None:
                    from bot.app.ask import open_index

                    self._reader = _warmed(open_index(self.settings))
                return self._reader
        fresh = held.reopened()
        if fresh is None:
            return held
        # Requests that see the new generation wait here while one of them builds its keyword
        # index: none answers from the old one once the new one is known.
        with self._reader_lock:
            if self._reader is held:
                self._reader = _warmed(fresh)
            return self._reader or fresh

    def warm_up(self) -> None:
        """Open the index and load the models now, so the first request does not wait for them."""
        self.reader()
        self.provider(None)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """One of the BOT_SERVE_CONCURRENCY answer slots, for the time of one answer."""
        if not self._slots.acquire(timeout=SLOT_WAIT_SECONDS):
            raise BotError(
                "The server is busy answering other questions",
                hint="try again in a moment, or raise BOT_SERVE_CONCURRENCY",
            )
        try:
            yield
        finally:
            self._slots.release()


def _warmed(store: IndexReader) -> IndexReader:
    """`store`, with its BM25 index loaded and the embedding models run once."""
    from bot.index.keyword import load_lexical_index

    store.embedder.embed(["warm up"])
    store.embedder.embed_questions(["warm up"])
    load_lexical_index(store)
    return store
