"""`bot ask`: retrieve passages, get a cited answer, check every sentence against what it cites.

The LLM, the store and the settings are arguments with defaults, so tests pass fakes. When no
retrieved sentence answers the question (bot.answer.answerability) the model is not asked at all:
the bot says what no passage says and shows the closest passages.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.app.ahead import embed_ahead, embed_while_waiting, join_counted, joined_on_error
from bot.app.articles import with_authors
from bot.core.errors import BotError
from bot.core.settings import Settings, get_settings
from bot.core.text import sanitize
from bot.core.types import NO_ANSWER, AnswerResult, Passage, mark_cited

if TYPE_CHECKING:
    from bot.answer.answer_type import Needs
    from bot.answer.answerability import Verdict
    from bot.answer.disagreement import MorePassages
    from bot.answer.providers import ChatModel, Provider
    from bot.index.embeddings import Embedder
    from bot.index.filters import Filters
    from bot.index.search import Retrieval

MAX_QUESTION_CHARS = 2000
ANSWER_MAX_TOKENS = 512
# Chunks the report search looks at per passage wanted: several chunks of one article share the
# top ranks, and only the best of each article is kept.
REPORTS_PER_PASSAGE = 3


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
    import bot.answer.answerability  # noqa: F401 - the word rules load bm25s's stopword lists
    from bot.index.store import import_backend

    import_backend(settings)


def open_index(settings: Settings, notify: Callable[[str], None] | None = None) -> Any:
    """The index to read (its snapshot when current: `open_reader`), indexing the bundled seeds
    first when it is empty (first run)."""
    from bot.index.store import open_reader, refuse_damaged

    store = open_reader(settings)
    if not store.is_empty():
        return store
    refuse_damaged(settings)  # a damaged index can look empty: never load the seeds into it
    from bot.app.ingest import ingest_paths

    if notify:
        notify("The index is empty: indexing the bundled seed articles first…")
    ingest_paths(None, settings, embedder=store.embedder)
    return open_reader(settings, store.embedder)


def _fit_passages(llm: ChatModel, question: str, passages: list[Passage]) -> list[Passage]:
    """Drop the least relevant passages until the prompt fits the model's context window."""
    from bot.answer.prompts import build_answer_messages

    budget = llm.context_tokens - ANSWER_MAX_TOKENS - 64
    kept = list(passages)
    while kept:
        messages = build_answer_messages(question, kept)
        if sum(llm.count_tokens(m.content) for m in messages) <= budget:
            return kept
        kept = kept[:-1]
    raise BotError(
        f"The prompt does not fit the model's context window ({llm.context_tokens} tokens)",
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


def refusal(
    question: str, passages: list[Passage], provider: str, model: str, phash: str, why: str
) -> AnswerResult:
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
    provider: Provider | None = None,
    store: Any = None,
    on_delta: Callable[[str], None] | None = None,
    notify: Callable[[str], None] | None = None,
) -> AnswerResult:
    """Answer `question` from the index with checked citations. `provider` defaults to what
    `options.llm` (or BOT_LLM) chooses; its model is made only when an answer needs it."""
    started = time.perf_counter()
    options = options or AskOptions()
    settings = settings or get_settings()
    timings: dict[str, float] = {}
    question = clean_question(question)
    filters = _filters(options)
    import numpy  # noqa: F401 - before any thread: two threads importing numpy at once can fail

    # The models load (mostly without the GIL) while this thread imports the rest.
    ahead = embed_ahead(settings, question) if store is None else []
    with joined_on_error(ahead):
        from bot.answer.providers import get_provider

        # No key, no model file: say so before any work. The model is loaded only when asked.
        provider = provider or get_provider(settings, options.llm)
        t0 = time.perf_counter()
        timings["prepare"] = (t0 - started) * 1000
        k = options.k or settings.top_k
        store, found = _retrieve(
            question,
            filters,
            k,
            settings,
            store=store,
            notify=notify,
            timings=timings,
            since=t0,
            embedding=ahead[0] if ahead else None,
        )
        found.passages = with_authors(store, found.passages)
        phash = _prompt_hash(provider, k, store.embedder, settings)
        needs = _read(question, found, store)
        verdict = _answerability(needs, found, store, settings.min_relevance)
    join_counted(ahead, timings)  # the index model is loaded: the answer and the checker use it
    result = refusal(question, found.passages, provider.name, provider.model, phash, verdict.why)
    result.timings_ms = timings
    if not verdict.answerable:
        return result
    return _answered(
        result,
        provider,
        store,
        settings,
        needs=needs,
        verdict=verdict,
        more=functools.partial(_reports_of, store=store, filters=filters, k=k),
        on_delta=on_delta,
    )


