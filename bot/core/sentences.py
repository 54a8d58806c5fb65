"""Sentence splitting with exact character offsets: one rule for chunking, answers and checks.

Offsets index the text as given. Whitespace means `str.isspace()` (the same set as the regex
`\\s`); line breaks are those `str.splitlines()` uses, and every line is its own group of
sentences (news text has one paragraph per line).
"""

from __future__ import annotations

import re

__all__ = ["split_sentences"]

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
