"""What a search or a summary is limited to: an outlet and a date range, and the indexed outlet
a `--source NAME` means."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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
