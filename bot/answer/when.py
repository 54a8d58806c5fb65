"""The date that answers a "when" question, and where it comes from.

`answer_date` reads the checked answer of a "when" question. A question about when something was
reported or published is answered with the cited article's publication date. Otherwise:

Only a sentence that answers the question (`answerability.answers`: a date beside the
question's words) gives a date from its text; a date in a sentence about something else is no
answer.

- a sentence stating a date ("from April 15", "in October 2023", "the 2025 season") gives it,
  `source: "text"`, citing the sentence's first passage;
- else a sentence naming a day relative to the report ("on Monday", "yesterday") gives that day
  counted from its passage's publication date (the last such day on or before it, or the next
  one when the sentence speaks of what "will" happen), `source: "published"`; without a
  publication date the day stays as written, `source: "text"`;
- else the publication date of the first cited passage, `source: "published"`.

`value` is the date as written, or an ISO date when it was counted from the publication date;
`text` holds the words the sentence used, when it used any.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from bot.answer.answer_type import Needs, date_mentions, has_absolute_date
from bot.answer.answerability import Quotable, answers
from bot.core.markers import strip_markers
from bot.core.types import CheckedSentence, Passage

_LEADING_WORDS = re.compile(r"^(?:in|since|by|until|from|for|of|during)\s+(?:the\s+)?", re.I)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_OFFSETS = {"yesterday": -1, "today": 0, "tonight": 0, "tomorrow": 1}
# "When did X report / publish / write about...": the date of the report itself.
_ASKS_PUBLICATION = re.compile(r"\b(?:report|reported|publish|published|write|wrote)\b", re.I)
_FUTURE = re.compile(r"\b(?:will|would|is due|are due|is to|are to|plans? to)\b", re.I)


def answer_date(
    needs: Needs, sentences: Sequence[CheckedSentence], passages: Sequence[Passage]
) -> dict[str, Any] | None:
    """`{value, source, citation, text}` for a "when" question's answer; None for other
    questions or when neither the answer nor its passages give a date."""
    if needs.kind != "when":
        return None
    cited = [s for s in sentences if s.citations]
    published = {p.n: str(p.published or "")[:10] for p in passages}
    if _ASKS_PUBLICATION.search(needs.question):
        found = _published(cited, published)
        if found:
            return found
    titles = {p.n: str(p.title or "") for p in passages}
    dated = [s for s in cited if answers(needs, _quotable(s, titles))]
    return _stated(dated, published) or _published(cited, published)


def _quotable(sentence: CheckedSentence, titles: dict[int, str]) -> Quotable:
    title = titles.get(sentence.citations[0], "")
    return Quotable("", strip_markers(sentence.text), title=title)


def _stated(dated: Sequence[CheckedSentence], published: dict[int, str]) -> dict[str, Any] | None:
    """The date the first of `dated` states: an absolute one first, then a day named relative to
    the report."""
    for sentence in dated:
        text = strip_markers(sentence.text)
        for mention in date_mentions(text):
            if has_absolute_date(mention):
                value = _LEADING_WORDS.sub("", mention)
                return _date(value, "text", sentence.citations[0], value)
    for sentence in dated:
        text = strip_markers(sentence.text)
        for mention in date_mentions(text):
            n = sentence.citations[0]
            day = _counted(mention, published.get(n, ""), future=bool(_FUTURE.search(text)))
            if day:
                return _date(day, "published", n, mention)
            return _date(mention, "text", n, mention)
    return None


def _published(
    cited: Sequence[CheckedSentence], published: dict[int, str]
) -> dict[str, Any] | None:
    for sentence in cited:
        for n in sentence.citations:
            if published.get(n):
                return _date(published[n], "published", n, "")
    return None


def _date(value: str, source: str, citation: int, text: str) -> dict[str, Any]:
    return {"value": value, "source": source, "citation": citation, "text": text or None}


def _counted(mention: str, published: str, *, future: bool) -> str:
    """The ISO day `mention` ("Monday", "yesterday") means in a report of `published`; ""
    when it cannot be counted."""
    try:
        base = dt.date.fromisoformat(published)
    except ValueError:
        return ""
    word = mention.lower()
    if word in _OFFSETS:
        return (base + dt.timedelta(days=_OFFSETS[word])).isoformat()
    if word not in _WEEKDAYS:
        return ""
    target = _WEEKDAYS.index(word)
    if future:
        return (base + dt.timedelta(days=(target - base.weekday()) % 7 or 7)).isoformat()
    return (base - dt.timedelta(days=(base.weekday() - target) % 7)).isoformat()
