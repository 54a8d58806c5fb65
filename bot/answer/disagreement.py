"""Disagreement between articles: what an answer states against what other outlets state about the
same thing, with different numbers or dates. `ask` and `summarise` both report it from here.

For each sentence of the answer that states a number or date and cites a passage, its value that
answers the focus (the question or topic: the value whose frame, bot.answer.value_frames, holds
most of its words; every value without a focus) is compared with the sentences of the other
articles' passages (and of the further passages `more` gives, when the caller can retrieve them):

1. About the same thing: both sentences are about the focus (cosine with it at FOCUS_COSINE at
   least), or the two sentences' cosine reaches SAME_THING_COSINE and the other sentence is not
   about something else than the focus (TOPIC_COSINE). Without an embedder, content-word
   Jaccard (values aside) on the same scale.
2. The same part of it: of the other sentence's values of the same kind (a number with a scale
   word or a percent sign only against another such), the one whose frame is most about the
   anchor value's frame and the focus; a lone value is taken as it is. Numbers whose units say
   they count different things ("12 people" / "15 injured") are not compared.
3. Not two subjects: when each side names, in the value's clause, something the other side's
   passages never mention ("Quorvel1 will cost ..." against "Quorvel2 will cost ..."), they are
   about different things; and the focus's names must be in the other article's passage.

A "who" question compares names instead: the person each side names for the role asked about
(bot.answer.name_conflicts), when both sentences are about the question as in 1.

An outlet stating the same value is agreement: its passage joins that value's citations. Each
disagreement lists every value with the passages that state it, newest report first (unknown
dates last), and the sentences that state the other values are added to the answer, each citing
its own passage, so the reader sees every version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from bot.answer.answer_type import question_kind, read_question
from bot.answer.extractive import news_sentences
from bot.answer.name_conflicts import NameClaim, name_pairs
from bot.answer.similarity import SAME_THING_COSINE, Similarity
from bot.answer.value_frames import (
    FRAMED_KINDS,
    Framed,
    about,
    as_words,
    best_match,
    comparable,
    counts_another_quantity,
    framed_values,
    heads,
    joined,
    near_words,
    overlap,
    same_counted_subject,
    same_quantity,
    same_unit,
)
from bot.core.dates import newest_first
from bot.core.markers import with_markers
from bot.core.text import replace_surrogates
from bot.core.types import (
    AnswerResult,
    CheckedSentence,
    Disagreement,
    Passage,
    StatedValue,
    mark_cited,
)
from bot.core.values import WEEKDAYS, Value, stated_names, word_set
from bot.core.words import content_words

if TYPE_CHECKING:
    from bot.index.embeddings import Embedder

# A sentence this close to the question or topic is about it (off-topic sentences of the same
# articles sit under 0.45): two such sentences give the same thing even when the rest of one of
# them (a second figure, where and when) pulls their own cosine down.
FOCUS_COSINE = 0.5
# A value of another sentence must share this much of its frame with the anchor value's frame
# and the focus (one word next to it, or a few further off) to give the same thing.
MIN_FRAME_OVERLAP = 0.5
# Content words this close to each of two values say what happened to what they count; further
# off, a clause has moved on to where and who ("city council" of one, "the city's edge" of another).
SHARED_WITHIN = 5
# A word of the question this close (in content words) to each of two values says both are
# what the question asks about ("contained about 20 percent", "containment stood at 15 percent"),
# however differently the rest of the two sentences reads.
ASKED_WITHIN = 2
# The value kinds a question asking for each kind of answer compares (others: numbers and dates).
VALUE_KINDS_ASKED: dict[str, tuple[str, ...]] = {
    "count": ("number",),
    "amount": ("number",),
    "when": ("date",),
    "who": (),
    "where": (),
    "say": (),
}
# A sentence under this cosine with the question or topic is about something else, however
# close it is to the answer's sentence ("approved a 310 million budget" / "a 48 million plan").
TOPIC_COSINE = 0.4
# Fewer content words than this and a sentence cannot say what its number is about.
MIN_WORDS = 4
# The same for one clause: "Item 3" or "Day 2" labels a line, "12 people died" says what.
MIN_CLAUSE_WORDS = 2

# Gives further passages for a sentence of the answer (other outlets' reports of the same thing),
# leaving out the chunks named.
MorePassages = Callable[[str, set[str]], list[Passage]]


@dataclass(eq=False)
class _Claim:
    text: str
    citations: list[int]
    article: str
    published: str
    values: list[Framed] = field(default_factory=list)
    words: set[str] = field(default_factory=set)  # its content words
    passage_words: set[str] = field(default_factory=set)  # every word of the passages cited


@dataclass(eq=False)
class _Side:
    value: Value
    claims: list[_Claim]


@dataclass(eq=False)
class _Found:
    about: str
    kind: str
    sides: dict[str, _Side] = field(default_factory=dict)  # value key -> who states it
    members: set[tuple[str, int]] = field(default_factory=set)  # (sentence, value start)


def _says_what(clause: str) -> bool:
    """Whether a clause has words enough to say what its number is about ("Item 3:" has not)."""
    return len([w for w in content_words(clause) if not w[:1].isdigit()]) >= MIN_CLAUSE_WORDS


def _claim(
    text: str,
    citations: list[int],
    passages: Sequence[Passage],
    kinds: Sequence[str],
    seen: set[str],
) -> _Claim | None:
    """`text` as a claim, if it states a value of `kinds` with words enough to say what about;
    `seen` holds the words of its `passages`."""
    words = {w for w in content_words(text) if not w[:1].isdigit()}
    if len(words) < MIN_WORDS:
        return None
    values = [f for f in framed_values(text, kinds) if _says_what(f.clause)]
    if not values:
        return None
    first = passages[0]
    published = str(first.published or "")
    return _Claim(text, citations, first.article_id, published, values, words, seen)


def find_disagreements(
    sentences: Sequence[CheckedSentence],
    passages: Sequence[Passage],
    *,
    focus: str = "",
    embedder: Embedder | None = None,
) -> tuple[list[Disagreement], list[CheckedSentence]]:
    """What the answer's `sentences` and the other articles' `passages` state differently (see
    the module docstring), and the passage sentences to add to the answer so each value is
    given with its citation. Never raises: a failure finds nothing."""
    try:
        return _report(_find(sentences, passages, focus, embedder), sentences)
    except Exception:  # noqa: BLE001 - a report the answer can do without
        return [], []


def _anchors(
    sentences: Sequence[CheckedSentence], by_n: Mapping[int, Passage], kinds: Sequence[str]
) -> list[_Claim]:
    """The answer's supported, cited sentences that state a value of `kinds`."""
    out = []
    for s in sentences:
        cited = [by_n[n] for n in s.citations if n in by_n]
        if not (s.supported and s.citations and s.citations[0] in by_n):
            continue
        seen = set().union(*(word_set(p.text) for p in cited))
        if claim := _claim(s.text, list(s.citations), cited, kinds, seen):
            out.append(claim)
    return out


