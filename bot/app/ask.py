"""`bot ask`: retrieve passages, get a cited answer, check every sentence against what it cites.

The LLM, the store and the settings are arguments with defaults, so tests pass fakes. When retrieval
is weak the model is not asked at all: the bot says the articles don't say and shows the closest
passages.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.core.errors import BotError
from bot.core.settings import Settings, get_settings
from bot.core.text import sanitize
from bot.core.types import NO_ANSWER, AnswerResult, Passage

if TYPE_CHECKING:
    from bot.index.filters import Filters
    from bot.index.search import Retrieval

MAX_QUESTION_CHARS = 2000
ANSWER_MAX_TOKENS = 512


@dataclass
class AskOptions:
    k: int | None = None
    source: str | None = None
    since: str | None = None
    until: str | None = None
    llm: str | None = None  # auto | openai | local | extractive; None = BOT_LLM


def clean_input(value: str | None, *, what: str, limit: int, example: str) -> str:
    """`value` on one line without control characters; a clear error when it is blank or longer
    than `limit` characters. `what` names it in messages ("question"); `example` is the hint."""
    text = " ".join(sanitize(value).split())
    if not text:
        raise BotError(f"The {what} is empty", hint=example)
    if len(text) > limit:
        raise BotError(
            f"The {what} is {len(text):,} characters long; the limit is {limit:,}",
            hint=f"give a shorter {what}",
        )
    return text


def clean_question(question: str) -> str:
    """The question without control characters; empty or huge questions are refused clearly."""
    return clean_input(
        question,
        what="question",
        limit=MAX_QUESTION_CHARS,
        example='ask something, e.g. bot ask "what happened?"',
    )


def _import_heavy(settings: Settings) -> None:
    """Import the big libraries up front, so the stage timings show what they cost."""
    from bot.index.store import import_backend

    import_backend()


def _in_thread(fn: Callable[[], None], name: str) -> threading.Thread:
    """`fn()` started at once in a daemon thread. ONNX Runtime runs without the GIL, so embedding
    there overlaps with the main thread's work; `fn` handles its own errors."""
    thread = threading.Thread(target=fn, name=name, daemon=True)
    thread.start()
    return thread


def _embed_ahead(settings: Settings, question: str) -> threading.Thread | None:
    """Load the local embedding model and embed the question while Chroma is imported: a cold
    `bot ask` then waits for the slower of the two rather than for both. The vector lands in the
    embedder's memo, where retrieval finds it; an error here is left for retrieval to report."""
    if settings.embedding != "local":
        return None

    def run() -> None:
        from bot.index.embeddings import get_embedder

        with contextlib.suppress(Exception):
            # Loads the index model too (its tokenizer is shared), which the checker needs.
            get_embedder(settings).embed_question([question])

    return _in_thread(run, "embed-ahead")


def _embed_while_waiting(
    provider: str, embedder: Any, passages: list[Passage]
) -> threading.Thread | None:
    """While a remote model (openai) writes the answer and this machine's CPU idles, embed the
    passage sentences the checker will compare the answer with: checking then embeds only the
    answer's own sentences. Not for the local model, which needs the CPU itself."""
    if provider != "openai" or getattr(embedder, "memo", None) is None:
        return None
    from bot.answer.citations import sentence_texts

    texts = sentence_texts(passages)[: getattr(embedder, "memo_max_call", 256)]

    def run() -> None:
        with contextlib.suppress(Exception):  # the checker embeds what is missing itself
            embedder.embed(texts)

    return _in_thread(run, "embed-passages")


def open_index(settings: Settings, notify: Callable[[str], None] | None = None) -> Any:
    """The store, indexing the bundled seeds first when the index is empty (first run)."""
    from bot.index.store import open_store

    store = open_store(settings, create=False)
    if not store.is_empty():
        return store
    from bot.app.ingest import ingest_paths

    if notify:
        notify("The index is empty: indexing the bundled seed articles first…")
    ingest_paths(None, settings, embedder=store.embedder)
    return open_store(settings, store.embedder, create=False)


