"""What a search or a summary is limited to: an outlet and a date range, and the indexed outlet
a `--source NAME` means.

The meaning of the filters lives here once, in two forms that must agree: the `where` clause
Chroma applies (`where_clause`) and the same test over arrays of chunk fields (`passing`), which
the keyword index and the snapshot apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.core.errors import BotError

# How many outlet names an error message lists before "and N more".
NAMES_SHOWN = 8


@dataclass
class Filters:
    """Only chunks from `source` (an indexed outlet name), published between the two bounds
    (seconds since the epoch, both inclusive; an undated chunk never passes an `until`)."""

    source: str | None = None
    since_ts: int | None = None
    until_ts: int | None = None

    @property
    def active(self) -> bool:
        return bool(self.source) or self.since_ts is not None or self.until_ts is not None


def where_clause(filters: Filters | None, article_id: str | None = None) -> dict[str, Any] | None:
    """The Chroma `where` that keeps the chunks passing `filters` (of one article, if given)."""
    clauses: list[dict[str, Any]] = []
    if article_id:
        clauses.append({"article_id": article_id})
    if filters is not None:
        if filters.source:
            clauses.append({"source": filters.source})
        if filters.since_ts is not None:
            clauses.append({"published_ts": {"$gte": filters.since_ts}})
        if filters.until_ts is not None:
            clauses.append({"published_ts": {"$lte": filters.until_ts}})
            clauses.append({"published_ts": {"$gte": 0}})  # undated chunks are stored as -1
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def passing(
    filters: Filters | None,
    sources: np.ndarray,
    published_ts: np.ndarray,
    article_ids: np.ndarray | None = None,
    article_id: str | None = None,
) -> np.ndarray:
    """Which chunks pass, as `where_clause` decides it, given each chunk's outlet, date (and
    article id, for `article_id`) row for row: a boolean array."""
    keep = np.ones(len(sources), dtype=bool)
    if article_id:
        if article_ids is None:
            raise ValueError("filtering by article needs the chunks' article ids")
        keep &= article_ids == article_id
    if filters is not None:
        if filters.source:
            keep &= sources == filters.source
        if filters.since_ts is not None:
            keep &= published_ts >= filters.since_ts
        if filters.until_ts is not None:
            keep &= (published_ts <= filters.until_ts) & (published_ts >= 0)
    return keep


def match_outlet(name: str, known: Iterable[str]) -> str | None:
    """The one outlet of `known` that `name` means: the exact name, else the one equal to it
    ignoring case, else the one containing it ("bbc" -> "BBC News"). None when no outlet matches;
    a BotError naming them when several do."""
    wanted = " ".join(name.split())
    outlets = sorted({s for s in known if s})
    if wanted in outlets:
        return wanted
    for matches in (
        [s for s in outlets if s.casefold() == wanted.casefold()],
        [s for s in outlets if wanted.casefold() in s.casefold()],
    ):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise BotError(
                f"--source {wanted!r} matches several outlets: {list_names(matches)}",
                hint="give the full name",
            )
    return None


def list_names(names: list[str], limit: int = NAMES_SHOWN) -> str:
    """`names` for a message: the first `limit`, then how many more."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
