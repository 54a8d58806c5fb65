"""`bot ask`: retrieve passages, get a cited answer, check every sentence against what it cites.

The LLM, the store and the settings are arguments with defaults, so tests pass fakes. When retrieval
is weak the model is not asked at all: the bot says the articles don't say and shows the closest
passages.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.errors import BotError
from bot.results import AnswerResult, CheckedSentence, Passage
from bot.settings import Settings, get_settings

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
    from bot.articles import normalise_text
    from bot.render import sanitize

    text = " ".join(normalise_text(sanitize(value or "")).split())
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
    import numpy  # noqa: F401

    from bot.store import import_chromadb

    import_chromadb()


def _embed_ahead(settings: Settings, question: str) -> threading.Thread | None:
    """Load the local embedding model and embed the question in a thread while chromadb is
    imported: the model runs in C++ without the GIL, so a cold `bot ask` waits for the slower of
    the two rather than for both. The vector lands in the embedder's memo for retrieval."""
    if settings.embedding != "local":
        return None

    def run() -> None:
        try:
            from bot.embeddings import get_embedder

            get_embedder(settings).embed([question])
        except Exception:  # noqa: S110 - retrieval makes the same call and reports the error
            pass

    thread = threading.Thread(target=run, name="embed-ahead", daemon=True)
    thread.start()
    return thread


def open_index(settings: Settings, notify: Callable[[str], None] | None = None) -> Any:
    """The store, indexing the bundled seeds first when the index is empty (first run)."""
    from bot.store import open_store

    store = open_store(settings, create=False)
    if store.exists and store.articles.count() > 0:
        return store
    from bot.ingest import ingest_paths

    if notify:
        notify("The index is empty: indexing the bundled seed articles first…")
    ingest_paths(None, settings, embedder=store.embedder)
    return open_store(settings, store.embedder, create=False)


def _fit_passages(provider: Any, question: str, passages: list[Passage]) -> list[Passage]:
    """Drop the least relevant passages until the prompt fits the model's context window."""
    from bot.prompts import build_answer_messages

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

    from bot.chunking import split_sentences

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


def refusal(
    question: str, passages: list[Passage], provider: str, model: str, phash: str, why: str
) -> AnswerResult:
    from bot.prompts import NO_ANSWER

    return AnswerResult(
        question=question,
        answer=NO_ANSWER,
        refused=True,
        provider=provider,
        model=model,
        prompt_hash=phash,
        sentences=[],
        passages=passages,
        warnings=[why] if why else [],
    )


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
    from bot.citations import check_answer
    from bot.prompts import NO_ANSWER, answer_prompt_texts, build_answer_messages, prompt_hash
    from bot.providers import get_provider
    from bot.retrieval import Filters, parse_date_bound, resolve_source, retrieve_passages

    options = options or AskOptions()
    settings = settings or get_settings()
    timings: dict[str, float] = {}
    question = clean_question(question)
    t0 = time.perf_counter()
    ahead = _embed_ahead(settings, question) if store is None else None
    _import_heavy(settings)
    if ahead is not None:
        ahead.join()
    timings["imports"] = (time.perf_counter() - t0) * 1000
    filters = Filters(
        source=options.source,
        since_ts=parse_date_bound(options.since, end=False),
        until_ts=parse_date_bound(options.until, end=True),
    )
    provider = provider or get_provider(settings, options.llm)
    k = options.k or settings.top_k

    t0 = time.perf_counter()
    store = store or open_index(settings, notify)
    filters.source = resolve_source(store, filters.source)
    timings["open_index"] = (time.perf_counter() - t0) * 1000

    t0 = time.perf_counter()
    found = retrieve_passages(question, store, k=k, filters=filters, mmr_lambda=settings.mmr_lambda)
    timings["retrieval"] = (time.perf_counter() - t0) * 1000
    passages = found.passages

    system_text, user_text = answer_prompt_texts()
    phash = prompt_hash(
        system_text,
        user_text,
        provider.name,
        provider.model,
        str(k),
        store.embedder.name,
        f"{settings.min_relevance}/{settings.min_support}",
    )
    if not passages or found.best_dense < settings.min_relevance:
        why = (
            "no indexed passage matches the filters"
            if not passages
            else f"the closest passage is a weak match (similarity {found.best_dense:.2f})"
        )
        result = refusal(question, passages, provider.name, provider.model, phash, why)
        result.timings_ms = timings
        return result

    t0 = time.perf_counter()
    usage: dict[str, int] = {}
    if provider.name == "extractive":
        from bot.extractive import extractive_answer

        text = extractive_answer(
            question, passages, store.embedder, min_relevance=settings.min_relevance
        )
        if on_delta:
            on_delta(text)
    else:
        passages = _fit_passages(provider, question, passages)
        completion = provider.complete(
            build_answer_messages(question, passages),
            max_tokens=ANSWER_MAX_TOKENS,
            on_delta=on_delta,
        )
        text, usage = completion.text, completion.usage
    timings["llm"] = (time.perf_counter() - t0) * 1000

    t0 = time.perf_counter()
    checked = check_answer(
        text, passages, embedder=store.embedder, min_support=settings.min_support
    )
    timings["checking"] = (time.perf_counter() - t0) * 1000
    warnings = []
    if checked.dropped:
        shown = ", ".join(f"[{n}]" for n in checked.dropped)
        warnings.append(f"removed citations to passages that were never given: {shown}")
    if not text.strip():
        warnings.append("the model returned an empty answer")
    if checked.refused:
        return AnswerResult(
            question=question,
            answer=NO_ANSWER,
            refused=True,
            provider=provider.name,
            model=provider.model,
            prompt_hash=phash,
            passages=passages,
            timings_ms=timings,
            usage=usage,
            dropped_citations=checked.dropped,
            warnings=warnings,
        )
    sentences: list[CheckedSentence] = checked.sentences
    return AnswerResult(
        question=question,
        answer=checked.answer,
        refused=False,
        provider=provider.name,
        model=provider.model,
        prompt_hash=phash,
        sentences=sentences,
        passages=passages,
        timings_ms=timings,
        usage=usage,
        dropped_citations=checked.dropped,
        warnings=warnings,
    )
