"""What a sentence states that a reader checks first: its numbers, dates and names.

A citation must agree on these (the checker), and two outlets that state different ones for the
same thing disagree (bot.answer.disagreement). Names are capitalised words that do not open a
sentence, quotation or clause (there any word is capitalised), plus words that look like names
wherever they stand ("Quorvel1", "McAdam"); the words of the stopword list are never names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from bot.core.words import content_words, stopwords

MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
}  # fmt: skip
# Days of the week name when an outlet reported, which outlets tell differently without
# disagreeing; they are names for the citation check only.
WEEKDAYS = frozenset({"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"})
# Words after a number that change its size: "2.4 million" is not 2.4.
SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "bn": 1e9, "m": 1e6}
# Years written alone are dates, not counts.
YEAR_MIN, YEAR_MAX = 1900, 2100

_MONTH = "|".join(MONTHS)
_NUMBER = r"\d+(?:[.,]\d+)*"
_VALUE_RE = re.compile(
    rf"\b(?P<md>(?:{_MONTH})\s+\d{{1,2}})(?!\d)(?:,?\s+\d{{4}})?"
    rf"|\b(?P<dm>\d{{1,2}}\s+(?:{_MONTH}))\b(?:\s+\d{{4}})?"
    rf"|(?P<num>{_NUMBER})(?:\s*(?P<scale>{'|'.join(SCALES)})\b|\s*(?P<pct>%|per ?cent\b))?",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"[^\W_][\w'’-]*")
# Passages whose word sets are kept: an answer looks names up in the same passages many times.
WORD_SETS_KEPT = 2048
# A word here opens a sentence, a quotation, a bracket or a clause: its capital says nothing.
_OPENER_RE = re.compile(r"(?:^|[.!?:;\"“”(\[—–]|\s-)\s*$")
_LOOKS_LIKE_NAME_RE = re.compile(r"^(?:[^\W\d_]+\d[\w]*|[A-Z][a-z]+[A-Z]\w*)$")


@dataclass(frozen=True)
class Value:
    """A number, date or name as a sentence states it."""

    kind: str  # "number" | "date" | "name"
    text: str  # as written: "2.4 million", "April 2", "Dario Mensah"
    key: str  # what two statements compare: "2400000", "4-2", "dario mensah"
    start: int
    end: int
    scaled: bool = False  # a number with a scale word or a percent sign


def _norm_word(word: str) -> str:
    word = word.lower().replace("’", "'")
    return word[:-2] if word.endswith("'s") else word


def word_set(text: str) -> set[str]:
    """Every word of `text`, lowercased, without a possessive 's: where a name is looked up."""
    return set(_word_set(text))


@lru_cache(maxsize=WORD_SETS_KEPT)
def _word_set(text: str) -> frozenset[str]:
    return frozenset(_norm_word(w) for w in _WORD_RE.findall(text))


def _number_key(digits: str, scale: str | None) -> str | None:
    text = digits.replace(",", "")
    try:
        amount = float(text) * SCALES.get((scale or "").lower(), 1.0)
    except ValueError:
        return None
    return f"{amount:g}"


def _numbers_and_dates(text: str) -> list[Value]:
    found: list[Value] = []
    for match in _VALUE_RE.finditer(text):
        raw = match.group(0).strip()
        if match.group("md") or match.group("dm"):
            words = re.findall(r"[A-Za-z]+|\d+", match.group("md") or match.group("dm"))
            month = next(MONTHS[w.lower()] for w in words if w.lower() in MONTHS)
            day = next(int(w) for w in words if w.isdigit())
            found.append(Value("date", raw, f"{month}-{day}", match.start(), match.end()))
            continue
        scaled = bool(match.group("scale") or match.group("pct"))
        key = _number_key(match.group("num"), match.group("scale"))
        if key is None or _inside_word(text, match.start()):
            continue
        kind = "number"
        if not scaled and "." not in raw and "," not in raw and YEAR_MIN <= int(raw) <= YEAR_MAX:
            kind = "date"
        found.append(Value(kind, raw, key, match.start(), match.end(), scaled))
    return found


def _number_words(text: str) -> list[Value]:
    """Counts spelled out ("Nine people died"), as the word rules read them."""
    found: list[Value] = []
    for match in _WORD_RE.finditer(text):
        word = match.group(0)
        if word.isalpha():
            read = content_words(word)
            if len(read) == 1 and read[0].isdigit():
                found.append(Value("number", word, read[0], match.start(), match.end()))
    return found


def _inside_word(text: str, start: int) -> bool:
    """A digit glued to letters ("Quorvel1", "G7") belongs to a name, not a count."""
    return start > 0 and (text[start - 1].isalpha() or text[start - 1] == "_")


def is_name_word(word: str) -> bool:
    """`word` may be (part of) a name wherever it stands: capitalised, two letters or more, not
    a stopword. Whether its capital means a name depends on where it stands (`name_matches`)."""
    return len(word) > 1 and word[0].isupper() and _norm_word(word) not in stopwords()


def at_opener(text: str, start: int) -> bool:
    """The word at `start` opens a sentence, quotation, bracket or clause: any word is
    capitalised there."""
    return _OPENER_RE.search(text[:start]) is not None


def _is_name_word(text: str, match: re.Match[str]) -> bool:
    word = match.group(0)
    if not is_name_word(word):
        return False
    if _LOOKS_LIKE_NAME_RE.match(word):
        return True
    return not at_opener(text, match.start())


def name_matches(text: str, *, openers: bool = False) -> list[re.Match[str]]:
    """The name words of `text` (the one rule for what a name word is; see the module
    docstring). With `openers`, a capitalised word opening a sentence or clause counts too: a
    short question's first word may be the name it asks about."""
    return [
        m
        for m in _WORD_RE.finditer(text)
        if (is_name_word(m.group(0)) if openers else _is_name_word(text, m))
    ]


def _names(text: str) -> list[Value]:
    """Runs of name words ("Port Calder United"), month names left to the dates."""
    found: list[Value] = []
    run: list[re.Match[str]] = []

    def close() -> None:
        if run:
            start, end = run[0].start(), run[-1].end()
            phrase = text[start:end]
            key = " ".join(_norm_word(m.group(0)) for m in run)
            found.append(Value("name", phrase, key, start, end))
            run.clear()

    for match in _WORD_RE.finditer(text):
        gap = text[run[-1].end() : match.start()] if run else " "
        is_name = _is_name_word(text, match) and match.group(0).lower() not in MONTHS
        if is_name and gap.strip() == "":
            run.append(match)
            continue
        close()
        if is_name:
            run.append(match)
    close()
    return found


def stated_values(text: str) -> list[Value]:
    """The numbers, dates and names `text` states, in order."""
    found = _numbers_and_dates(text) + _number_words(text) + _names(text)
    return sorted(found, key=lambda v: v.start)


def stated_names(text: str) -> set[str]:
    """The name words of `text`, lowercased (see the module docstring): a passage cited for the
    text must contain each of them."""
    return {
        _norm_word(m.group(0))
        for m in _WORD_RE.finditer(text)
        if _is_name_word(text, m) and not _norm_word(m.group(0)).isdigit()
    }
