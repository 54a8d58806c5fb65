"""A fetched page as an article: its main text and metadata (trafilatura), its canonical URL as
its path, and an id that stays with the URL when the text changes; and whether a fetched body is
a feed rather than a page."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from urllib.parse import urlsplit

from bot.core.errors import IngestFileError, WebError
from bot.sources.article import ArticleRecord, make_record, normalise_text
from bot.sources.web.fetch import FETCHED_SCHEMES, FetchResult
from bot.sources.web.urls import canonical_url, same_site

FEED_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json"}
)
# A feed names its format within its first few hundred characters (after an XML declaration,
# a stylesheet line and comments).
FEED_SNIFF_CHARS = 2000


def is_feed(result: FetchResult) -> bool:
    """Whether the body is RSS, Atom or a JSON Feed (by its type, else by its first element)."""
    if result.content_type in FEED_TYPES:
        return True
    head = result.text[:FEED_SNIFF_CHARS].lower()
    if result.content_type in ("application/json", "") and "jsonfeed.org/version" in head:
        return True
    if "<html" in head:
        return False
    return any(tag in head for tag in ("<rss", "<feed", "<rdf:rdf"))


def web_article_id(canonical: str) -> str:
    """The id of the article at a canonical URL: the same for every version of its text."""
    return "a" + hashlib.sha256(("url " + canonical).encode("utf-8", "replace")).hexdigest()[:16]


def page_article(
    result: FetchResult,
    *,
    fallback_title: str = "",
    fallback_date: str = "",
    fallback_author: str = "",
) -> ArticleRecord:
    """The article on a fetched page; the feed item's title, date and author fill what the page
    lacks."""
    from bot.sources.formats import load_html

    warnings = result.warnings
    if result.content_type == "text/plain":
        text = normalise_text(result.text)
        if not text:
            raise WebError(result.url, "no article text (empty page)")
        record = make_record(text, title="", source="", url="", published="", path="")
    else:
        try:
            record = load_html(result.text, result.final_url, warnings)
        except IngestFileError as exc:
            raise WebError(result.url, str(exc)) from None
    canonical = _canonical(result.final_url, record.url)
    host = urlsplit(canonical).hostname or ""
    article = make_record(
        record.text,
        title=record.title or fallback_title,
        source=record.source or host.removeprefix("www."),
        url=canonical,
        published=record.published or fallback_date,
        path=canonical,
        author=record.author or fallback_author,
    )
    return replace(article, article_id=web_article_id(canonical))


def _canonical(final_url: str, declared: str) -> str:
    """The page's canonical URL: the one it declares when that is an http(s) URL of the same
    site (a page may not claim another site's article), else the URL it was fetched from."""
    if declared and urlsplit(declared).scheme in FETCHED_SCHEMES and same_site(final_url, declared):
        return canonical_url(declared)
    return canonical_url(final_url)
