"""`bot summarise`: a cited summary of one article, an outlet, a date range, a topic or everything.

Steps:

1. Select passages: the chunks of one article (`target`), of the articles that pass the outlet and
   date filters, or the passages retrieved for `topic`. In a multi-article summary each article
   contributes at most its first BOT_SUMMARY_CHUNKS_PER_ARTICLE chunks. The selection is numbered
   ONCE, globally, 1..N; every prompt, note and citation uses these numbers.
2. Extractive provider: `bot.answer.extractive.extractive_summary` over the selection (no LLM). Each
   article offers at most its first 20 sentences; with many articles the budget of candidate
   sentences is shared evenly among them (each article's first ones).
3. LLM providers: `bot.app.mapreduce.llm_summary` maps batches of passages that fit the context
   window to cited notes (bounded concurrency), condenses the notes level after level when they
   do not fit one prompt, and merges them into the summary. Notes carry the original passage
   numbers, so citations survive every level.
4. Check: the summary is checked with `bot.answer.checking.check_answer` like an answer of `ask`,
   against
   the passages it cites plus, for each sentence, a few passages (of other articles when it
   cites one) that share its wording, so a fact reported by several outlets cites all of them.
   Disagreements are found as in `ask` (bot.answer.disagreement, focused on the topic) and the
   other values' sentences added as bullets. Only cited passages are listed, renumbered 1..m.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from bot.answer.disagreement import add_disagreements
from bot.app.articles import with_authors
from bot.app.mapreduce import Run, number
from bot.app.selection import (
    CLOSEST_SHOWN,
    Selection,
    date_filters,
    describe_scope,
    resolve_scope,
    select_passages,
)
from bot.core.errors import BotError
from bot.core.markers import with_markers
from bot.core.sentences import split_sentences
from bot.core.settings import Settings, get_settings
from bot.core.types import (
    NO_ANSWER,
    AnswerResult,
    CheckedSentence,
    Passage,
    Progress,
    SilentProgress,
    SummaryResult,
)
from bot.core.words import content_words

if TYPE_CHECKING:
    from bot.answer.providers import ChatModel, Provider

MAX_TOPIC_CHARS = 500
# Extractive mode: candidate sentences in all (embedding them dominates the run time).
EXTRACTIVE_SENTENCE_BUDGET = 1200
EXTRACTIVE_MIN_PER_ARTICLE = 1
EXTRACTIVE_MAX_PER_ARTICLE = 20  # news puts the substance first
# Co-citation: passages of other articles tried per summary sentence, and in all.
COCITE_PER_SENTENCE = 2
COCITE_POOL_LIMIT = 24


@dataclass(frozen=True)
class LengthSpec:
    sentences: int  # extractive sentences / target sentences
    max_tokens: int  # output budget of the final merge
    instructions: str


LENGTHS: dict[str, LengthSpec] = {
    "short": LengthSpec(3, 220, "Write 2 or 3 sentences of plain prose."),
    "medium": LengthSpec(6, 420, "Write one paragraph of 4 to 6 sentences of plain prose."),
    "long": LengthSpec(
        12, 850, "Write 2 or 3 paragraphs of plain prose, 8 to 12 sentences in all."
    ),
}
_QUOTED_HEADING_RE = re.compile(r"(?m)^(\s*-\s+)#{1,6}\s+")


@dataclass
class SummariseOptions:
    target: str | None = None  # an indexed file path or article id (or unique id prefix)
    source: str | None = None  # outlet filter; an indexed path or article id works as target
    topic: str | None = None  # focused summary from retrieved passages
    since: str | None = None
    until: str | None = None
    length: str = "medium"  # short | medium | long
    llm: str | None = None  # auto | openai | local | extractive; None = BOT_LLM


# --- options and scope ---------------------------------------------------------------------------


def length_spec(length: str | None) -> LengthSpec:
    """The spec of `--length`; a clear error for anything but short, medium or long."""
    key = "medium" if length is None else length.strip().lower()
    if key not in LENGTHS:
        raise BotError(f"Unknown summary length {length!r}", hint="use short, medium or long")
    return LENGTHS[key]


def clean_topic(topic: str | None) -> str | None:
    """The topic without control characters; None when not given, an error when blank or huge."""
    if topic is None:
        return None
    from bot.app.ask import clean_input

    return clean_input(
        topic,
        what="topic",
        limit=MAX_TOPIC_CHARS,
        example='give one, e.g. --topic "the prisoner release"',
    )


# --- checking and numbering ----------------------------------------------------------------------


def _cocite_pool(
    text: str,
    given: dict[int, Passage],
    everything: Sequence[Passage],
    min_support: float,
) -> list[Passage]:
    """The passages a summary is checked against: those it cites, plus for each sentence the few
    passages whose content words cover it best (from other articles when it cites one), so that
    other outlets' reports of the same fact can be co-cited and an uncited sentence attached."""
    from bot.answer.checking import lexical_support
    from bot.answer.citations import parse_citations

    pool = {n: given[n] for n in _cited_numbers(text) if n in given}
    limit = len(pool) + COCITE_POOL_LIMIT
    words: dict[int, set[str]] = {}
    floor = min_support * 0.75
    for sentence, numbers in parse_citations(text):
        sentence_words = content_words(sentence)
        if len(set(sentence_words)) < 3:
            continue
        cited_articles = {given[n].article_id for n in numbers if n in given}
        scored = []
        for p in everything:
            if p.article_id in cited_articles or p.n in pool:
                continue
            if p.n not in words:
                words[p.n] = set(content_words(p.text))
            score, _ = lexical_support(sentence_words, words[p.n])
            if score >= floor:
                scored.append((score, p.n, p))
        scored.sort(key=lambda item: (-item[0], item[1]))
        for _, _, p in scored[:COCITE_PER_SENTENCE]:
            pool[p.n] = p
        if len(pool) >= limit:
            break
    return sorted(pool.values(), key=lambda p: p.n)


