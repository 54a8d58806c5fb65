"""A fetched feed's items: RSS 2.0, RSS 1.0 and Atom with feedparser, JSON Feed with json. An
item is its link (made absolute), its title and date as the feed gives them, and a stamp that
changes when the feed says the item changed."""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from bot.core.dates import normalise_date
from bot.core.errors import WebError
from bot.core.text import one_line
from bot.sources.article import TITLE_MAX, normalise_text


@dataclass(frozen=True)
class FeedItem:
    link: str
    title: str
    published: str  # ISO 8601, "" when the feed gives no date
    stamp: str  # the item's updated (else published) date as the feed writes it
    author: str = ""  # the item's byline, "" when the feed names none


@dataclass
class Feed:
    title: str
    items: list[FeedItem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_feed(url: str, text: str) -> Feed:
    """The items of the feed at `url`; WebError `not a feed` when it is none."""
    if text.lstrip().startswith("{"):
        return _json_feed(url, text)
    import feedparser

    parsed = feedparser.parse(text, sanitize_html=True, resolve_relative_uris=False)
    if not parsed.version and not parsed.entries:
        raise WebError(url, "not a feed (neither RSS, Atom nor JSON Feed)")
    feed = Feed(title=_clean(parsed.feed.get("title", "")))
    for n, entry in enumerate(parsed.entries, 1):
        link = entry.get("link") or ""
        if not link:
            feed.warnings.append(f"item {n}: no link; skipped")
            continue
        published = _struct_date(entry.get("published_parsed") or entry.get("updated_parsed"))
        stamp = str(entry.get("updated") or entry.get("published") or "")
        title = _clean(entry.get("title", ""))
        author = _clean(entry.get("author", ""))
        feed.items.append(FeedItem(urljoin(url, link), title, published, stamp, author))
    return feed


def _json_feed(url: str, text: str) -> Feed:
    try:
        data: Any = json.loads(text)
    except ValueError:
        raise WebError(url, "not a feed (invalid JSON)") from None
    if not isinstance(data, dict) or "jsonfeed.org" not in str(data.get("version", "")):
        raise WebError(url, "not a feed (JSON without a JSON Feed version)")
    feed = Feed(title=_clean(data.get("title", "")))
    items = data.get("items")
    for n, item in enumerate(items if isinstance(items, list) else [], 1):
        link = item.get("url") or item.get("external_url") if isinstance(item, dict) else None
        if not isinstance(link, str) or not link:
            feed.warnings.append(f"item {n}: no url; skipped")
            continue
        published = normalise_date(item.get("date_published") or item.get("date_modified"))
        stamp = str(item.get("date_modified") or item.get("date_published") or "")
        title = _clean(item.get("title", ""))
        author = _json_author(item)
        feed.items.append(FeedItem(urljoin(url, link), title, published, stamp, author))
    return feed


def _json_author(item: dict[str, Any]) -> str:
    """A JSON Feed item's first author's name: `authors` (version 1.1) or `author` (1.0)."""
    authors = item.get("authors")
    first = authors[0] if isinstance(authors, list) and authors else item.get("author")
    return _clean(first.get("name", "")) if isinstance(first, dict) else ""


def _clean(value: object) -> str:
    """A title as one plain line: markup feedparser left is text, controls are dropped."""
    return one_line(normalise_text(str(value or "")), TITLE_MAX)


def _struct_date(value: Any) -> str:
    if not value:
        return ""
    try:
        return normalise_date(calendar.timegm(value))
    except (TypeError, ValueError, OverflowError):
        return ""