def _passage_claims(passages: Sequence[Passage], kinds: Sequence[str]) -> list[_Claim]:
    """Every sentence of the passages that states a value of `kinds`, as a claim."""
    out = []
    for p in passages:
        seen = word_set(p.text)
        for _, text in news_sentences(replace_surrogates(p.text), str(p.title or "")):
            if claim := _claim(text, [p.n], [p], kinds, seen):
                out.append(claim)
    return out


def _find(
    sentences: Sequence[CheckedSentence],
    passages: Sequence[Passage],
    focus: str,
    embedder: Embedder | None,
) -> list[_Found]:
    by_n = {p.n: p for p in passages}
    kinds = _kinds_asked(focus)
    anchors = _anchors(sentences, by_n, kinds)
    pairs = _name_pairs(sentences, passages, focus)
    if not anchors and not pairs:
        return []
    others = _passage_claims(passages, kinds)
    focus_words = as_words(w for w in content_words(focus) if not w[:1].isdigit())
    focus_names = stated_names(focus) if focus else set()
    # The words line values up first; only the sentences of the pairs they find are embedded.
    for anchor in anchors:
        articles = {by_n[n].article_id for n in anchor.citations if n in by_n}
        rivals = [
            c
            for c in others
            if c.article not in articles and _names_focus(focus_names, by_n[c.citations[0]])
        ]
        for value in _anchor_values(anchor, focus_words):
            matches = _matches((anchor, value), rivals, focus_words)
            pairs += [(anchor, value, rival, theirs) for rival, theirs in matches]
    similar = Similarity(embedder)
    texts = [c.text for a, _, r, _ in pairs for c in (a, r)]
    similar.add([focus] * bool(focus) + texts + [t.clause for *_, t in pairs])

    def same_thing(a: _Claim, b: _Claim, framed: tuple[Framed, Framed]) -> bool:
        """`framed`: the two values; a sentence that goes on to another story may still state,
        in b's value's own clause, the thing asked about."""
        if not focus:
            return similar(a.text, b.text) >= SAME_THING_COSINE
        near = max(similar(b.text, focus), similar(framed[1].clause, focus))
        if near >= FOCUS_COSINE and similar(a.text, focus) >= FOCUS_COSINE:
            return True
        if near < TOPIC_COSINE:
            return False
        asked = _asked_beside(framed, read_question(focus).terms, a, b)
        return asked or similar(a.text, b.text) >= SAME_THING_COSINE

    def agree(a: _Claim, b: _Claim) -> bool:
        """Stronger than `same_thing`: a co-citation claims the passage states this value."""
        close = similar(a.text, b.text) >= SAME_THING_COSINE
        return close and (
            not focus or min(similar(a.text, focus), similar(b.text, focus)) >= FOCUS_COSINE
        )

    found: list[_Found] = []
    for anchor, mine, rival, theirs in pairs:
        same = theirs.value.key == mine.value.key
        if agree(anchor, rival) if same else same_thing(anchor, rival, (mine, theirs)):
            _record(found, (anchor, mine), (rival, theirs))
    return [f for f in found if len(f.sides) > 1]


