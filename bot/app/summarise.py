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
   Only cited passages are listed, renumbered 1..m in order of first citation, and the text is
   renumbered to match. Pairs of sentences from different articles that state the same thing
   with different numbers are reported as a warning ("the articles disagree: ...").
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from bot.app.mapreduce import Run, number
from bot.core.errors import BotError
from bot.core.markers import with_markers
from bot.core.sentences import split_sentences
from bot.core.settings import Settings, get_settings
from bot.core.text import clip, sanitize
from bot.core.types import (
    NO_ANSWER,
    AnswerResult,
    CheckedSentence,
    Passage,
    Progress,
    SilentProgress,
)
from bot.core.words import content_words, stated_numbers

if TYPE_CHECKING:
    from bot.answer.providers import Provider

MAX_TOPIC_CHARS = 500
# Extractive mode: candidate sentences in all (embedding them dominates the run time).
EXTRACTIVE_SENTENCE_BUDGET = 1200
EXTRACTIVE_MIN_PER_ARTICLE = 1
EXTRACTIVE_MAX_PER_ARTICLE = 20  # news puts the substance first
# Co-citation: passages of other articles tried per summary sentence, and in all.
COCITE_PER_SENTENCE = 2
COCITE_POOL_LIMIT = 24
CLOSEST_SHOWN = 6  # passages shown with a no-answer result
DISAGREEMENT_JACCARD = 0.5  # content words (numbers aside) two differing statements share


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


@dataclass
class SummaryResult(AnswerResult):
    """An `AnswerResult` plus what was summarised; `--json` adds these keys to ask's."""

    topic: str | None = None
    scope: str = ""
    length: str = "medium"
    articles: int = 0  # articles in the selection
    passages_considered: int = 0  # passages in the selection (numbered globally)
    llm_calls: int = 0
    map_calls: int = 0
    merge_levels: int = 0  # 0 = no LLM, 1 = one final merge, 2+ = hierarchical

    def to_json(self) -> dict:
        data = {"kind": "summary", **super().to_json()}
        data.update(
            {
                "topic": self.topic,
                "scope": self.scope,
                "length": self.length,
                "articles": self.articles,
                "passages_considered": self.passages_considered,
                "llm_calls": self.llm_calls,
                "map_calls": self.map_calls,
                "merge_levels": self.merge_levels,
            }
        )
        return data


@dataclass
class _Selection:
    passages: list[Passage]  # numbered 1..N
    scope: str
    articles: int
    weak: str | None = None  # why a topic selection is too weak to summarise


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


def find_article(entries: dict[str, Any], value: str) -> Any | None:
    """The manifest entry whose id, indexed path or unique id prefix is `value` (None: no match)."""
    value = value.strip()
    if not value:
        return None
    if value in entries:
        return entries[value]
    wanted = {value}
    file_part, hash_sign, record = value.partition("#")
    for form in (os.path.abspath(os.path.expanduser(file_part)), os.path.realpath(file_part)):
        wanted.add(form + hash_sign + record)
    for entry in entries.values():
        if wanted.intersection(entry.paths):
            return entry
    if len(value) >= 4 and re.fullmatch(r"[0-9a-f]+", value):
        found = [e for e in entries.values() if e.article_id.startswith(value)]
        if len(found) > 1:
            raise BotError(
                f"The article id prefix {value!r} matches {len(found)} articles",
                hint="give more characters; `bot sources --json` shows the ids",
            )
        if found:
            return found[0]
    return None


def _unknown_target(value: str) -> BotError:
    return BotError(
        f"No indexed article matches {value!r}",
        hint="`bot sources` lists the indexed paths; `bot sources --json` also shows article ids",
    )


def _resolve_scope(store: Any, options: SummariseOptions) -> tuple[Any | None, str | None]:
    """(the target article's manifest entry or None, the outlet filter or None)."""
    entries = store.article_entries()
    target = None
    if options.target is not None:
        target = find_article(entries, options.target)
        if target is None:
            raise _unknown_target(options.target)
    outlet = None
    if options.source is not None and options.source.strip():
        wanted = options.source.strip()
        outlets = {e.source for e in entries.values() if e.source}
        if wanted in outlets:
            outlet = wanted
        else:
            folded = [o for o in sorted(outlets) if o.casefold() == wanted.casefold()]
            if folded:
                outlet = folded[0]
            elif target is None and (article := find_article(entries, wanted)) is not None:
                target = article  # "--source PATH": the "--source/a path/an article id"
            else:
                raise BotError(
                    f"No outlet, indexed path or article id matches {wanted!r}",
                    hint="`bot sources` lists the outlets and paths",
                )
    return target, outlet


# --- selection -----------------------------------------------------------------------------------


