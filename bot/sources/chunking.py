"""Sentence-aware chunking with exact character offsets into the normalised article text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.sentences import split_sentences

__all__ = ["Chunk", "chunk_text"]

_LAST_WS = re.compile(r"(?s).*\s")  # match(): greedy, ends just after the last whitespace in range
_LAST_NONWS = re.compile(r"(?s).*\S")  # match(): ends just after the last non-whitespace in range
_NONWS = re.compile(r"\S")


@dataclass(frozen=True)
class Chunk:
    """A slice of an article: `text == article_text[start:end]`, never empty, never padded."""

    start: int
    end: int
    text: str


def _pieces(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    """Split the stripped span [start, end) into stripped pieces of at most `size` characters.

    Cuts at the last whitespace that keeps a piece within `size`; a run without whitespace longer
    than `size` is cut hard. Linear in end - start (amortised).
    """
    out: list[tuple[int, int]] = []
    pos = start
    while end - pos > size:
        limit = pos + size + 1  # a piece of exactly `size` chars may be followed by whitespace
        m = _LAST_WS.match(text, pos, limit)
        if m is None:  # no whitespace: hard cut
            out.append((pos, pos + size))
            pos += size
            continue
        ws = m.end() - 1
        last = _LAST_NONWS.match(text, pos, ws)
        assert last is not None  # text[pos] is not whitespace
        piece_end = last.end()
        out.append((pos, piece_end))
        nxt = _NONWS.search(text, ws, end)
        assert nxt is not None  # text[end - 1] is not whitespace
        pos = nxt.start()
    out.append((pos, end))
    return out


def chunk_text(text: str, size: int, overlap: int) -> list[Chunk]:
    """Greedily pack whole sentences into chunks of at most `size` characters.

    A sentence longer than `size` is split at whitespace (hard-split if it has none). Each chunk
    after the first starts at the first sentence (or split point) at or after
    `previous_end - overlap`, and always strictly after the previous chunk's start.
    """
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    if overlap < 0:
        raise ValueError(f"chunk overlap must not be negative, got {overlap}")
    units: list[tuple[int, int]] = []
    for s, e in split_sentences(text):
        if e - s <= size:
            units.append((s, e))
        else:
            units.extend(_pieces(text, s, e, size))
    chunks: list[Chunk] = []
    n = len(units)
    i = 0
    while i < n:
        start = units[i][0]
        j = i
        while j + 1 < n and units[j + 1][1] - start <= size:
            j += 1
        end = units[j][1]
        chunks.append(Chunk(start, end, text[start:end]))
        if j == n - 1:
            break
        k = i + 1
        threshold = end - overlap
        while k <= j and units[k][0] < threshold:
            k += 1
        i = k
    return chunks
