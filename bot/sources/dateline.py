"""Wire-copy furniture: headlines, bylines, datelines and captions, and the metadata they give.

A plain-text article (a `.txt`, or a `.md` without front matter) often looks like:

    Flash flood kills 12 in Riverton            <- headline (the title)
    By Ana Ruiz                                 <- byline (optional)
    Valley Courier, 14 March 2024               <- outlet and date line (optional; also
                                                   "14 March 2024 - Valley Courier", or the
                                                   date alone)
    RIVERTON, March 13 (Northwire) — At least   <- dateline, opening the first paragraph
    Photo: Rescue crews search ...              <- caption

`read_header` takes the outlet and date from the top of such a file only: from the first lines up
to the first paragraph, never from the body, so a date in a body sentence is not mistaken for the
publication date. The outlet is the dateline's parenthesis ("(Northwire)") or the name before the
comma of an outlet and date line; the date is parsed by dateparser (absolute dates only, day and
month required).

A date without a year ("March 13") takes its year as a reader would. First from a full date
elsewhere in the article that agrees (dateparser finds them; the day and month in the year nearest
that date, within AGREE_DAYS). Else from the file's modification time: the latest such day that is
not after it (a story is filed before it is saved). A file saved more than MTIME_TRUST_DAYS after
that day may be a copy or a checkout, whose time says nothing of the story's year, so its date is
marked uncertain (bot.core.dates.uncertain) and never ordered as a known date. Without either the
date stays empty. `read_header` says when the year came from the modification time in
`year_from_mtime`, so the loader can warn that the year was not written in the file.

The same recognisers tell the extractive answerer which lines are furniture (never quoted) and
which dateline prefix to cut from a first sentence, so both read a file the same way.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from bot.core.dates import uncertain
from bot.core.text import one_line

__all__ = [
    "Header",
    "dateline_prefix_end",
    "is_furniture_line",
    "is_headline",
    "read_header",
]

# Lines read for metadata: headline, byline, outlet and date line, dateline paragraph, with room
# for one stray line (a subtitle) before the body starts.
HEADER_LINES = 5
# Only the head of a long line is matched: a dateline or an outlet line is short, and bounding the
# input keeps every pattern linear on hostile text.
LINE_HEAD_CHARS = 200
# An outlet name longer than this is a sentence, not a name.
OUTLET_MAX_CHARS = 60

_UPPER_PLACE = r"[A-Z][A-Z'’.\-]+(?: [A-Z][A-Z'’.\-]+){0,3}"
_DASH = r"(?:—|–|--?)"
# "RIVERTON, March 13 (Northwire) — ", "RIVERTON (Meridian Radio) — ", "EASTFIELD — ".
_DATELINE = re.compile(
    rf"(?P<place>{_UPPER_PLACE})"
    r"(?:, ?(?P<date>[A-Za-z0-9][A-Za-z0-9 ,.]{1,30}?))?"
    rf"(?: ?\((?P<outlet>[^()\n]{{2,{OUTLET_MAX_CHARS}}})\))?"
    rf"(?P<dash>[ \t]*{_DASH}[ \t]*|[ \t]*$)"
)
# A full date of the article agrees with a dateline's day and month when that day, in the year
# nearest the date, is within a season of it: a story's own dates sit around its dateline.
AGREE_DAYS = 92
# A file saved within a season of its dateline day was saved while the story was news: its year
# holds.
MTIME_TRUST_DAYS = 92
# The head of the article searched for a full date: its lead paragraphs, where a reader looks.
ARTICLE_CHARS = 4000

_CAPITALISED = r"[A-Z0-9][\w&'’.\-]*"
_OUTLET_WORD = rf"(?:{_CAPITALISED}|of|the|and|&|de|du|la|le|am|im)"
# "Market Watch Daily, 21 March 2024" as a whole line.
_OUTLET_DATE = re.compile(
    rf"(?P<outlet>{_CAPITALISED}(?: {_OUTLET_WORD}){{0,6}}),[ \t]*(?P<date>[^\n]{{3,40}}?)[ \t]*\Z"
)
# "October 2, 2025 - Metro Sport" as a whole line: the date, a dash, the outlet.
_DATE_OUTLET = re.compile(
    rf"(?P<date>[^\n]{{3,40}}?)[ \t]+{_DASH}[ \t]+"
    rf"(?P<outlet>{_CAPITALISED}(?: {_OUTLET_WORD}){{0,6}})[ \t]*\Z"
)
_CONNECTORS = r"(?:and|&|de|van|von|der|den|da|del|di|dos|la|le|bin|al)"
_NAME = r"[A-Z][\w'’.\-]*"
# "By Ana Ruiz", "By Ana Ruiz and Tom Lee", "By ANA RUIZ, Northwire": a whole line.
_BYLINE = re.compile(rf"(?i:by)[ \t]+{_NAME}(?:,? (?:{_NAME}|{_CONNECTORS})){{0,8}}[ \t]*\Z")
_CAPTION_WORDS = "photo|photograph|picture|pictured|image|caption|video|graphic"
# "Photo: ...", "Pictures: ...", "(Photo by ...)" at the start of a line.
_CAPTION = re.compile(rf"(?i:(?:{_CAPTION_WORDS})s?[ \t]*:|\((?:photo|picture|image)\b)")
_YEAR = re.compile(r"\b\d{4}\b")
# Markdown marks around a line ("# Headline", "*Photo: ...*", "> By Ana Ruiz") are not its words.
_MARKUP = re.compile(r"\A[#>*_ \t]+|[*_ \t]+\Z")


@dataclass(frozen=True)
class Header:
    """What the top of a plain-text article says about it; "" when it does not say."""

    outlet: str = ""
    published: str = ""  # ISO date
    year_from_mtime: bool = False  # the date had no year: it came from the file's mtime


def _fold(text: str) -> str:
    return _MARKUP.sub("", one_line(text)).casefold()


def is_headline(text: str, title: str) -> bool:
    """`text` is the article's headline (`title`), whitespace and case aside."""
    folded = _fold(title)
    return bool(folded) and _fold(text) == folded


