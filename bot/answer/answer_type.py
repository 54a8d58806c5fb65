"""What a question asks for, and whether a sentence holds it.

`read_question` turns a question into `Needs`:

- `kind`: the expected answer type, from the question's opening words: "who" (a person or an
  organisation), "when" (a date), "where" (a place), "count" ("how many": a number), "amount"
  ("how much": a number or a sum), "say" ("what did X say/announce/tell...": reported speech by X),
  or "other";
- `anchors`: the names the question gives (runs of capitalised words after its first word, and
  numbers): an answer must come from passages that name them;
- `terms`: the question's other content words, less the words that only frame a question
  ("how many", "report", "article"...): what the answer must be about;
- `speaker`: for "say" questions, the name of who spoke.

`holds_type` says whether a sentence holds what `kind` asks for; `date_mentions` finds the date
expressions of a sentence ("April 15", "15 April 2024", "2025", "on Monday").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.core.values import is_name_word, name_matches
from bot.core.words import WORD_RE, content_words

# Words that frame a question rather than say what it is about: an answer need not contain them.
_FRAME_WORDS = frozenset(
    content_words(
        "many much name happen happened report reported reports article articles mention "
        "mentioned discuss discussed considering consider information based describe described "
        "suggest suggests according piece coverage outlet story stories news latest recent "
        "recently exactly total number amount kind type"
    )
)
# Lower-case words allowed inside a name ("National Bank of Estravia", "Port of Calder").
_NAME_JOINERS = frozenset({"of", "de", "la", "du", "von", "van", "der", "al", "bin", "&"})
_SAY_VERBS = (
    r"say|says|said|announce|announced|tell|told|claim|claimed|promise|promised|warn|warned|urge"
    r"|urged|ask|asked|declare|declared|state|stated|reveal|revealed|pledge|pledged|add|added"
    r"|write|wrote|call|called|predict|predicted|admit|admitted|deny|denied|propose|proposed"
)
_SAY_QUESTION = re.compile(
    rf"^\W*what\s+(?:did|does|do|has|have|had|will|would)\s+(?P<speaker>.+?)\s+(?P<verb>{_SAY_VERBS})\b",
    re.IGNORECASE,
)
# Verbs any report of speech answers; another verb ("announce", "promise") must be the
# sentence's own.
_ANY_SPEECH = frozenset({"say", "says", "said", "tell", "told", "add", "added"})
_KINDS = (
    ("when", re.compile(r"^\W*(?:when\b|(?:on\s+)?what\s+(?:date|day|year|month|time)\b|"
                        r"(?:in\s+)?which\s+(?:year|month|day)\b|how\s+long\s+ago\b)", re.I)),
    ("count", re.compile(r"^\W*how\s+(?:many|long|far|old|often)\b", re.I)),
    ("amount", re.compile(r"^\W*(?:how\s+much\b|what\s+(?:percentage|share|price|rate)\b)", re.I)),
    ("who", re.compile(r"^\W*(?:who|whom|whose)\b", re.I)),
    ("where", re.compile(r"^\W*(?:where\b|(?:in\s+)?what\s+(?:place|city|town|country)\b)", re.I)),
)  # fmt: skip
# The key words a chat rewrite adds in brackets ("When was it announced? (Zelensky)"): their
# names are the subject, but they are not words the answer must hold.
_CONTEXT = re.compile(r"\s*\([^()]*\)\s*$")
# "How long", "how far"...: the question's form, not its subject.
_QUESTION_WORDS = re.compile(r"^\W*how\s+(?:many|much|long|far|old|often)\b", re.IGNORECASE)
_COUNTED = re.compile(r"^\W*how\s+many\s+(?:more\s+|of\s+the\s+)?([\w’'-]+)", re.IGNORECASE)
# Follow-up openers ("and", "so") before the question word.
_OPENER = re.compile(r"^\W*(?:and|but|so|also|then|ok|okay)\b[\s,]*", re.IGNORECASE)

_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_WEEKDAYS = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
# Absolute dates first (day and month, month and year, a bare year, ISO), then weekdays and the
# days named relative to the report, which need the publication date to become a date.
_ABSOLUTE_DATE = re.compile(
    rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}(?:,?\s+\d{{4}})?"
    rf"|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s+\d{{4}})?"
    rf"|{_MONTHS}\s+\d{{4}}"
    rf"|\d{{4}}-\d{{2}}-\d{{2}}"
    rf"|(?:in|since|by|until|from|for|of|during)\s+(?:the\s+)?(?:\d{{4}})(?:\s+season)?"
    rf"|\d{{4}}\s+season)\b"
)
# Days named relative to the report. "Last week" or "this year" dates nothing precisely enough
# to answer "when".
_RELATIVE_DATE = re.compile(
    rf"\b(?:{_WEEKDAYS}|yesterday|today|tonight|tomorrow|last\s+night)\b", re.IGNORECASE
)
# A number of time units: how long, which answers "how much" only when the question asks
# about time.
_DURATION = re.compile(
    r"\b(?:\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|several|"
    r"a few|many)[\s-]+(?:years?|months?|weeks?|days?|hours?|minutes?|seconds?|decades?)\b",
    re.IGNORECASE,
)
_DURATION_STEMS = frozenset(
    content_words("time long year month week day hour minute second decade")
)
_NUMBER = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|hundreds?"
    r"|thousands?|millions?|billions?|half|no one|none)\b",
    re.IGNORECASE,
)
_QUOTE = re.compile(r"[\"“”«»]|(?:^|\s)['‘][A-Z]")
# A reporting verb with what was reported after it: "announced that", "told troops to", "said
# on Monday he would", or a colon or comma opening a quote.
_REPORTED = re.compile(
    rf"\b(?:{_SAY_VERBS})\b(?:\s+[\w’']+){{0,4}}?\s+(?:that|to|he|she|they|it|we|i)\b"
    r"|[:,]\s*[\"“]",
    re.IGNORECASE,
)
# Question words the stopword list lacks.
_QUESTION_OPENERS = frozenset({"whose"})
# What separates the parts of an outlet's name ("The Roar | Sports Writers Blog", "CBSSports.com").
OUTLET_PARTS = re.compile(r"\s[|\-–—:]\s|\.(?:com|org|net|co\.uk)\b")
# A name given as a publisher: "a Bloomberg article", "a Wall Street Journal report", "the Online
# News Association website",
# "an article from Variety" ("an article on X" is about X, not from it).
_NAME_RUN = r"(?P<name>(?:[A-Z][\w'’.&-]*\s+){0,4}[A-Z][\w'’.&-]*)"
_SOURCES = (
    re.compile(rf"{_NAME_RUN}\s+(?:article|report|website|newspaper)s?\b"),
    re.compile(rf"\barticles?\s+(?:from|in|by)\s+(?:the\s+)?{_NAME_RUN}"),
)
_POSSESSIVE = re.compile(r"['’]s$")
_QUOTE_OPENERS = frozenset("'‘\"“")
_PLACE = re.compile(r"\b(?:in|at|near|from|to|outside|inside)\s+(?:the\s+)?[A-Z][\w'’\-]+")


@dataclass(frozen=True)
class Anchor:
    """A name the question gives: its words as written and their stems."""

    text: str
    stems: tuple[str, ...]


@dataclass(frozen=True)
class Needs:
    question: str
    kind: str
    anchors: tuple[Anchor, ...]
    terms: frozenset[str]
    speaker: Anchor | None = None
    counted: str | None = None  # the stem of what "how many" counts ("otter")
    verb: str | None = None  # the stem of a "what did X announce" verb the answer must use
    outlets: int = 0  # how many times the question names an outlet of the index
    # Names the question gives as where something was published that the index has no outlet
    # of ("a Bloomberg article").
    sources: tuple[Anchor, ...] = ()
    # The subject's words a chat rewrite adds in brackets, less its names and the terms.
    context: frozenset[str] = frozenset()

    @property
    def clause(self) -> str:
        """The question as a clause for "no passage says ...": "who won the election"."""
        text = _CONTEXT.sub("", self.question)
        text = _OPENER.sub("", text).strip().rstrip("?!. ").strip()
        return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def _anchor(words: list[str]) -> Anchor | None:
    while words and words[-1].lower() in _NAME_JOINERS:
        words = words[:-1]
    stems = tuple(s for w in words for s in content_words(w))
    return Anchor(" ".join(words), stems) if stems else None


def question_names(question: str) -> list[Anchor]:
    """Runs of name words (`is_name_word`) after the first word, each once: the names to look
    for. A possessive ends a name ("Richelle Cranston's AFLW career": "Richelle Cranston",
    "AFLW"), and a quoted phrase in sentence case ("'Universal travel adapters'") names a thing,
    not someone. Numbers are not names: a question words them differently ("2,000-plus") or
    means a report's date."""
    anchors: list[Anchor] = []
    run: list[str] = []
    last_end = 0
    for i, match in enumerate(WORD_RE.finditer(question)):
        word = _POSSESSIVE.sub("", match.group())
        if run and question[last_end : match.start()].strip(" -"):
            _close(run, anchors)  # punctuation between two words ends a name
        last_end = match.end()
        capital = is_name_word(word) and word.lower() not in _QUESTION_OPENERS
        capital = capital and not _sentence_case_quote(question, match)
        if (i > 0 and capital) or (run and word.lower() in _NAME_JOINERS):
            run.append(word)
        else:
            _close(run, anchors)
        if word != match.group():
            _close(run, anchors)
    _close(run, anchors)
    unique = {a.stems: a for a in anchors}
    return list(unique.values())


