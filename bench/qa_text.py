"""Text rules of the QA benchmark: how an answer is matched against its labels.

Written here rather than imported from `bot`, so that the benchmark does not judge the bot with
the bot's own rules (a number rule shared by the checker and the judge would hide its own bugs).
"""

from __future__ import annotations

import re

MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)  # fmt: skip
_MONTH_ABBREVIATIONS = {m[:3]: i for i, m in enumerate(MONTHS, start=1)} | {"sept": 9}
_MONTH_NUMBER = {m: i for i, m in enumerate(MONTHS, start=1)} | _MONTH_ABBREVIATIONS
_MONTH_RE = "|".join(sorted(_MONTH_NUMBER, key=len, reverse=True))
_WEEKDAY_RE = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"

MIN_PART_CHARS = 4  # a shorter part of a name ("FC", "Jr") says too little to count as the name
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")  # the commas of "1,250,000"
_MARKER = re.compile(r"\s*\[\d+\]")  # a citation marker and the space before it

# A number written in digits, not part of a word ("U21") or of a longer number ("3.12").
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w])")
_AMOUNT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?:\s*(million|billion|thousand|m|bn)\b)?")
_SCALE = {"thousand": 1e3, "million": 1e6, "m": 1e6, "billion": 1e9, "bn": 1e9}

# A day: "April 2", "2 April", "2024-04-02".
_MONTH_DAY = re.compile(rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})\b")
_DAY_MONTH = re.compile(rf"\b(\d{{1,2}})\s+({_MONTH_RE})\b")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_YEAR = r"\b(?:19|20)\d{2}\b"  # also the year of an ISO date
# A date expression: a day (as above), a year or a weekday.
DATE_EXPRESSION = re.compile(
    "|".join((_MONTH_DAY.pattern, _DAY_MONTH.pattern, _YEAR, rf"\b(?:{_WEEKDAY_RE})\b")),
    re.IGNORECASE,
)


def normalise(text: str) -> str:
    """Lower case, one space, plain quotes and dashes, no thousands separators ("1,200" = "1200"),
    no citation markers."""
    text = _MARKER.sub("", text or "")
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    text = text.replace("–", "-").replace("\u00a0", " ")
    return " ".join(_THOUSANDS.sub("", text).lower().split())


def contains(text: str, needle: str) -> bool:
    """`needle` in `text` as whole words ("12" is not in "120" nor in "3.12"), both normalised."""
    wanted = normalise(needle)
    if not wanted:
        return False
    pattern = rf"(?<![\w])(?<!\d[.,]){re.escape(wanted)}(?![\w])(?![.,]\d)"
    return re.search(pattern, normalise(text)) is not None


def contains_any(text: str, needles: list[str]) -> bool:
    return any(contains(text, needle) for needle in needles)


def numbers(text: str) -> set[str]:
    """The numbers written in digits in `text`, normalised ("1,200" -> "1200", "4.20" -> "4.2")."""
    found = set()
    for raw in _NUMBER.findall(normalise(text)):
        whole, _, fraction = raw.partition(".")
        fraction = fraction.rstrip("0")
        found.add(str(int(whole)) + (f".{fraction}" if fraction else ""))
    return found


def amounts(text: str) -> set[float]:
    """Numbers with their scale words applied: "2.4 million" and "2,400,000" give 2400000."""
    found = set()
    for value, scale in _AMOUNT.findall(normalise(text)):
        found.add(float(value) * _SCALE.get(scale, 1.0))
    return found


def month_days(text: str) -> set[tuple[int, int]]:
    """(month, day) of every date written as "April 2", "2 April" or "2024-04-02"."""
    lowered = normalise(text)
    found = {(_MONTH_NUMBER[m], int(d)) for m, d in _MONTH_DAY.findall(lowered)}
    found |= {(_MONTH_NUMBER[m], int(d)) for d, m in _DAY_MONTH.findall(lowered)}
    found |= {(int(m), int(d)) for _, m, d in _ISO_DATE.findall(lowered)}
    return {(m, d) for m, d in found if 1 <= d <= 31}


def value_matches(expected: str, got: str) -> bool:
    """True when `got` (a value a disagreement reports) states `expected`: as words, as a part of
    a name, as the same amount ("48 million" = "48,000,000 dorins") or as the same day ("April 2" =
    "2024-04-02")."""
    if contains(got, expected):
        return True
    if len(got.strip()) >= MIN_PART_CHARS and not numbers(got) and contains(expected, got):
        return True  # a part of a name: "Mensah" for "Dario Mensah"
    wanted_days = month_days(expected)
    if wanted_days:
        return wanted_days <= month_days(got)
    wanted_amounts = amounts(expected)
    return bool(wanted_amounts) and wanted_amounts <= amounts(got)


def has_date_expression(text: str) -> bool:
    return DATE_EXPRESSION.search(text or "") is not None


def strip_markers(text: str) -> str:
    return _MARKER.sub("", text or "")