def _name_pairs(
    sentences: Sequence[CheckedSentence], passages: Sequence[Passage], focus: str
) -> list[tuple[_Claim, Framed, _Claim, Framed]]:
    """A "who" question's answers by name (bot.answer.name_conflicts), as claims."""
    if not focus or question_kind(focus) != "who":
        return []

    def claim(c: NameClaim) -> tuple[_Claim, Framed]:
        words = set(content_words(c.text))
        date = str(c.passage.published or "")
        seen = word_set(c.passage.text)
        framed = Framed(c.name, c.text)
        return _Claim(
            c.text, list(c.citations), c.passage.article_id, date, [framed], words, seen
        ), framed

    return [(*claim(a), *claim(b)) for a, b in name_pairs(sentences, passages, focus)]


def _names_focus(names: set[str], passage: Passage) -> bool:
    """Whether the passage names what the focus names: most of its name words (an outlet may
    call one flood by its river, another by its town)."""
    return 2 * len(names & word_set(f"{passage.title} {passage.text}")) >= len(names)


def _kinds_asked(focus: str) -> tuple[str, ...]:
    """The value kinds worth comparing for `focus`: a question asking for a count or amount
    compares numbers, a "when" question dates; one asking who, where or what someone said has
    its answer in names or words, which are not compared. No focus: numbers and dates."""
    if not focus:
        return FRAMED_KINDS
    return VALUE_KINDS_ASKED.get(question_kind(focus), FRAMED_KINDS)


def _anchor_values(anchor: _Claim, focus_words: Mapping[str, float]) -> list[Framed]:
    """The anchor's values to compare: the one answering the focus (of those counting what the
    focus names, "38 seats" for "how many seats"; its first value when none stands out), or all
    without a focus."""
    if not focus_words:
        return anchor.values
    fitting = [f for f in anchor.values if not counts_another_quantity(f, focus_words)]
    counting = [f for f in fitting if f.unit in focus_words] or fitting
    if not counting:
        return []  # each counts another quantity than the one asked about
    return [best_match(counting, focus_words) or counting[0]]