def _answered(
    result: AnswerResult,
    provider: Provider,
    store: Any,
    settings: Settings,
    *,
    needs: Needs,
    verdict: Verdict,
    more: MorePassages,
    on_delta: Callable[[str], None] | None,
) -> AnswerResult:
    """The answer to a question the passages answer: drafted (by the model, or quoted), then
    checked sentence by sentence, with other outlets' values, and dated."""
    timings = result.timings_ms
    retrieved = result.passages  # what the answer is dated from: not the passages added later
    llm = _load_llm(provider, timings)
    t0 = time.perf_counter()
    text, prefetch = _draft(
        llm,
        result,
        store.embedder,
        settings=settings,
        on_delta=on_delta,
        verdict=verdict,
        needs=needs,
    )
    timings["llm"] = (time.perf_counter() - t0) * 1000
    result = _checked(
        result,
        text,
        store.embedder,
        settings.min_support,
        prefetch=prefetch,
        by_model=llm is not None,
        more=more,
    )
    return _dated(result, needs, retrieved)


def _filters(options: AskOptions) -> Filters:
    from bot.core.dates import parse_date_bound
    from bot.index.filters import Filters

    return Filters(
        source=options.source,
        since_ts=parse_date_bound(options.since, end=False),
        until_ts=parse_date_bound(options.until, end=True),
    )


def _reports_of(
    sentence: str, have: set[str], *, store: Any, filters: Filters, k: int
) -> list[Passage]:
    """Passages near a sentence of the answer, under the question's filters: other outlets'
    reports of what it states, which the question's own top `k` may have left out when one
    article's chunks ranked higher. The best chunk of each of the `k` closest articles, leaving
    out the chunks in `have`; the sentence's vector is the one the answer was checked with."""
    import numpy as np

    from bot.index.records import article_of

    vector = np.asarray(store.embedder.embed([sentence]), dtype=np.float32)[0]
    best: dict[str, str] = {}
    for cid in store.dense_ids(vector, k * REPORTS_PER_PASSAGE, filters):
        if cid not in have:
            best.setdefault(article_of(cid), cid)
    chunks = store.chunks_by_ids(list(best.values())[:k])
    return with_authors(store, [c.to_passage(n) for n, c in enumerate(chunks, start=1)])


def _prompt_hash(provider: Provider, k: int, embedder: Embedder, settings: Settings) -> str:
    """Names the prompt files and every setting that shapes an answer (`prompt_hash` in JSON)."""
    from bot.answer.prompts import answer_prompt_texts, prompt_hash

    return prompt_hash(
        *answer_prompt_texts(),
        provider.name,
        provider.model,
        str(k),
        embedder.question_name,
        f"{settings.min_relevance}/{settings.min_support}",
    )


def _dated(result: AnswerResult, needs: Needs, passages: list[Passage]) -> AnswerResult:
    """`result` with the date of a "when" answer, or, for a refusal without a reason yet, what
    no passage says."""
    from bot.answer.when import answer_date

    if not result.refused:
        result.answer_date = answer_date(needs, result.sentences, passages)
    elif not result.warnings:
        result.warnings.append(f"no passage says {needs.clause}")
    return result


def _read(question: str, found: Retrieval, store: Any) -> Needs:
    """What `question` asks for, read once for the gate, the answer and its date; the index's
    outlet names in it say where to look, not what to find."""
    from bot.answer.answer_type import read_question
    from bot.index.keyword import load_lexical_index

    outlets = load_lexical_index(store).outlets() if found.passages else []
    return read_question(question, outlets)


def _answerability(needs: Needs, found: Retrieval, store: Any, min_relevance: float) -> Verdict:
    """Whether a retrieved sentence answers the question (bot.answer.answerability), for every
    provider alike: the model is asked only when one does."""
    from bot.answer.answerability import judge
    from bot.answer.extractive import quotable_sentences

    return judge(
        needs,
        found.passages,
        quotable_sentences(needs, found.passages, store.embedder),
        best_dense=found.best_dense,
        min_relevance=min_relevance,
    )