def _cited_numbers(text: str) -> list[int]:
    from bot.answer.citations import parse_citations

    return list(dict.fromkeys(n for _, numbers in parse_citations(text) for n in numbers))


def _renumber(
    answer: str, sentences: list[CheckedSentence], passages: dict[int, Passage]
) -> tuple[str, list[CheckedSentence], list[Passage]]:
    """Keep only cited passages, numbered 1..m by first citation; rewrite the text to match."""
    mapping: dict[int, int] = {}
    for sentence in sentences:
        for n in sentence.citations:
            if n in passages and n not in mapping:
                mapping[n] = len(mapping) + 1
    renumbered = [
        replace(s, citations=sorted(mapping[n] for n in s.citations if n in mapping))
        for s in sentences
    ]
    lines = answer.split("\n")
    index = 0
    for line_no, line in enumerate(lines):
        cursor = 0
        while index < len(sentences):
            old = with_markers(sentences[index].text, sentences[index].citations)
            at = line.find(old, cursor)
            if at < 0:
                break
            new = with_markers(renumbered[index].text, renumbered[index].citations)
            line = line[:at] + new + line[at + len(old) :]
            cursor = at + len(new)
            index += 1
        lines[line_no] = line
    if index < len(sentences):  # the layout was not what check_answer writes: rebuild plainly
        lines = [with_markers(s.text, s.citations) for s in renumbered]
    kept = sorted(
        (replace(passages[old], n=new, cited=True) for old, new in mapping.items()),
        key=lambda p: p.n,
    )
    return "\n".join(lines), renumbered, kept


def _check_summary(
    text: str,
    given: dict[int, Passage],
    everything: Sequence[Passage],
    store: Any,
    settings: Settings,
    run: Run,
) -> tuple[Any, list[Passage]]:
    """check_answer twice: drop numbers never given, then score against a co-citation pool."""
    from bot.answer.checking import check_answer

    first = check_answer(
        text,
        list(given.values()),
        embedder=None,
        min_support=settings.min_support,
        attach_uncited=False,
        clauses=False,
        drop_mismatched=False,
    )
    run.dropped.update(first.dropped)
    pool = _cocite_pool(first.answer, given, everything, settings.min_support)
    checked = check_answer(
        first.answer, pool, embedder=store.embedder, min_support=settings.min_support
    )
    checked.refused = checked.refused or first.refused
    return checked, pool


# --- the pipeline --------------------------------------------------------------------------------