def _matches(
    anchor: tuple[_Claim, Framed], rivals: Sequence[_Claim], focus: Mapping[str, float]
) -> list[tuple[_Claim, Framed]]:
    """What each rival states for the anchor's value `mine`: its value of the same kind most
    about `target` (the anchor value's frame and the focus), when that is about it enough, counts
    the same unit, and the two sides are not about two subjects."""
    claim, mine = anchor
    target = joined(focus, mine.frame)
    out = []
    for rival in rivals:
        same_kind = [
            f
            for f in rival.values
            if comparable(f.value, mine.value) and not counts_another_quantity(f, target)
        ]
        theirs = best_match(same_kind, target)
        if theirs is None or overlap(theirs.frame, target) < MIN_FRAME_OVERLAP:
            continue
        if not same_quantity(mine, theirs, focus) and not same_unit(
            mine, theirs, [*claim.words, *focus], [*rival.words, *focus]
        ):
            continue
        if _of_another_thing((claim, mine), (rival, theirs), focus):
            continue
        if not _shared_words(anchor, (rival, theirs)) and not same_counted_subject(
            mine, theirs, focus
        ):
            continue
        if theirs.value.key != mine.value.key and (
            _own_subject(mine.lead, rival) and _own_subject(theirs.lead, claim)
        ):
            continue  # each names something the other never mentions: two subjects
        out.append((rival, theirs))
    return out


def _record(
    found: list[_Found], mine: tuple[_Claim, Framed], theirs: tuple[_Claim, Framed]
) -> None:
    """One entry per thing: a value already reported (the same value of the same sentence) joins
    its entry; a value stated again by another outlet joins its side."""
    ids = {(claim.text, framed.value.start) for claim, framed in (mine, theirs)}
    kind = mine[1].value.kind
    entry = next((f for f in found if f.kind == kind and ids & f.members), None)
    if entry is None:
        entry = _Found(about(mine[0].text, mine[1]), kind)
        found.append(entry)
    entry.members |= ids
    for claim, framed in (mine, theirs):
        side = entry.sides.setdefault(framed.value.key, _Side(framed.value, []))
        if all(c is not claim for c in side.claims):
            side.claims.append(claim)


def _of_another_thing(
    mine: tuple[_Claim, Framed], theirs: tuple[_Claim, Framed], focus: Mapping[str, float]
) -> bool:
    """Whether the anchor's value is an amount of a focus word the rival never says, while the
    rival's is of another thing: "a 310 million dorin budget" against "a 48 million dorin plan
    to replace the roof", for the budget."""
    (claim, a), (rival, b) = mine, theirs
    asked = set(heads(a)) & set(focus)
    return bool(asked) and not asked & rival.words and bool(set(heads(b)) - claim.words)


def _shared_words(mine: tuple[_Claim, Framed], theirs: tuple[_Claim, Framed]) -> bool:
    """Whether the two values' frames share a word that is neither their common unit nor a
    name: what happened to the thing counted ("killed", "reopen", "cost"), not only where or in
    what currency."""
    (claim, a), (rival, b) = mine, theirs
    shared = near_words(a, SHARED_WITHIN) & near_words(b, SHARED_WITHIN)
    return bool(shared - _name_words(claim, rival) - ({a.unit} & {b.unit}))


def _asked_beside(framed: tuple[Framed, Framed], terms: Set[str], a: _Claim, b: _Claim) -> bool:
    """Whether one of the question's own `terms` (a chat rewrite's subject words aside) stands
    within ASKED_WITHIN words of two numbers, each side saying those standing by the other's."""
    asked = terms - _name_words(a, b)
    mine, theirs = (near_words(f, ASKED_WITHIN) & asked for f in framed)
    numbers = all(f.value.kind == "number" for f in framed)
    return numbers and bool(mine & theirs) and mine <= b.words and theirs <= a.words


def _name_words(a: _Claim, b: _Claim) -> set[str]:
    return set(content_words(" ".join(stated_names(a.text) | stated_names(b.text))))


def _own_subject(lead: str, other: _Claim) -> bool:
    """Whether a name in the clause before a value (where its subject is named: "Quorvel1 will
    cost ...") is one the other side's passages never mention: when both sides have one, they
    are about different things. Weekdays say when, not what."""
    return not (stated_names(lead) - WEEKDAYS) <= other.passage_words