def _load_llm(provider: Provider, timings: dict[str, float]) -> ChatModel | None:
    """The provider's chat model; the time it took to make adds "llm_load" to `timings`. Made
    here, not in a thread during the imports: llama-cpp-python's own import needs the GIL, and
    the two slowed each other down more than the overlap saved."""
    t0 = time.perf_counter()
    fresh = not provider.loaded
    llm = provider.llm()
    if llm is not None and fresh:
        timings["llm_load"] = (time.perf_counter() - t0) * 1000
    return llm


def _retrieve(
    question: str,
    filters: Filters,
    k: int,
    settings: Settings,
    *,
    store: Any,
    notify: Callable[[str], None] | None,
    timings: dict[str, float],
    since: float,
    embedding: threading.Thread | None = None,
) -> tuple[Any, Retrieval]:
    """The index (opened here when `store` is None: the seeds are indexed on a first run) and the
    passages retrieved for `question`, once `embedding` (the model loading ahead) has finished.
    Adds "imports" (counted from `since`), "open_index" and "retrieval" to `timings`."""
    from bot.index.search import resolve_source, retrieve_passages

    _import_heavy(settings)
    if embedding is not None:
        embedding.join()
    timings["imports"] = (time.perf_counter() - since) * 1000

    t0 = time.perf_counter()
    store = store or open_index(settings, notify)
    filters.source = resolve_source(store, filters.source)
    timings["open_index"] = (time.perf_counter() - t0) * 1000

    t0 = time.perf_counter()
    found = retrieve_passages(question, store, k=k, filters=filters, mmr_lambda=settings.mmr_lambda)
    timings["retrieval"] = (time.perf_counter() - t0) * 1000
    return store, found


def _draft(
    llm: ChatModel | None,
    result: AnswerResult,
    embedder: Embedder,
    *,
    settings: Settings,
    on_delta: Callable[[str], None] | None,
    verdict: Verdict,
    needs: Needs,
) -> tuple[str, threading.Thread | None]:
    """The unchecked answer to `result.question` from `result.passages`: the model's (the
    passages that fit its context and the usage are set on `result`), or quoted sentences of
    the articles that may answer (`verdict.articles`) when there is no model, read as `needs`.
    Also the thread embedding passage sentences meanwhile, if one runs."""
    from bot.answer.prompts import build_answer_messages

    if llm is None:
        from bot.answer.extractive import extractive_answer

        text = extractive_answer(
            result.question,
            result.passages,
            embedder,
            min_relevance=settings.min_relevance,
            articles=verdict.articles,
            needs=needs,
        )
        if on_delta:
            on_delta(text)
        return text, None
    result.passages = _fit_passages(llm, result.question, result.passages)
    prefetch = embed_while_waiting(llm, embedder, result.passages)
    try:
        completion = llm.complete(
            build_answer_messages(result.question, result.passages),
            max_tokens=ANSWER_MAX_TOKENS,
            on_delta=on_delta,
        )
    except BaseException:
        if prefetch is not None:
            prefetch.join()
        raise
    result.usage = completion.usage
    return completion.text, prefetch


def _checked(
    result: AnswerResult,
    text: str,
    embedder: Embedder,
    min_support: float,
    *,
    prefetch: threading.Thread | None,
    by_model: bool = True,
    more: MorePassages | None = None,
) -> AnswerResult:
    """`result` (a refusal so far) with `text` checked against its passages: the answer, its
    checked sentences and the passages they cite marked `cited`, with the disagreements between
    outlets, or still a refusal. Adds "checking" to its timings. A citation the checker drops is
    reported when a model wrote it (`by_model`); the extractive answer's own co-citations of
    near-duplicate sentences are simply narrowed."""
    from bot.answer.checking import check_answer
    from bot.answer.disagreement import add_disagreements

    t0 = time.perf_counter()
    if prefetch is not None:
        prefetch.join()  # what it has not finished yet is checking time
    checked = check_answer(text, result.passages, embedder=embedder, min_support=min_support)
    result.timings_ms["checking"] = (time.perf_counter() - t0) * 1000
    result.dropped_citations = checked.dropped
    if checked.dropped:
        shown = ", ".join(f"[{n}]" for n in checked.dropped)
        result.warnings.append(f"removed citations to passages that were never given: {shown}")
    if not text.strip():
        result.warnings.append("the model returned an empty answer")
    if not checked.refused:
        result.answer, result.refused = checked.answer, False
        result.sentences = checked.sentences
        result.passages = mark_cited(result.passages, checked.sentences)
        t0 = time.perf_counter()
        add_disagreements(result, embedder, focus=result.question, say_dropped=by_model, more=more)
        result.timings_ms["checking"] += (time.perf_counter() - t0) * 1000
    return result