def _extractive_passages(passages: list[Passage], budget: int) -> list[Passage]:
    """Each article's first sentences, the budget shared evenly, as exact sub-spans."""
    articles = {p.article_id for p in passages}
    share = min(EXTRACTIVE_MAX_PER_ARTICLE, budget // max(1, len(articles)))
    quota = max(EXTRACTIVE_MIN_PER_ARTICLE, share)
    used: dict[str, int] = {}
    out: list[Passage] = []
    for passage in passages:
        left = quota - used.get(passage.article_id, 0)
        if left <= 0:
            continue
        spans = split_sentences(passage.text)
        if len(spans) > left:
            end = spans[left - 1][1]
            passage = replace(passage, text=passage.text[:end], end=passage.start + end)
            spans = spans[:left]
        used[passage.article_id] = used.get(passage.article_id, 0) + len(spans)
        out.append(passage)
    return out


def _prompt_hash(provider: Provider, store: Any, settings: Settings, length: str) -> str:
    from bot.answer.prompts import load_prompt, prompt_hash

    return prompt_hash(
        load_prompt("summarise_notes").text,
        load_prompt("summarise_merge").text,
        provider.name,
        provider.model,
        length,
        store.embedder.name,
        f"{settings.min_relevance}/{settings.min_support}",
        f"{settings.summary_chunks_per_article}/{settings.summary_batch_tokens}"
        f"/{settings.summary_topic_k}",
    )


@dataclass
class _Job:
    """One summary run: what its result reports, gathered as the run goes."""

    question: str
    provider: Provider
    prompt_hash: str
    topic: str | None
    length: str
    selection: Selection
    timings: dict[str, float]
    run: Run = field(default_factory=Run)
    everything: list[Passage] = field(default_factory=list)  # the passages the summary drew on

    def result(self, **fields: Any) -> SummaryResult:
        run = self.run
        warnings = list(fields.pop("warnings", []))
        if run.dropped:
            shown = ", ".join(f"[{n}]" for n in sorted(run.dropped))
            warnings.insert(0, f"removed citations to passages that were never given: {shown}")
        return SummaryResult(
            question=self.question,
            provider=self.provider.name,
            model=self.provider.model,
            prompt_hash=self.prompt_hash,
            timings_ms=self.timings,
            usage=dict(run.usage),
            dropped_citations=sorted(run.dropped),
            warnings=warnings + run.warnings,
            topic=self.topic,
            scope=self.selection.scope,
            length=self.length,
            articles=self.selection.articles,
            passages_considered=len(self.everything),
            llm_calls=run.calls,
            map_calls=run.map_calls,
            merge_levels=run.levels,
            **fields,
        )

    def no_answer(self, why: str, passages: list[Passage]) -> SummaryResult:
        return self.result(answer=NO_ANSWER, refused=True, passages=passages, warnings=[why])


def summarise(
    options: SummariseOptions | None = None,
    *,
    settings: Settings | None = None,
    provider: Provider | None = None,
    store: Any = None,
    on_delta: Callable[[str], None] | None = None,
    notify: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> SummaryResult:
    """A cited summary of the selected articles (see the module docstring)."""
    from bot.answer.providers import get_provider

    options = options or SummariseOptions()
    settings = settings or get_settings()
    spec = length_spec(options.length)
    length = "medium" if options.length is None else options.length.strip().lower()
    topic = clean_topic(options.topic)
    filters = date_filters(options.since, options.until)
    provider = provider or get_provider(settings, options.llm)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    from bot.app.ask import open_index

    store = store or open_index(settings, notify)
    timings["open_index"] = (time.perf_counter() - t0) * 1000

    t0 = time.perf_counter()
    target, filters.source = resolve_scope(store, options.target, options.source)
    scope = describe_scope(target, filters.source, options.since, options.until)
    selection = select_passages(store, settings, target, filters, topic, scope)
    timings["selection"] = (time.perf_counter() - t0) * 1000
    subject = topic or selection.scope
    phash = _prompt_hash(provider, store, settings, length)
    job = _Job(f"summary: {subject}", provider, phash, topic, length, selection, timings)
    selection.passages = job.everything = with_authors(store, selection.passages)
    if not selection.passages:
        return job.no_answer("no indexed article matches the filters", [])
    if selection.weak:
        return job.no_answer(selection.weak, selection.passages)

    made = _summary_text(
        job,
        spec,
        subject=subject,
        store=store,
        settings=settings,
        progress=progress,
        on_delta=on_delta,
    )
    if made is None:
        return job.no_answer(
            "the model found nothing to note in the passages", job.everything[:CLOSEST_SHOWN]
        )
    text, given = made
    return _checked_summary(job, text, given, store, settings)


def _summary_text(
    job: _Job,
    spec: LengthSpec,
    *,
    subject: str,
    store: Any,
    settings: Settings,
    progress: Progress | None,
    on_delta: Callable[[str], None] | None,
) -> tuple[str, dict[int, Passage]] | None:
    """The unchecked summary and the passages it cites: quoted sentences when the provider has
    no LLM, else the LLM's map-reduce (None when it found nothing to note)."""
    llm = job.provider.llm()
    if llm is None:
        t0 = time.perf_counter()
        quoted = _extractive_text(job, store.embedder, spec.sentences, on_delta)
        job.timings["summarise"] = (time.perf_counter() - t0) * 1000
        return quoted
    return _llm_text(
        job,
        llm,
        spec,
        subject=subject,
        store=store,
        settings=settings,
        progress=progress,
        on_delta=on_delta,
    )


def _extractive_text(
    job: _Job, embedder: Any, sentences: int, on_delta: Callable[[str], None] | None
) -> tuple[str, dict[int, Passage]]:
    """The extractive summary (no LLM) and the passages it cites, by number."""
    from bot.answer.extractive import extractive_summary

    chosen = _extractive_passages(job.everything, EXTRACTIVE_SENTENCE_BUDGET)
    text = extractive_summary(chosen, embedder, max_sentences=sentences, query=job.topic)
    # A markdown article's "# Heading" line can be quoted as a sentence: keep its words only.
    text = _QUOTED_HEADING_RE.sub(r"\1", text)
    by_n = {p.n: p for p in job.everything}
    given = {n: by_n[n] for n in _cited_numbers(text) if n in by_n}
    if on_delta:
        on_delta(text)
    return text, given


def _llm_text(
    job: _Job,
    llm: ChatModel,
    spec: LengthSpec,
    *,
    subject: str,
    store: Any,
    settings: Settings,
    progress: Progress | None,
    on_delta: Callable[[str], None] | None,
) -> tuple[str, dict[int, Passage]] | None:
    """The summary the LLM writes by map-reduce (`bot.app.mapreduce.llm_summary`) and the passages
    it cites, by number; None when the model found nothing to note."""
    from bot.app.mapreduce import llm_summary

    made = llm_summary(
        llm,
        subject,
        job.everything,
        instructions=spec.instructions,
        max_tokens=spec.max_tokens,
        max_sentences=spec.sentences + 1,
        settings=settings,
        run=job.run,
        progress=progress or SilentProgress(),
        embedder=store.embedder,
        query=job.topic,
        timings=job.timings,
        on_delta=on_delta,
    )
    if made is None:
        return None
    text, given, job.everything = made
    return text, given


def _checked_summary(
    job: _Job, text: str, given: dict[int, Passage], store: Any, settings: Settings
) -> SummaryResult:
    """The summary checked, renumbered to the passages it cites, with their disagreements."""
    t0 = time.perf_counter()
    checked, pool = _check_summary(text, given, job.everything, store, settings, job.run)
    job.timings["checking"] = (time.perf_counter() - t0) * 1000
    warnings = [] if text.strip() else ["the model returned an empty summary"]
    if checked.refused or not checked.sentences:
        shown = sorted(given.values(), key=lambda p: p.n)[:CLOSEST_SHOWN]
        return job.result(
            answer=NO_ANSWER,
            refused=True,
            passages=number(shown),
            warnings=warnings or ["the model found nothing to summarise"],
        )
    found = AnswerResult(
        job.question, checked.answer, False, "", "", "", checked.sentences, list(pool)
    )
    add_disagreements(found, store.embedder, focus=job.topic or "", bullets=True)
    answer, sentences, cited = _renumber(found.answer, found.sentences, {p.n: p for p in pool})
    renumber = _new_numbers(pool, cited)
    for disagreement in found.disagreements:
        for value in disagreement.values:
            value.citations = sorted(renumber[n] for n in value.citations if n in renumber)
    return job.result(
        answer=answer,
        refused=False,
        sentences=sentences,
        passages=cited,
        warnings=warnings + found.warnings,
        disagreements=found.disagreements,
    )


def _new_numbers(pool: Sequence[Passage], cited: Sequence[Passage]) -> dict[int, int]:
    """The pool's passage numbers mapped to the renumbered cited passages' numbers."""
    new = {p.chunk_id: p.n for p in cited}
    return {p.n: new[p.chunk_id] for p in pool if p.chunk_id in new}