def _report(
    found: list[_Found], sentences: Sequence[CheckedSentence]
) -> tuple[list[Disagreement], list[CheckedSentence]]:
    shown = {s.text for s in sentences}
    out: list[Disagreement] = []
    added: list[CheckedSentence] = []
    for entry in found:
        values = []
        for side in entry.sides.values():
            claims = sorted(side.claims, key=lambda c: newest_first(c.published))
            cited = sorted({n for c in claims for n in c.citations})
            values.append(StatedValue(side.value.text, cited, claims[0].published))
            if not any(c.text in shown for c in claims):
                shown.add(claims[0].text)
                added.append(CheckedSentence(claims[0].text, list(claims[0].citations), True, 1.0))
        values.sort(key=lambda v: newest_first(v.published))
        out.append(Disagreement(entry.about, values))
    return out, added


def add_disagreements(
    result: AnswerResult,
    embedder: Embedder | None,
    *,
    focus: str,
    bullets: bool = False,
    say_dropped: bool = True,
    more: MorePassages | None = None,
) -> None:
    """Complete a checked, answered `result` in place: say which citations were removed because
    their passage states other values (unless `say_dropped` is False: the citations were bot's
    own, not a writer's claim), find the disagreements (`find_disagreements`; with `more`, also
    against the further passages it gives for the answer's first sentence with a value, of which
    those the disagreements cite are added to the passages), add the sentences that give the
    other values (as "- " bullets with `bullets`) and mark the passages they cite."""
    mismatched = sorted({n for s in result.sentences for n in s.mismatched})
    if mismatched and say_dropped:
        shown = ", ".join(f"[{n}]" for n in mismatched)
        result.warnings.append(
            f"dropped {shown} from sentences whose numbers or names it does not state"
        )
    extra = _more_passages(result, more, focus)
    found, added = find_disagreements(
        result.sentences, [*result.passages, *extra], focus=focus, embedder=embedder
    )
    if not found:
        return
    found, added = _keep_cited(result, extra, found, added)
    result.disagreements = found
    joiner = "\n- " if bullets else " "
    for sentence in added:
        result.answer = (
            result.answer.rstrip() + joiner + with_markers(sentence.text, sentence.citations)
        )
    result.sentences = [*result.sentences, *added]
    stated = {n for d in found for v in d.values for n in v.citations}
    result.passages = [
        replace(p, cited=p.cited or p.n in stated)
        for p in mark_cited(result.passages, result.sentences)
    ]


def _more_passages(result: AnswerResult, more: MorePassages | None, focus: str) -> list[Passage]:
    """The passages `more` gives for the answer's first sentence with a value, numbered after
    the result's, without those the result has."""
    by_n = {p.n: p for p in result.passages}
    kinds = _kinds_asked(focus)
    anchors = _anchors(result.sentences, by_n, kinds) if more is not None and kinds else []
    if more is None or not anchors:
        return []
    have = {p.chunk_id for p in result.passages}
    fresh = [p for p in more(anchors[0].text, have) if p.chunk_id not in have]
    top = max(by_n, default=0)
    return [replace(p, n=top + i, cited=False) for i, p in enumerate(fresh, start=1)]


def _keep_cited(
    result: AnswerResult,
    extra: Sequence[Passage],
    found: list[Disagreement],
    added: list[CheckedSentence],
) -> tuple[list[Disagreement], list[CheckedSentence]]:
    """Add to `result` the `extra` passages the disagreements cite, numbered on from its own;
    the disagreements and sentences with their citations renumbered to match."""
    used = {n for d in found for v in d.values for n in v.citations}
    kept = [p for p in extra if p.n in used]
    top = max((p.n for p in result.passages), default=0)
    number = {p.n: top + i for i, p in enumerate(kept, start=1)}
    result.passages = [*result.passages, *(replace(p, n=number[p.n]) for p in kept)]

    def renumber(ns: Sequence[int]) -> list[int]:
        return [number.get(n, n) for n in ns]

    found = [
        Disagreement(d.about, [replace(v, citations=renumber(v.citations)) for v in d.values])
        for d in found
    ]
    added = [replace(s, citations=renumber(s.citations)) for s in added]
    return found, added