def _sentence_case_quote(question: str, match: re.Match[str]) -> bool:
    """The word opens a quotation and the next word is lower case: a quoted phrase whose capital
    is the quote's, not a name's."""
    before = question[: match.start()].rstrip()
    if not before or before[-1] not in _QUOTE_OPENERS:
        return False
    following = WORD_RE.search(question, match.end())
    return following is not None and following.group()[:1].islower()


def _close(run: list[str], anchors: list[Anchor]) -> None:
    """Ends the name being read: adds it to `anchors` and empties `run`."""
    found = _anchor(run)
    if found is not None:
        anchors.append(found)
    run.clear()


def question_kind(question: str) -> str:
    text = _OPENER.sub("", question)
    if _SAY_QUESTION.match(text):
        return "say"
    for kind, pattern in _KINDS:
        if pattern.match(text):
            return kind
    return "other"


def without_outlets(question: str, outlets: Iterable[str]) -> tuple[str, int]:
    """`question` with the outlets it names blanked ("the TechCrunch article", "Business Today |
    Latest Stock Market And Economy News India"), and how many times it names one: an outlet
    says where to look, not what the answer is about. Each outlet is matched whole or by its
    parts ("The Roar | Sports Writers Blog": "The Roar"), with or without a leading "The",
    longest first, in any case but written
    as a name (a capital in it: "the Verge", not "entertainment")."""
    parts = {p.strip() for o in outlets for p in [str(o), *OUTLET_PARTS.split(str(o))]}
    parts |= {p[4:] for p in parts if p.lower().startswith("the ")}  # "a New York Times article"
    named = 0

    def blank(match: re.Match[str]) -> str:
        nonlocal named
        if match.group() == match.group().lower():
            return match.group()
        named += 1
        return " , "

    for part in sorted((p for p in parts if len(p) > 1), key=len, reverse=True):
        pattern = rf"(?<![\w]){re.escape(part)}(?![\w])"
        question = re.sub(pattern, blank, question, flags=re.IGNORECASE)
    return question, named