def _is_bare_dateline(line: str) -> bool:
    """A line that is only a dateline ("RIVERTON, March 13 (Northwire)"), with nothing after."""
    m = _DATELINE.match(line)
    return bool(m and m.end() == len(line) and (m.group("date") or m.group("outlet")))


def is_furniture_line(line: str) -> bool:
    """A byline, a caption, a bare dateline or an outlet and date line: metadata, never news."""
    line = _MARKUP.sub("", line.strip()[:LINE_HEAD_CHARS])
    if not line:
        return False
    return bool(
        _BYLINE.match(line)
        or _CAPTION.match(line)
        or _is_bare_dateline(line)
        or _outlet_date(line) is not None
        or _is_date_line(line)
    )


def dateline_prefix_end(text: str) -> int:
    """Length of the dateline ("RIVERTON, March 13 (Northwire) — ") opening `text`, else 0.

    Only a dateline followed by a dash and more text counts, so a sentence that merely opens with
    a capitalised word is never cut.
    """
    m = _DATELINE.match(text[:LINE_HEAD_CHARS])
    if not m or not m.group("dash").strip() or m.end() >= len(text):
        return 0
    if m.group("date") and _parse_date(m.group("date"), None) is None:
        return 0
    return m.end()


def _parse_date(text: str, mtime: float | None, article: str = "") -> tuple[str, bool] | None:
    """(ISO date, year came from mtime) for an absolute date with day and month; None otherwise.
    A date without a year takes it from `article` or `mtime` (see the module docstring).

    An "" ISO date means a valid day and month whose year is unknown (nothing to take it from).
    """
    text = text.strip().rstrip(",.")
    if not any(c.isdigit() for c in text) or len(text) > 40:
        return None
    import dateparser

    has_year = bool(_YEAR.search(text))
    try:
        base = dt.datetime.fromtimestamp(mtime) if mtime is not None else dt.datetime.now()
    except (OverflowError, OSError, ValueError):
        base, mtime = dt.datetime.now(), None
    settings = {
        "REQUIRE_PARTS": ["day", "month"],
        "PREFER_DATES_FROM": "past",
        "RELATIVE_BASE": base,
        "PARSERS": ["absolute-time"],
    }
    try:
        parsed = dateparser.parse(text, languages=["en"], settings=settings)
    except (ValueError, TypeError, OverflowError, RecursionError):
        return None
    if parsed is None:
        return None
    if has_year:
        return parsed.date().isoformat(), False
    return _with_year(parsed.date(), article, mtime)


