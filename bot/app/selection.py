"""Which passages a summary reads: one article, the articles that pass the outlet and date
filters, or the passages retrieved for a topic (step 1 of `bot.app.summarise`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bot.app.mapreduce import number
from bot.core.errors import BotError
from bot.core.settings import Settings
from bot.core.text import sanitize
from bot.core.types import Passage
from bot.core.words import content_words

if TYPE_CHECKING:
    from bot.index.filters import Filters
    from bot.index.reader import IndexReader
    from bot.index.records import ArticleEntry, StoredChunk

CLOSEST_SHOWN = 6  # passages shown with a no-answer result


@dataclass
class Selection:
    """The passages a summary reads."""

    passages: list[Passage]  # numbered 1..N
    scope: str
    articles: int
    weak: str | None = None  # why a topic selection is too weak to summarise


def find_article(entries: dict[str, ArticleEntry], value: str) -> ArticleEntry | None:
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


def date_filters(since: str | None, until: str | None) -> Filters:
    """`--since` and `--until` as filters (the outlet is added once it is resolved)."""
    from bot.core.dates import parse_date_bound
    from bot.index.filters import Filters

    return Filters(
        since_ts=parse_date_bound(since, end=False), until_ts=parse_date_bound(until, end=True)
    )


def _unknown_target(value: str) -> BotError:
    return BotError(
        f"No indexed article matches {value!r}",
        hint="`bot sources` lists the indexed paths; `bot sources --json` also shows article ids",
    )


def resolve_scope(
    store: IndexReader, target: str | None, source: str | None
) -> tuple[ArticleEntry | None, str | None]:
    """What `bot summarise TARGET --source SOURCE` means: (the target article's manifest entry or
    None, the outlet or None). A path or article id given as the source means that article."""
    from bot.index.filters import list_names, match_outlet

    entries = store.article_entries()
    article = None
    if target is not None:
        article = find_article(entries, target)
        if article is None:
            raise _unknown_target(target)
    if source is None or not source.strip():
        return article, None
    wanted = source.strip()
    outlets = sorted({e.source for e in entries.values() if e.source})
    outlet = match_outlet(wanted, outlets)
    if outlet is not None:
        return article, outlet
    if article is None and (named := find_article(entries, wanted)) is not None:
        return named, None  # "--source PATH" or "--source ARTICLE_ID": that article
    raise BotError(
        f"No outlet, indexed path or article id matches {wanted!r}",
        hint=f"known outlets: {list_names(outlets)}; `bot sources` lists the paths"
        if outlets
        else "`bot sources` lists the outlets and paths",
    )


# --- selection -----------------------------------------------------------------------------------


def _article_key(item: Passage | StoredChunk) -> tuple:
    """Articles in the order a summary reads them: dated ones by date, then by title."""
    return (item.published == "", item.published, item.title.lower(), item.article_id)


def select_passages(
    store: IndexReader,
    settings: Settings,
    target: ArticleEntry | None,
    filters: Filters,
    topic: str | None,
    scope: str,
) -> Selection:
    """The passages a summary reads, numbered 1..N: the chunks of the target article, or of every
    article that passes the filters (its first BOT_SUMMARY_CHUNKS_PER_ARTICLE), in date order;
    with a topic, the passages retrieved for it."""
    if topic and target is None:
        return _select_topic(store, settings, filters, topic, scope)
    chunks = store.chunks_where(filters, article_id=target.article_id if target else None)
    by_article: dict[str, list[StoredChunk]] = {}
    for chunk in chunks:
        by_article.setdefault(chunk.article_id, []).append(chunk)
    cap = None if target is not None else settings.summary_chunks_per_article
    passages: list[Passage] = []
    for article in sorted(by_article.values(), key=lambda c: _article_key(c[0])):
        article.sort(key=lambda c: (c.chunk_index, c.start))
        passages.extend(chunk.to_passage(0) for chunk in article[:cap])
    return Selection(number(passages), scope, len(by_article))


def _select_topic(
    store: IndexReader, settings: Settings, filters: Filters, topic: str, scope: str
) -> Selection:
    from bot.index.search import retrieve_passages

    k = max(settings.summary_topic_k, settings.top_k)
    found = retrieve_passages(topic, store, k=k, filters=filters, mmr_lambda=settings.mmr_lambda)
    ordered = sorted(_about(topic, found.passages), key=lambda p: (_article_key(p), p.start))
    selection = Selection(number(ordered), scope, len({p.article_id for p in ordered}))
    if not found.passages:
        selection.weak = "no indexed passage matches the filters"
    elif found.best_dense < settings.min_relevance:
        selection.weak = (
            f"no passage is about the topic (closest similarity {found.best_dense:.2f})"
        )
        # The closest passages, best first, as ask shows them.
        selection.passages = number(found.passages[:CLOSEST_SHOWN])
    return selection


def _about(topic: str, passages: list[Passage]) -> list[Passage]:
    """The retrieved passages about the topic (bot.answer.topic): retrieval also brings passages
    that only share its setting. All of them when none is, so the relevance gate can judge."""
    from bot.answer.topic import about_topic

    words = [content_words(p.text) for p in passages]
    keep = about_topic(topic, words, np.array([p.dense for p in passages], dtype=np.float32))
    return [p for p, kept in zip(passages, keep, strict=True) if kept] or passages


def describe_scope(
    target: ArticleEntry | None, outlet: str | None, since: str | None, until: str | None
) -> str:
    """The selection in words, as the summary's subject ("the articles from BBC News")."""
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
