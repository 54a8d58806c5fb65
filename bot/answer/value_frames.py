"""What each number or date of a sentence is about, read from the words around it, so that the
value of one outlet's sentence can be lined up with the value of another's that gives the same
thing ("12 people were killed and 15 injured" against "the death toll rose to 14").

A value's frame is the content words (stemmed, bot.core.words) of its own clause
(bot.answer.checking.clauses_of), each weighted by closeness: 1 / distance in content words. Its
unit is the word written right after a number ("12 people", "15 injured", "2.4 million dorins"):
two numbers whose units differ, where neither unit is a word of the other's clause, count
different things. A frame also holds the quantity class (bot.core.words.QUANTITY_CLASSES) of its
words, so "the toll rose to 16" lines up with "12 people were killed" but not with "15 injured".
In "36 of 90 seats" the value is 36, counting seats; the 90 it is out of is no value of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from bot.answer.checking import clauses_of
from bot.core.text import clip
from bot.core.values import WEEKDAYS, Value, stated_values
from bot.core.words import QUANTITY_MARK, WORD_RE, content_words, quantity_class

# Value kinds whose frames are compared: names are left out (two clauses naming different people
# or places are far more often about different things than in conflict).
FRAMED_KINDS = ("number", "date")
# Content words further than this from a value say little about what it counts.
FRAME_WORDS = 8
# Weight (1 / distance in content words) of a word close enough to a number to say what it
# counts: "the death toll from the town's flood rose to 16" puts five words between.
QUANTITY_NEAR = 0.2
# What a disagreement is about is shown clipped to this many characters: a clause, not a story.
ABOUT_CHARS = 100
# "a 48 million dorin plan": the word right after a number (its unit aside) says what it is an
# amount of.
HEAD_WORDS = 1
# "36 of parliament's 90 seats", "12 of the 15 members": the words between a count and the total
# it is out of (a determiner or an owner, at most two words).
# Sentences whose framed values are kept: every answer compares the sentences of its passages,
# and a server's next answers often retrieve the same passages.
SENTENCES_KEPT = 8192
_OUT_OF_RE = re.compile(r"\s+of\s+(?:[^\W\d_]+(?:['’]s?)?\s+){0,2}\Z")


@dataclass(frozen=True)
class Framed:
    """A value of a sentence with what it is about."""

    value: Value
    clause: str
    frame: Mapping[str, float] = field(default_factory=dict)  # stem -> 1 / distance
    unit: str | None = None  # the stem of the word written right after a number
    lead: str = ""  # the clause up to the value: where its subject is named
    subject: str = ""  # the key of the last name before the value in its sentence, if any


def content_tokens(text: str, offset: int) -> list[tuple[int, int, str]]:
    """(start, end, stem) of each content word of `text`, digits left out, positions shifted by
    `offset`."""
    out = []
    for match in WORD_RE.finditer(text):
        stems = content_words(match.group(0))
        if stems and not stems[0][:1].isdigit():
            out.append((match.start() + offset, match.end() + offset, stems[0]))
    return out


def _unit(text: str, value: Value) -> str | None:
    """The stem of the word right after a number, if that word is a content word."""
    if value.kind != "number":
        return None
    match = WORD_RE.match(text, value.end + 1) if text[value.end : value.end + 1] == " " else None
    stems = content_words(match.group(0)) if match else []
    return stems[0] if stems and not stems[0][:1].isdigit() else None


def framed_values(text: str, kinds: Sequence[str] = FRAMED_KINDS) -> list[Framed]:
    """The values of `kinds` (numbers and dates) of the sentence `text` (weekdays aside: they say
    when an outlet reported), each with its clause, frame and unit."""
    return list(_framed_values(text, tuple(kinds)))


@lru_cache(maxsize=SENTENCES_KEPT)
def _framed_values(text: str, kinds: tuple[str, ...]) -> tuple[Framed, ...]:
    stated = stated_values(text)
    values = [v for v in stated if v.kind in kinds and v.key not in WEEKDAYS]
    if not values:
        return ()
    names = [v for v in stated if v.kind == "name" and v.key not in WEEKDAYS]
    totals = _totals(text, values)
    skipped = set(totals.values())
    out: list[Framed] = []
    cursor = 0
    for clause in clauses_of(text):
        start = text.find(clause, cursor)
        if start < 0:
            continue
        cursor = end = start + len(clause)
        tokens = [t for t in content_tokens(clause, start) if not _inside(t, values)]
        for value in (v for v in values if start <= v.start < end and v not in skipped):
            before = [t for t in tokens if t[1] <= value.start][::-1]
            after = [t for t in tokens if t[0] >= value.end]
            frame: dict[str, float] = {}
            for side in (before, after):
                for distance, (_, _, stem) in enumerate(side[:FRAME_WORDS], start=1):
                    _weigh(frame, stem, 1.0 / distance)
            lead = text[start : value.start]
            unit = _unit(text, totals.get(value, value))
            subject = next((n.key for n in reversed(names) if n.end <= value.start), "")
            out.append(Framed(value, clause, frame, unit, lead, subject))
    return tuple(out)


def same_counted_subject(a: Framed, b: Framed, focus: Mapping[str, float]) -> bool:
    """Whether two numbers count what the focus asks to count, for one subject: both units are
    the focus's word ("how many seats": "its 38 seats", "won 36 of the 90 seats") and the last
    name before each is the same ("Civic Front"), so "the Green Left won 9 seats" stays apart."""
    return (
        a.unit is not None
        and a.unit == b.unit
        and a.unit in focus
        and bool(a.subject)
        and a.subject == b.subject
    )


def heads(framed: Framed) -> list[str]:
    """The stem of the word written right after a value, its unit aside, when that is a content
    word: what it is an amount of ("budget" in "a 310 million dorin budget"; none in "12 people
    were killed")."""
    rest = framed.clause[len(framed.lead) + len(framed.value.text) :]
    words = [(content_words(w) or [""])[0] for w in WORD_RE.findall(rest)[: HEAD_WORDS + 1]]
    if framed.unit is not None and words[:1] == [framed.unit]:
        words = words[1:]
    return [w for w in words[:HEAD_WORDS] if w and not w[:1].isdigit()]


def _totals(text: str, values: Sequence[Value]) -> dict[Value, Value]:
    """In "N of M seats" N is the value stated and M the total it is out of (no value of its
    own): each N with its M, whose unit N takes."""
    out: dict[Value, Value] = {}
    for count, total in zip(values, values[1:], strict=False):
        between = text[count.end : total.start]
        if count.kind == total.kind == "number" and _OUT_OF_RE.match(between):
            out[count] = total
    return out


def _inside(token: tuple[int, int, str], values: Sequence[Value]) -> bool:
    return any(v.start <= token[0] < v.end for v in values)


def overlap(frame: Mapping[str, float], words: Mapping[str, float]) -> float:
    """How much of `frame` is about `words`: the weights of the words both hold."""
    return sum(min(weight, words[w]) for w, weight in frame.items() if w in words)


def _weigh(frame: dict[str, float], stem: str, weight: float) -> None:
    """Adds a word to a frame, and its quantity class (bot.core.words) with it, so "toll" and
    "killed" line up as one quantity."""
    for key in (stem, quantity_class(stem)):
        if key is not None:
            frame[key] = max(frame.get(key, 0.0), weight)


def near_words(framed: Framed, within: int) -> set[str]:
    """The words of `framed`'s frame at most `within` content words from its value."""
    return {w for w, weight in framed.frame.items() if weight * within >= 1}


def as_words(words: Iterable[str]) -> dict[str, float]:
    """Words (a question's, say) as a frame where each counts fully."""
    frame: dict[str, float] = {}
    for word in words:
        _weigh(frame, word, 1.0)
    return frame


def joined(*frames: Mapping[str, float]) -> dict[str, float]:
    """The frames' words, each with its greatest weight."""
    out: dict[str, float] = {}
    for frame in frames:
        for word, weight in frame.items():
            out[word] = max(out.get(word, 0.0), weight)
    return out


def comparable(a: Value, b: Value) -> bool:
    """Whether two values can give the same thing: one kind, both with a scale word or percent
    sign or neither, and dates of one shape (a day of a month against a day of a month, a year
    against a year)."""
    return (
        a.kind == b.kind
        and a.scaled == b.scaled
        and (a.kind != "date" or ("-" in a.key) == ("-" in b.key))
    )


def same_unit(a: Framed, b: Framed, a_words: Iterable[str], b_words: Iterable[str]) -> bool:
    """False when two numbers count different things by their units: a unit that is not a word
    of the other side (`a_words`, `b_words`: each one's sentence and the question), or two units
    that differ where neither is a word of the other's clause."""
    if (b.unit is not None and b.unit not in set(a_words)) or (
        a.unit is not None and a.unit not in set(b_words)
    ):
        return False
    if a.unit is None or b.unit is None or a.unit == b.unit:
        return True
    return a.unit in set(content_words(b.clause)) or b.unit in set(content_words(a.clause))


def _quantity(framed: Framed) -> str | None:
    """The news quantity a number counts: the class (bot.core.words) of the closest of its frame's
    words that have one, within QUANTITY_NEAR; None when there is none or two tie."""
    near = sorted(
        ((w, k) for k, w in framed.frame.items() if k.startswith(QUANTITY_MARK)), reverse=True
    )
    near = [(w, k) for w, k in near if w >= QUANTITY_NEAR]
    if not near or (len(near) > 1 and near[0][0] == near[1][0]):
        return None
    return near[0][1]


# Unit words that say only "people": "12 people were killed" and "14 persons died" count alike.
_ANYONE_UNITS = frozenset({"people", "peopl", "person", "persons"})


def same_quantity(a: Framed, b: Framed, focus: Mapping[str, float]) -> bool:
    """Whether two numbers count the news quantity the focus asks about, each by words right by
    it ("12 people were killed", "the toll rose to 16"), of the same people: "4,500 soldiers
    killed" and "10,000 civilians died" are both deaths, but not the same count, and for "how
    many children were killed" a count of civilians is not the one asked about."""
    kind = _quantity(a)
    if kind is None or kind != _quantity(b) or kind not in focus:
        return False
    if any(not _open_unit(u) and u not in focus for u in (a.unit, b.unit)):
        return False
    return _open_unit(a.unit) or _open_unit(b.unit) or a.unit == b.unit


def _open_unit(unit: str | None) -> bool:
    """A unit that does not narrow who or what is counted: none, "people", or the quantity's own
    word ("12 dead")."""
    return unit is None or unit in _ANYONE_UNITS or quantity_class(unit) is not None


def counts_another_quantity(framed: Framed, words: Mapping[str, float]) -> bool:
    """Whether a number counts a news quantity (the class, bot.core.words, of its unit or of the
    words right by it) other than the ones `words` name: "15 injured" for the death toll."""
    kind = (quantity_class(framed.unit) if framed.unit else None) or _quantity(framed)
    named = {w for w in words if w.startswith(QUANTITY_MARK)}
    return kind is not None and bool(named) and kind not in named


def best_match(candidates: Sequence[Framed], target: Mapping[str, float]) -> Framed | None:
    """The candidate whose frame is most about `target`; a lone candidate is taken as it is, and
    of several, the best must be about `target` and ahead of the others."""
    if len(candidates) == 1:
        return candidates[0]
    scored = sorted(((overlap(c.frame, target), i) for i, c in enumerate(candidates)), reverse=True)
    if not scored or scored[0][0] <= 0 or scored[0][0] == scored[1][0]:
        return None
    return candidates[scored[0][1]]


def about(sentence: str, framed: Framed) -> str:
    """The value's clause with the value left out: what the outlets give different values for."""
    start = max(sentence.find(framed.clause), 0)
    clause, value = framed.clause, framed.value
    text = f"{clause[: value.start - start].rstrip()} … {clause[value.end - start :].lstrip()}"
    return clip(text.strip(" .,;:"), ABOUT_CHARS)