def _with_year(day: dt.date, article: str, mtime: float | None) -> tuple[str, bool]:
    """(ISO date, year came from mtime) for `day`, whose year (from `mtime`, or the current
    one) was not written: an agreeing full date of `article` first, then `mtime`."""
    stated = _year_from_article(day, article)
    if stated is not None:
        return stated.isoformat(), False
    if mtime is None:
        return "", False
    saved = dt.datetime.fromtimestamp(mtime).date()
    iso = day.isoformat()
    return (uncertain(iso) if (saved - day).days > MTIME_TRUST_DAYS else iso), True


def _year_from_article(day: dt.date, article: str) -> dt.date | None:
    """`day` in the year of the article's full date it is nearest, within AGREE_DAYS."""
    head = article[:ARTICLE_CHARS]
    if not _YEAR.search(head):
        return None
    from dateparser.search import search_dates

    settings = {"REQUIRE_PARTS": ["day", "month", "year"], "PARSERS": ["absolute-time"]}
    try:
        found = search_dates(head, languages=["en"], settings=settings) or []
    except (ValueError, TypeError, OverflowError, RecursionError):
        return None
    best: tuple[int, dt.date] | None = None
    for _, when in found:
        for year in (when.year - 1, when.year, when.year + 1):
            try:
                candidate = day.replace(year=year)
            except ValueError:
                continue  # February 29 in a common year
            gap = abs((candidate - when.date()).days)
            if gap <= AGREE_DAYS and (best is None or gap < best[0]):
                best = (gap, candidate)
    return best[1] if best else None


def _is_date_line(line: str) -> bool:
    """A line that is only a date ("August 5, 2025")."""
    return _parse_date(line, None) is not None


def _outlet_date(line: str) -> tuple[str, str] | None:
    """(outlet, date text) of an "Outlet Name, 21 March 2024" or "21 March 2024 - Outlet Name"
    line, when the date parses. A line that is only a date ("Tuesday, 5 August 2025") names no
    outlet."""
    if _is_date_line(line):
        return None
    for pattern in (_OUTLET_DATE, _DATE_OUTLET):
        m = pattern.match(line)
        fits = m is not None and len(m.group("outlet")) <= OUTLET_MAX_CHARS
        if m is not None and fits and _parse_date(m.group("date"), None) is not None:
            return m.group("outlet").strip(), m.group("date")
    return None


def _from_dateline(line: str, mtime: float | None, article: str) -> Header | None:
    m = _DATELINE.match(line)
    if not m or not (m.group("date") or m.group("outlet")):
        return None
    date = _parse_date(m.group("date"), mtime, article) if m.group("date") else None
    if m.group("date") and date is None:
        return None
    outlet = (m.group("outlet") or "").strip()
    published, from_mtime = date if date else ("", False)
    return Header(outlet=outlet, published=published, year_from_mtime=from_mtime)


def read_header(text: str, *, mtime: float | None = None) -> Header:
    """The outlet and date the top of a plain-text article gives (see the module docstring)."""
    lines = [line.strip()[:LINE_HEAD_CHARS] for line in text.split("\n", 40)[:40]]
    lines = [line for line in lines if line][:HEADER_LINES]
    for number, line in enumerate(lines):
        if _BYLINE.match(line):
            continue
        if number > 0 and _is_date_line(line):
            published, from_mtime = _parse_date(line, mtime) or ("", False)
            return Header(published=published, year_from_mtime=from_mtime)
        found = _outlet_date(line)
        if found is not None:
            published, from_mtime = _parse_date(found[1], mtime, text) or ("", False)
            return Header(outlet=found[0], published=published, year_from_mtime=from_mtime)
        header = _from_dateline(line, mtime, text)
        if header is not None:
            return header
        if number > 0:
            break  # the first paragraph of the body: metadata is never read past it
    return Header()
