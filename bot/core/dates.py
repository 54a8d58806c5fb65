"""Dates: any date a file, a feed or a user gives, as ISO 8601, and the epoch seconds of filters."""

from __future__ import annotations

import datetime as dt
import math
import re

from bot.core.errors import BotError

# ISO 8601-2 marks an uncertain date with a trailing "?": a year inferred, not written.
UNCERTAIN_MARK = "?"
_EPOCH_STR = re.compile(r"[+-]?\d{9,14}(?:\.\d+)?")
_YEAR_MIN, _YEAR_MAX = 1800, 2200


def _from_datetime(value: dt.datetime, has_time: bool) -> str:
    if not _YEAR_MIN <= value.year <= _YEAR_MAX:
        return ""
    if not has_time:
        return value.date().isoformat()
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat(timespec="seconds")


def _from_epoch(seconds: float) -> str:
    if math.isnan(seconds) or math.isinf(seconds):
        return ""
    if abs(seconds) > 1e11:
        seconds /= 1000.0  # milliseconds
    try:
        value = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return ""
    return _from_datetime(value, True)


def normalise_date(value: object) -> str:
    """ISO 8601 for a date ("2023-11-24") or a date with time ("2023-11-24T17:01:22+00:00").

    Accepts datetime/date objects, ISO strings, free-form and RFC 2822 strings, and unix epochs
    (seconds; values above 1e11 are taken as milliseconds). Naive times are taken as UTC. Returns ""
    for anything impossible, incomplete (no year/month/day), outside 1800-2200 or unparseable.
    """
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, dt.datetime):
        return _from_datetime(value, True)
    if isinstance(value, dt.date):
        return value.isoformat() if _YEAR_MIN <= value.year <= _YEAR_MAX else ""
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return ""
    text = value.strip()
    if not text or len(text) > 200:
        return ""
    if _EPOCH_STR.fullmatch(text):
        return _from_epoch(float(text))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return normalise_date(dt.date.fromisoformat(text))
        except ValueError:
            return ""
    try:
        parsed = dt.datetime.fromisoformat(
            text.replace("Z", "+00:00") if text.endswith("Z") else text
        )
        return _from_datetime(parsed, True)
    except ValueError:
        pass
    return _parse_free_date(text)


def _parse_free_date(text: str) -> str:
    import warnings

    from dateutil import parser as date_parser

    # Parse twice with different defaults: a field that differs was missing from the string.
    first = dt.datetime(2000, 1, 1, 0, 0, 0)
    second = dt.datetime(2001, 2, 2, 1, 1, 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = date_parser.parse(text, default=first)
            b = date_parser.parse(text, default=second)
    except (ValueError, OverflowError, TypeError, AttributeError, IndexError):
        return ""
    if (a.year, a.month, a.day) != (b.year, b.month, b.day):
        return ""
    has_time = (a.hour, a.minute, a.second) == (b.hour, b.minute, b.second)
    return _from_datetime(a, has_time)


def parse_date_bound(value: str | None, *, end: bool) -> int | None:
    """`--since` / `--until` as epoch seconds; a bare date covers its whole day."""
    if not value:
        return None
    from datetime import UTC, datetime, timedelta

    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BotError(
            f"Cannot read the date {value!r}", hint="use ISO 8601, e.g. 2023-11-24"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if end and len(text) <= 10:
        parsed = parsed + timedelta(days=1) - timedelta(seconds=1)
    return int(parsed.timestamp())


def uncertain(iso: str) -> str:
    """`iso` marked as uncertain (see UNCERTAIN_MARK); "" stays ""."""
    return f"{iso}{UNCERTAIN_MARK}" if iso and not is_uncertain(iso) else iso


def is_uncertain(published: str) -> bool:
    """Whether a date is marked as inferred rather than written (see UNCERTAIN_MARK)."""
    return published.endswith(UNCERTAIN_MARK)


def shown_date(published: str) -> str:
    """The day of a date as a reader sees it: "2024-03-15", "2026-03-13?" when inferred."""
    return published[:10] + (UNCERTAIN_MARK if is_uncertain(published) else "")


def newest_first(published: str) -> tuple[int, tuple[int, ...]]:
    """A sort key putting later ISO dates first, then inferred ones (nothing says they are
    newer), then unknown dates."""
    rank = 2 if not published else 1 if is_uncertain(published) else 0
    return rank, tuple(-ord(ch) for ch in published)


def published_ts(published: str) -> int:
    """Seconds since the epoch for date filters (an uncertain date by its best guess); -1 when
    the date is unknown."""
    published = published.removesuffix(UNCERTAIN_MARK)
    if not published:
        return -1
    from datetime import UTC, datetime

    try:
        value = datetime.fromisoformat(published.replace("Z", "+00:00"))
    except ValueError:
        return -1
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())