def _fit_passages(provider: Any, question: str, passages: list[Passage]) -> list[Passage]:
    """Drop the least relevant passages until the prompt fits the model's context window."""
    from bot.answer.prompts import build_answer_messages

    budget = provider.context_tokens - ANSWER_MAX_TOKENS - 64
    kept = list(passages)
    while kept:
        messages = build_answer_messages(question, kept)
        if sum(provider.count_tokens(m.content) for m in messages) <= budget:
            return kept
        kept = kept[:-1]
    raise BotError(
        f"The prompt does not fit the model's context window ({provider.context_tokens} tokens)",
        hint="raise BOT_LLM_CONTEXT_TOKENS or lower BOT_CHUNK_SIZE and rebuild",
    )


def _tidy_model_text(text: str) -> str:
    """Undo entities a model copied from the escaped prompt, and drop sentences it repeated."""
    import html

    from bot.sources.chunking import split_sentences

    text = html.unescape(text)
    seen: set[str] = set()
    kept = []
    for start, end in split_sentences(text):
        sentence = text[start:end]
        key = " ".join(sentence.lower().split())
        if key in seen:
            continue
        seen.add(key)
        kept.append(sentence)
    return " ".join(kept)


def answer_question(
    question: str,
    options: AskOptions | None = None,
    *,
    settings: Settings | None = None,
    provider: Any = None,
    store: Any = None,
    on_delta: Callable[[str], None] | None = None,
    notify: Callable[[str], None] | None = None,
) -> AnswerResult:
    """Answer `question` from the index with checked citations."""
    started = time.perf_counter()
    from bot.answer.providers import check_provider, get_provider

    options = options or AskOptions()
    settings = settings or get_settings()
    question = clean_question(question)
    filters = _filters(options)
    # No key, no model file: say so before any work. The model itself is loaded only when asked.
    name, model = (
        (provider.name, provider.model) if provider else check_provider(settings, options.llm)
    )
    k = options.k or settings.top_k
    timings: dict[str, float] = {"prepare": (time.perf_counter() - started) * 1000}
    store, found = _find_passages(
        question, filters, k=k, settings=settings, store=store, notify=notify, timings=timings
    )
    head = AnswerResult(
        question=question,
        answer=NO_ANSWER,
        refused=True,
        provider=name,
        model=model,
        prompt_hash=_answer_prompt_hash(name, model, k, store.embedder, settings),
        passages=found.passages,
        timings_ms=timings,
    )
    weak = _weak_retrieval(found, settings.min_relevance)
    if weak:  # the model is not asked at all
        head.warnings = [weak]
        return head
    if provider is None and name != "extractive":
        # Loaded here, not in a thread during the imports: llama-cpp-python's own import needs
        # the GIL, and the two slowed each other down more than the overlap saved (measured).
        t0 = time.perf_counter()
        provider = get_provider(settings, options.llm)
        timings["llm_load"] = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    draft = _write_answer(
        question,
        found.passages,
        name=name,
        provider=provider,
        store=store,
        min_relevance=settings.min_relevance,
        on_delta=on_delta,
    )
    timings["llm"] = (time.perf_counter() - t0) * 1000
    return _checked(draft, head, embedder=store.embedder, min_support=settings.min_support)


def _weak_retrieval(found: Retrieval, min_relevance: float) -> str | None:
    """Why the passages found cannot answer the question (None: they may)."""
    if not found.passages:
        return "no indexed passage matches the filters"
    if found.best_dense < min_relevance:
        return f"the closest passage is a weak match (similarity {found.best_dense:.2f})"
    return None


def _filters(options: AskOptions) -> Filters:
    from bot.core.dates import parse_date_bound
    from bot.index.filters import Filters

    return Filters(
        source=options.source,
        since_ts=parse_date_bound(options.since, end=False),
        until_ts=parse_date_bound(options.until, end=True),
    )


