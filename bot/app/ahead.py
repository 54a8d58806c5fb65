"""Work a cold question does in other threads while the main thread imports and retrieves:
loading the embedding models, embedding the question and the passages' sentences. ONNX Runtime
runs mostly without the GIL, so a cold `bot ask` waits for the slowest of these, not their sum."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.answer.providers import ChatModel
    from bot.core.settings import Settings
    from bot.core.types import Passage
    from bot.index.embeddings import Embedder


def in_thread(fn: Callable[[], None], name: str) -> threading.Thread:
    """`fn()` started at once in a daemon thread. ONNX Runtime runs without the GIL, so embedding
    there overlaps with the main thread's work; `fn` handles its own errors."""
    thread = threading.Thread(target=fn, name=name, daemon=True)
    thread.start()
    return thread


def embed_ahead(settings: Settings, question: str) -> list[threading.Thread]:
    """Load the local embedding model while the rest of the answer's code is imported: the first
    thread embeds the question with the question model (its vector lands in the embedder's memo,
    where retrieval finds it), the second loads the index model (the answer and the checker
    embed sentences with it) and embeds the question with it too (the extractive answer compares
    sentences with it). A cold `bot ask` then waits for the slowest rather than for all. Errors
    are left for the later calls to report."""
    if settings.embedding != "local":
        return []
    from bot.index.embeddings import get_embedder

    def question_model() -> None:
        with contextlib.suppress(Exception):
            get_embedder(settings).embed_questions([question])

    def index_model() -> None:
        with contextlib.suppress(Exception):
            get_embedder(settings).warm([question])

    return [in_thread(question_model, "embed-question"), in_thread(index_model, "load-model")]


def embed_while_waiting(
    llm: ChatModel, embedder: Embedder, passages: list[Passage]
) -> threading.Thread | None:
    """While a remote model writes the answer and this machine's CPU idles, embed the passage
    sentences the checker will compare the answer with: checking then embeds only the answer's
    own sentences. Not for a model that needs the CPU itself."""
    if llm.shares_cpu:
        return None
    from bot.answer.citations import sentence_texts

    texts = sentence_texts(passages)

    def run() -> None:
        with contextlib.suppress(Exception):  # the checker embeds what is missing itself
            embedder.warm(texts)

    return in_thread(run, "embed-passages")


def join_counted(threads: list[threading.Thread], timings: dict[str, float]) -> None:
    """Wait for `threads`, adding the wait to "imports" (the models loading ahead)."""
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    timings["imports"] += (time.perf_counter() - t0) * 1000


@contextlib.contextmanager
def joined_on_error(threads: list[threading.Thread]) -> Iterator[None]:
    """Wait for `threads` when the block fails: never exit while a model loads in another
    thread."""
    try:
        yield
    except BaseException:
        for thread in threads:
            thread.join()
        raise
