"""Sentence splitting and sentence-aware chunking with exact character offsets.

All offsets index the text as given (the normalised article text). Whitespace means
`str.isspace()` (the same set as the regex `\\s`); line breaks are those `str.splitlines()` uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Chunk", "chunk_text", "split_sentences"]

# Line-break characters (as str.splitlines); every line is its own sentence group.
_LB = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
# One stripped line: first to last non-whitespace character of a line.
_LINE = re.compile(rf"\S(?:[^{_LB}]*\S)?")
_OPENERS = "\"'“‘([«"
_SEP = rf"[^\s{_OPENERS}]"  # a character that cannot come right before a token's first letter
# Words whose trailing '.' never ends a sentence (case-insensitive).
_ABBREVIATION_WORDS = (
    "mr mrs ms dr prof st gen sen rep gov vs inc corp ltd co jr sr lt col capt sgt cmdr adm maj "
    "mt ft ave blvd rev hon pres supt dept est approx"
)
_ABBREVIATIONS = _ABBREVIATION_WORDS.split()
# Words that only bind when a number follows ("Jan. 5", "No. 10", "p. 4").
_BEFORE_NUMBER = "jan feb mar apr jun jul aug sep sept oct nov dec no nos p pp art fig vol ch sec"
_ABBR_NUM = re.compile(rf"(?<!\S)[{_OPENERS}]*(?i:{'|'.join(_BEFORE_NUMBER.split())})\Z")


def _guards() -> str:
    """Negative look-behinds (each fixed width) that stop a '.' after an abbreviation matching."""
    by_len: dict[int, list[str]] = {}
    for word in _ABBREVIATIONS:
        by_len.setdefault(len(word), []).append(word)
    parts = [f"(?<!(?<!{_SEP})(?i:{'|'.join(words)})\\.)" for _, words in sorted(by_len.items())]
    parts.append(f"(?<!(?<!{_SEP})[A-Z]\\.)")  # a single initial: J. K. Rowling
    parts.append(r"(?<![A-Za-z]\.[A-Za-z]\.)")  # a dotted acronym: U.S. p.m. e.g. U.K.
    return "".join(parts)


# A run of sentence terminators (its last '.' not ending an abbreviation), closing quotes/brackets,
# then whitespace and (group 2) the first character of the next sentence.
_TERM = re.compile(rf"([.!?]+){_guards()}[\"'”’)\]»]*(?=\s+(\S))")

_LAST_WS = re.compile(r"(?s).*\s")  # match(): greedy, ends just after the last whitespace in range
_LAST_NONWS = re.compile(r"(?s).*\S")  # match(): ends just after the last non-whitespace in range
_NONWS = re.compile(r"\S")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans `(start, end)` of `text`: ordered, disjoint, stripped, covering all non-space.

    A sentence ends at `.`, `!` or `?` (plus closing quotes/brackets) followed by whitespace and a
    character that is not lower case, unless the `.` ends a known abbreviation, an initial or a
    dotted acronym. Every line break also ends a sentence (news text has one paragraph per line).
    """
    spans: list[tuple[int, int]] = []
    append = spans.append
    for line in _LINE.finditer(text):
        cur, end = line.span()
        for m in _TERM.finditer(text, cur, end):
            nxt = m.group(2)
            if nxt.islower():
                continue
            if nxt.isdigit() and m.group(1) == ".":
                dot = m.start(1)
                if _ABBR_NUM.search(text, dot - 6 if dot - 6 > cur else cur, dot):
                    continue
            append((cur, m.end()))
            cur = m.start(2)
        append((cur, end))
    return spans


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
        piece_end = _LAST_NONWS.match(text, pos, ws).end()  # text[pos] is not whitespace
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