def read_question(question: str, outlets: Iterable[str] = ()) -> Needs:
    """What `question` asks for (see the module docstring); names of `outlets` (the index's)
    in it are neither names nor terms (`without_outlets`)."""
    kind = question_kind(question)
    asked, named_outlets = without_outlets(question, outlets)
    names = question_names(asked)
    sources = _sources(asked, names)
    anchors = tuple(a for a in names if a not in sources)
    named = {s for a in names for s in a.stems}
    bracket = _CONTEXT.search(asked)
    context = frozenset(content_words(bracket.group())) - named if bracket else frozenset()
    asked = _QUESTION_WORDS.sub("", _CONTEXT.sub("", asked))
    terms = frozenset(content_words(asked)) - named - _FRAME_WORDS
    speaker, verb = None, None
    if kind == "say":
        m = _SAY_QUESTION.match(_OPENER.sub("", question))
        spoken = set(content_words(m.group("speaker"))) if m else set()
        speaker = next((a for a in anchors if set(a.stems) & spoken), None)
        said = m.group("verb").lower() if m else "say"
        stems = content_words(said)
        verb = stems[0] if stems and said not in _ANY_SPEECH else None
    counted = None
    if kind == "count":
        m = _COUNTED.match(_OPENER.sub("", question))
        stems = content_words(m.group(1)) if m else []
        counted = stems[0] if stems else None
    return Needs(
        question,
        kind,
        anchors,
        terms,
        speaker=speaker,
        counted=counted,
        verb=verb,
        outlets=named_outlets,
        sources=sources,
        context=context - terms - _FRAME_WORDS,
    )


def _sources(question: str, names: list[Anchor]) -> tuple[Anchor, ...]:
    """The names that `question` gives as where something was published ("a Bloomberg
    article", "an article from Variety"), once the index's own outlets are blanked."""
    said = [set(content_words(m["name"])) for p in _SOURCES for m in p.finditer(question)]
    return tuple(a for a in names if any(set(a.stems) <= stems for stems in said))


def date_mentions(text: str) -> list[str]:
    """Date expressions of `text`, absolute ones first ("April 15", "2025", "on Monday")."""
    found = [m.group() for m in _ABSOLUTE_DATE.finditer(text)]
    found += [m.group() for m in _RELATIVE_DATE.finditer(text)]
    return found


def has_absolute_date(text: str) -> bool:
    return _ABSOLUTE_DATE.search(text) is not None


def is_quote(text: str) -> bool:
    """`text` quotes someone's words directly."""
    return _QUOTE.search(text) is not None


def holds_type(kind: str, text: str, question_words: frozenset[str]) -> bool:
    """`text` holds what a `kind` question asks for. Names and places count only when the
    question does not give them itself."""
    if kind == "when":
        return bool(date_mentions(text))
    if kind == "amount" and not question_words & _DURATION_STEMS:
        text = _DURATION.sub(" ", text)  # "after four years" says how long, not how much
    if kind in ("count", "amount"):
        return _NUMBER.search(text) is not None
    if kind == "say":
        return _QUOTE.search(text) is not None or _REPORTED.search(text) is not None
    if kind == "who":
        return any(_new_word(m.group(), question_words) for m in name_matches(text))
    if kind == "where":
        return any(_new_word(m.group().split()[-1], question_words) for m in _PLACE.finditer(text))
    return True


def _new_word(word: str, question_words: frozenset[str]) -> bool:
    stems = content_words(word)
    return bool(stems) and not set(stems) <= question_words