def _where(filters: Any, article_id: str | None) -> dict | None:
    clauses = []
    if article_id:
        clauses.append({"article_id": article_id})
    where = filters.chroma_where()
    if where:
        clauses.extend(where.get("$and", [where]))
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _fetch_chunks(store: Any, where: dict | None) -> list[tuple[str, dict, str]]:
    if store.chunks is None:
        return []
    rows: list[tuple[str, dict, str]] = []
    page = 5000
    offset = 0
    while True:
        got = store.chunks.get(
            where=where, include=["metadatas", "documents"], limit=page, offset=offset
        )
        ids = got["ids"]
        for i, chunk_id in enumerate(ids):
            rows.append((chunk_id, got["metadatas"][i] or {}, got["documents"][i] or ""))
        if len(ids) < page:
            return rows
        offset += page


def _article_key(meta: dict) -> tuple:
    published = str(meta.get("published", ""))
    return (published == "", published, str(meta.get("title", "")).lower(), meta.get("article_id"))


def _select(
    store: Any,
    settings: Settings,
    target: Any | None,
    filters: Any,
    topic: str | None,
    scope: str,
) -> _Selection:
    if topic and target is None:
        from bot.index.search import retrieve_passages

        k = max(settings.summary_topic_k, settings.top_k)
        found = retrieve_passages(
            topic, store, k=k, filters=filters, mmr_lambda=settings.mmr_lambda
        )
        ordered = sorted(found.passages, key=lambda p: (_article_key(_meta_of(p)), p.start))
        selection = _Selection(number(ordered), scope, len({p.article_id for p in ordered}))
        if not found.passages:
            selection.weak = "no indexed passage matches the filters"
        elif found.best_dense < settings.min_relevance:
            selection.weak = (
                f"no passage is about the topic (closest similarity {found.best_dense:.2f})"
            )
            # The closest passages, best first, as ask shows them.
            selection.passages = number(found.passages[:CLOSEST_SHOWN])
        return selection

    rows = _fetch_chunks(store, _where(filters, target.article_id if target else None))
    by_article: dict[str, list[tuple[str, dict, str]]] = {}
    for row in rows:
        by_article.setdefault(str(row[1].get("article_id", "")), []).append(row)
    cap = None if target is not None else settings.summary_chunks_per_article
    passages: list[Passage] = []
    for chunks in sorted(by_article.values(), key=lambda c: _article_key(c[0][1])):
        chunks.sort(key=lambda r: (int(r[1].get("chunk_index", 0)), int(r[1].get("start", 0))))
        for chunk_id, meta, text in chunks[:cap]:
            passages.append(Passage.from_chunk(0, chunk_id, meta, text))
    return _Selection(number(passages), scope, len(by_article))


def _meta_of(p: Passage) -> dict:
    return {"published": p.published, "title": p.title, "article_id": p.article_id}


def _describe(target: Any | None, outlet: str | None, since: str | None, until: str | None) -> str:
    if target is not None:
        title = " ".join(sanitize(target.title).split()) or "(untitled)"
        text = f'the article "{title}"'
        if target.source:
            text += f" ({' '.join(sanitize(target.source).split())})"
    elif outlet:
        text = f"the articles from {' '.join(sanitize(outlet).split())}"
    else:
        text = "all indexed articles"
    since, until = (since or "").strip(), (until or "").strip()
    if since and until:
        text += f" published {since} to {until}"
    elif since:
        text += f" published on or after {since}"
    elif until:
        text += f" published on or before {until}"
    return text


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
        (replace(passages[old], n=new) for old, new in mapping.items()), key=lambda p: p.n
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
    )
    run.dropped.update(first.dropped)
    pool = _cocite_pool(first.answer, given, everything, settings.min_support)
    checked = check_answer(
        first.answer, pool, embedder=store.embedder, min_support=settings.min_support
    )
    checked.refused = checked.refused or first.refused
    return checked, pool


def disagreements(sentences: Sequence[CheckedSentence], passages: Sequence[Passage]) -> list[str]:
    """Pairs of summary sentences from different articles that say the same thing with different
    numbers ("15 people were injured" [1] / "12 people were injured" [2]), as one-line notes."""
    article_of = {p.n: p.article_id for p in passages}
    facts = []
    for sentence in sentences:
        numbers = stated_numbers(sentence.text)
        words = {w for w in content_words(sentence.text) if not w[:1].isdigit()}
        articles = {article_of.get(n) for n in sentence.citations}
        if numbers and len(words) >= 3 and sentence.citations:
            facts.append((sentence, numbers, words, articles))
    found = []
    for i, (a, a_numbers, a_words, a_articles) in enumerate(facts):
        for b, b_numbers, b_words, b_articles in facts[i + 1 :]:
            if a_numbers == b_numbers or a_articles & b_articles:
                continue
            if len(a_words & b_words) / len(a_words | b_words) >= DISAGREEMENT_JACCARD:
                found.append(f"the articles disagree: {_quote(a)} vs {_quote(b)}")
    return found


def _quote(sentence: CheckedSentence, limit: int = 90) -> str:
    return f"“{clip(sentence.text.rstrip('.'), limit)}” " + "".join(
        f"[{n}]" for n in sentence.citations
    )


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


