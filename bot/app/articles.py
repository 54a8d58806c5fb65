"""One indexed article as a reader opens it: its text and metadata, with every chunk at its offsets.

The index keeps an article as its chunks, each `text[start:end]` of the article's normalised text.
Laid back at those offsets they give that text again, except the whitespace between two chunks
that do not overlap, which is restored as one space (or line breaks, for a wider gap, where a
paragraph ended). So `text[p.start:p.end]` is exactly the text of every passage of the article.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.core.errors import BotError
from bot.core.types import Passage
from bot.index.reader import IndexReader

# A gap this wide between two chunks held more than the space between two sentences: shown as
# line breaks, so paragraphs stay apart.
PARAGRAPH_GAP = 2


def _gap(width: int) -> str:
    return "\n" * width if width >= PARAGRAPH_GAP else " " * width


def article_view(store: IndexReader, article_id: str) -> dict[str, Any]:
    """The article `article_id` of `store`: its metadata, its text and its chunks' offsets. A
    BotError when no article has that id."""
    entries = store.article_entries([article_id])
    entry = entries.get(article_id)
    chunks = sorted(store.chunks_where(article_id=article_id), key=lambda c: c.start)
    if entry is None or not chunks:
        raise BotError(f"No indexed article has the id {article_id!r}", hint="see bot sources")
    length = max(entry.chars, max(c.end for c in chunks))
    pieces: list[str] = []
    at = 0
    for chunk in chunks:
        if chunk.start > at:
            pieces.append(_gap(chunk.start - at))
            at = chunk.start
        if chunk.end > at:
            pieces.append(chunk.text[at - chunk.start :])
            at = chunk.end
    pieces.append(_gap(length - at))
    first = chunks[0]
    return {
        "article_id": entry.article_id,
        "title": entry.title,
        "source": entry.source,
        "url": entry.url,
        "published": entry.published or first.published,
        "paths": sorted(entry.paths),
        "text": "".join(pieces),
        "chunks": [{"chunk_index": c.chunk_index, "start": c.start, "end": c.end} for c in chunks],
    }


def with_authors(store: IndexReader, passages: list[Passage]) -> list[Passage]:
    """`passages`, each with its article's stored author: chunks do not carry the byline, the
    article record does, so `ask` and `summarise` show what `bot sources` shows."""
    ids = list(dict.fromkeys(p.article_id for p in passages))
    entries = store.article_entries(ids) if ids else {}
    return [
        replace(p, author=entries[p.article_id].author) if p.article_id in entries else p
        for p in passages
    ]
