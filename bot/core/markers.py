"""What a citation marker is: `[1]`, `[1, 2]`, `[1-3]`, `[^1]`, `[Passage 2]`, `［2］`, `【2】`.

One pattern serves every layer: the checker reads markers out of answers, the prompt builder
neutralises them in article text, the renderer and the chat memory strip them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# "[1-500]" keeps only its two ends: a range this wide is a typo or an attack, not 500 citations.
MAX_RANGE = 20

# One cited number, optionally labelled: "2", "^2", "Passage 2", "#2", and "-1" (reported as
# dropped, never a passage).
_NUM = r"\^?\s*(?:passage|source|doc(?:ument)?|ref)?\s*#?\s*-?\d+"
MARKER_RE = re.compile(
    rf"[\[［【]\s*(?P<body>{_NUM}(?:\s*(?:,|;|-|–|—|\bto\b|\band\b)\s*{_NUM})*)\s*[\]］】]",
    re.IGNORECASE,
)
_NUMBER_OR_RANGE = re.compile(
    r"(-?\d+)\s*(?:(?:-|–|—|\bto\b)\s*(?:\^?\s*[a-z]*\s*#?\s*)(\d+))?", re.IGNORECASE
)
_TERMINAL = re.compile(r"([.!?…]+)$")
_BIGGEST = 10**18  # numbers longer than 18 digits are clamped, never parsed as huge ints


def _to_int(digits: str) -> int:
    negative = digits.startswith("-")
    digits = digits.lstrip("-")
    value = int(digits) if len(digits) <= 18 else _BIGGEST
    return -value if negative else value


def marker_numbers(body: str) -> list[int]:
    """The numbers a marker's body names, ranges expanded: "1, 3-5" -> [1, 3, 4, 5]."""
    numbers: list[int] = []
    for match in _NUMBER_OR_RANGE.finditer(body):
        first = _to_int(match.group(1))
        if match.group(2) is None:
            numbers.append(first)
            continue
        second = _to_int(match.group(2))
        low, high = min(first, second), max(first, second)
        numbers.extend(range(low, high + 1) if high - low <= MAX_RANGE else (first, second))
    return numbers


def strip_markers(text: str) -> str:
    """`text` without citation markers, its whitespace folded."""
    return " ".join(MARKER_RE.sub(" ", text).split())


def neutralise_markers(text: str) -> str:
    """Bracketed numbers as parentheses, `[2]` -> `(2)`: article text must not look like a citation
    to the model or the checker."""
    return MARKER_RE.sub(lambda m: f"({m.group('body')})", text)


def with_markers(text: str, numbers: Sequence[int]) -> str:
    """`text` with `[n]` markers before its final punctuation: "It rose [1][3]."."""
    if not numbers:
        return text
    marks = "".join(f"[{n}]" for n in numbers)
    match = _TERMINAL.search(text)
    if match and match.start() > 0:
        return f"{text[: match.start()]} {marks}{match.group(1)}"
    return f"{text} {marks}".strip()
