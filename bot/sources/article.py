"""An article as `bot` stores it: normalised text, its id and hash, and its metadata."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from bot.core.text import one_line, strip_controls

TITLE_MAX = 300
URL_MAX = 2000

_TRAILING_WS = re.compile(r"[^\S\n]+(?=\n|\Z)")
_MANY_BLANKS = re.compile(r"\n{4,}")


@dataclass(frozen=True)
class ArticleRecord:
    article_id: str  # "a" + sha256(text)[:16]  (same text under two paths -> same id)
    title: str
    source: str
    url: str
    published: str  # ISO 8601 or "" when unknown
    path: str  # absolute file path; for a JSON/JSONL record "path#N" (N = 1-based record/line)
    text: str  # normalised text
    content_hash: str  # sha256 hex of text
    author: str = ""  # the byline the page's metadata or the feed item names; "" when unknown


@dataclass
class LoadResult:
    articles: list[ArticleRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def normalise_text(raw: str) -> str:
    """The stored form of an article's text; all chunk offsets index this string."""
    text = strip_controls(raw)
    text = _TRAILING_WS.sub("", text)
    text = _MANY_BLANKS.sub("\n\n\n", text)
    return text.strip()


def make_article_id(text: str) -> str:
    return "a" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _first_line(text: str) -> str:
    for line in text.split("\n"):
        if line.strip():
            return one_line(line, TITLE_MAX)
    return ""


def make_record(
    text: str, *, title: str, source: str, url: str, published: str, path: str, author: str = ""
) -> ArticleRecord:
    return ArticleRecord(
        article_id=make_article_id(text),
        title=one_line(title, TITLE_MAX) or _first_line(text),
        source=one_line(source, TITLE_MAX),
        url=one_line(url, URL_MAX),
        published=published,
        path=path,
        text=text,
        content_hash=content_hash(text),
        author=one_line(author, TITLE_MAX),
    )