def _answer_prompt_hash(name: str, model: str, k: int, embedder: Any, settings: Settings) -> str:
    """The hash `--json` shows: the prompt, the model and the settings that shape an answer."""
    from bot.answer.prompts import answer_prompt_texts, prompt_hash

    system_text, user_text = answer_prompt_texts()
    return prompt_hash(
        system_text,
        user_text,
        name,
        model,
        str(k),
        getattr(embedder, "question_name", embedder.name),
        f"{settings.min_relevance}/{settings.min_support}",
    )


def _find_passages(
    question: str,
    filters: Filters,
    *,
    k: int,
    settings: Settings,
    store: Any,
    notify: Callable[[str], None] | None,
    timings: dict[str, float],
) -> tuple[Any, Retrieval]:
    """The store (opened, and its library imported while the question is embedded in another
    thread) and the passages retrieved from it."""
    from bot.index.search import resolve_source, retrieve_passages

    started = time.perf_counter()
    import numpy  # noqa: F401 - before any thread: two threads importing numpy at once can fail

    embedding = _embed_ahead(settings, question) if store is None else None
    try:
        _import_heavy(settings)
        if embedding is not None:
            embedding.join()
        timings["imports"] = (time.perf_counter() - started) * 1000

        t0 = time.perf_counter()
        store = store or open_index(settings, notify)
        filters.source = resolve_source(store, filters.source)
        timings["open_index"] = (time.perf_counter() - t0) * 1000

        t0 = time.perf_counter()
        found = retrieve_passages(
            question, store, k=k, filters=filters, mmr_lambda=settings.mmr_lambda
        )
        timings["retrieval"] = (time.perf_counter() - t0) * 1000
    except BaseException:
        if embedding is not None:
            embedding.join()  # never exit while the model runs in another thread
        raise
    return store, found


def _checked(
    draft: _Draft, head: AnswerResult, *, embedder: Any, min_support: float
) -> AnswerResult:
    """`head` (question, provider, prompt hash and timings) completed with the draft answer,
    every sentence checked against the passages it cites."""
    from bot.answer.checking import check_answer

    t0 = time.perf_counter()
    if draft.prefetch is not None:
        draft.prefetch.join()  # what it has not finished yet is checking time
    checked = check_answer(draft.text, draft.passages, embedder=embedder, min_support=min_support)
    head.timings_ms["checking"] = (time.perf_counter() - t0) * 1000
    warnings = []
    if checked.dropped:
        shown = ", ".join(f"[{n}]" for n in checked.dropped)
        warnings.append(f"removed citations to passages that were never given: {shown}")
    if not draft.text.strip():
        warnings.append("the model returned an empty answer")
    if not checked.refused:
        head.answer, head.refused, head.sentences = checked.answer, False, checked.sentences
    head.passages, head.usage, head.warnings = draft.passages, draft.usage, warnings
    head.dropped_citations = checked.dropped
    return head


@dataclass
class _Draft:
    """The model's answer before checking, and the passages it was given."""

    text: str
    passages: list[Passage]
    usage: dict[str, int]
    prefetch: threading.Thread | None  # embedding the passages' sentences for the checker


def _write_answer(
    question: str,
    passages: list[Passage],
    *,
    name: str,
    provider: Any,
    store: Any,
    min_relevance: float,
    on_delta: Callable[[str], None] | None,
) -> _Draft:
    """The answer from the extractive provider, or from the LLM `provider` (as many passages as
    fit its context window)."""
    from bot.answer.prompts import build_answer_messages

    if name == "extractive":
        from bot.answer.extractive import extractive_answer

        text = extractive_answer(question, passages, store.embedder, min_relevance=min_relevance)
        if on_delta:
            on_delta(text)
        return _Draft(text, passages, {}, None)
    passages = _fit_passages(provider, question, passages)
    prefetch = _embed_while_waiting(name, store.embedder, passages)
    try:
        completion = provider.complete(
            build_answer_messages(question, passages),
            max_tokens=ANSWER_MAX_TOKENS,
            on_delta=on_delta,
        )
    except BaseException:
        if prefetch is not None:
            prefetch.join()
        raise
    return _Draft(completion.text, passages, completion.usage, prefetch)