def summarise(
    options: SummariseOptions | None = None,
    *,
    settings: Settings | None = None,
    provider: Provider | None = None,
    store: Any = None,
    on_delta: Callable[[str], None] | None = None,
    notify: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> AnswerResult:
    """A cited summary of the selected articles (see the module docstring). `provider` defaults
    to what `options.llm` (or BOT_LLM) chooses; its model is made only when the summary needs it."""
    from bot.answer.providers import get_provider
    from bot.core.dates import parse_date_bound
    from bot.index.search import Filters

    options = options or SummariseOptions()
    settings = settings or get_settings()
    progress = progress or SilentProgress()
    spec = length_spec(options.length)
    length = "medium" if options.length is None else options.length.strip().lower()
    topic = clean_topic(options.topic)
    filters = Filters(
        since_ts=parse_date_bound(options.since, end=False),
        until_ts=parse_date_bound(options.until, end=True),
    )
    provider = provider or get_provider(settings, options.llm)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    from bot.app.ask import open_index

    store = store or open_index(settings, notify)
    timings["open_index"] = (time.perf_counter() - t0) * 1000

    t0 = time.perf_counter()
    target, outlet = _resolve_scope(store, options)
    filters.source = outlet
    scope = _describe(target, outlet, options.since, options.until)
    selection = _select(store, settings, target, filters, topic, scope)
    timings["selection"] = (time.perf_counter() - t0) * 1000
    subject = topic or selection.scope
    question = f"summary: {subject}"
    phash = _prompt_hash(provider, store, settings, length)
    run = Run()

    def result(**fields: Any) -> SummaryResult:
        warnings = list(fields.pop("warnings", []))
        if run.dropped:
            shown = ", ".join(f"[{n}]" for n in sorted(run.dropped))
            warnings.insert(0, f"removed citations to passages that were never given: {shown}")
        usage = dict(run.usage)
        return SummaryResult(
            question=question,
            provider=provider.name,
            model=provider.model,
            prompt_hash=phash,
            timings_ms=timings,
            usage=usage,
            dropped_citations=sorted(run.dropped),
            warnings=warnings + run.warnings,
            topic=topic,
            scope=selection.scope,
            length=length,
            articles=selection.articles,
            passages_considered=len(everything),
            llm_calls=run.calls,
            map_calls=run.map_calls,
            merge_levels=run.levels,
            **fields,
        )

    everything = selection.passages

    def no_answer(why: str, passages: list[Passage]) -> SummaryResult:
        return result(answer=NO_ANSWER, refused=True, passages=passages, warnings=[why])

    if not selection.passages:
        return no_answer("no indexed article matches the filters", [])
    if selection.weak:
        return no_answer(selection.weak, selection.passages)

    t0 = time.perf_counter()
    llm = provider.llm()
    if llm is None:
        from bot.answer.extractive import extractive_summary

        chosen = _extractive_passages(everything, EXTRACTIVE_SENTENCE_BUDGET)
        text = extractive_summary(chosen, store.embedder, max_sentences=spec.sentences, query=topic)
        # A markdown article's "# Heading" line can be quoted as a sentence: keep its words only.
        text = _QUOTED_HEADING_RE.sub(r"\1", text)
        by_n = {p.n: p for p in everything}
        given = {n: by_n[n] for n in _cited_numbers(text) if n in by_n}
        if on_delta:
            on_delta(text)
        timings["summarise"] = (time.perf_counter() - t0) * 1000
    else:
        from bot.app.mapreduce import llm_summary

        made = llm_summary(
            llm,
            subject,
            everything,
            instructions=spec.instructions,
            max_tokens=spec.max_tokens,
            max_sentences=spec.sentences + 1,
            settings=settings,
            run=run,
            progress=progress,
            embedder=store.embedder,
            query=topic,
            timings=timings,
            on_delta=on_delta,
        )
        if made is None:
            return no_answer(
                "the model found nothing to note in the passages", everything[:CLOSEST_SHOWN]
            )
        text, given, everything = made

    t0 = time.perf_counter()
    checked, pool = _check_summary(text, given, everything, store, settings, run)
    timings["checking"] = (time.perf_counter() - t0) * 1000
    warnings = [] if text.strip() else ["the model returned an empty summary"]
    if checked.refused or not checked.sentences:
        shown = sorted(given.values(), key=lambda p: p.n)[:CLOSEST_SHOWN]
        return result(
            answer=NO_ANSWER,
            refused=True,
            passages=number(shown),
            warnings=warnings or ["the model found nothing to summarise"],
        )
    answer, sentences, cited = _renumber(checked.answer, checked.sentences, {p.n: p for p in pool})
    warnings.extend(disagreements(sentences, cited))
    return result(
        answer=answer, refused=False, sentences=sentences, passages=cited, warnings=warnings
    )
