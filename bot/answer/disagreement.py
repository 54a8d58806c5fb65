"""Disagreement between articles: what an answer states against what other outlets state about the
same thing, with different numbers, dates or names. `ask` and `summarise` both report it from here.

For each sentence of the answer that states a value (bot.core.values) and cites a passage, the
sentences of the other articles' passages are compared with it:

1. About the same thing: the two sentences' cosine reaches SAME_THING_COSINE (content-word
   Jaccard, values aside, reaches SAME_THING_JACCARD without an embedder).
2. The same part of it: the answer sentence's clause that holds values and is closest to the
   focus (the question or topic; every such clause without one) against the other sentence's
   clause closest to it, at CLAUSE_COSINE at least (Jaccard as above without an embedder).
3. Different values of one kind (numbers before dates before names; a number with a scale word
   or a percent sign only against another such; a name only when the other side's passages never
   mention it), unless each side names, before its value, something the other side's passages
   never mention ("Quorvel1 will cost ..." against "Quorvel2 will cost ...": two subjects, where
   "Mayor Ilka Dorn said ... 10" against "9 died" is one subject and a speaker), and the focus's
   names must be in the other article's passage.

Each disagreement lists every value with the passages that state it, newest report first (unknown
dates last), and the sentences that state the other values are added to the answer, each citing
its own passage, so the reader sees every version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from bot.answer.checking import clauses_of
from bot.answer.extractive import news_sentences
from bot.core.markers import with_markers
from bot.core.text import clip, replace_surrogates
from bot.core.types import (
    AnswerResult,
    CheckedSentence,
    Disagreement,
    Passage,
    StatedValue,
    mark_cited,
)
from bot.core.values import Value, stated_names, stated_values, word_set
from bot.core.words import content_words

if TYPE_CHECKING:
    from bot.index.embeddings import Embedder

# Sentences this close state the same fact in MiniLM's space (paraphrases sit at 0.6-0.9).
SAME_THING_COSINE = 0.55
# Without an embedder: share of content words (values aside) two statements of one fact share.
SAME_THING_JACCARD = 0.5
# The clauses that carry the two values must be about the same part of the fact (short clauses
# embed noisily: a paraphrased clause of a fact can sit just under 0.5).
CLAUSE_COSINE = 0.45
# Value kinds in the order they are compared: a count that differs outweighs a differing date.
# Names are not compared: two clauses naming different people or places are far more often about
# different things ("to defend Ukraine" / "against Russia's troops") than in conflict.
KIND_ORDER = ("number", "date")
# Fewer content words than this and a sentence cannot say what its number is about.
MIN_WORDS = 4
# The same for one clause: "Item 3" or "Day 2" labels a line, "12 people died" says what.
MIN_CLAUSE_WORDS = 2
ABOUT_CHARS = 100


@dataclass
class _Claim:
    text: str
    citations: list[int]
    article: str
    published: str
    clauses: list[tuple[str, list[Value]]] = field(default_factory=list)  # those with values
    words: frozenset[str] = frozenset()
    passage_words: set[str] = field(default_factory=set)  # every word of the passages cited


@dataclass
class _Found:
    about: str
    kind: str
    sides: dict[str, tuple[Value, _Claim]]  # key -> the value and the first claim stating it


def _says_what(clause: str) -> bool:
    """Whether a clause has words enough to say what its number is about ("Item 3:" has not)."""
    return len([w for w in content_words(clause) if not w[:1].isdigit()]) >= MIN_CLAUSE_WORDS


def _claim(text: str, citations: list[int], passages: Sequence[Passage]) -> _Claim | None:
    words = frozenset(w for w in content_words(text) if not w[:1].isdigit())
    if len(words) < MIN_WORDS:
        return None
    clauses = [(c, vs) for c in clauses_of(text) if _says_what(c) and (vs := _values(c))]
    if not clauses:
        return None
    first = passages[0]
    seen = set().union(*(word_set(p.text) for p in passages))
    return _Claim(
        text, citations, first.article_id, str(first.published or ""), clauses, words, seen
    )


def _values(text: str) -> list[Value]:
    """Values that can disagree: weekday names only say when an outlet reported."""
    from bot.core.values import WEEKDAYS

    return [v for v in stated_values(text) if v.key not in WEEKDAYS]


class _Similarity:
    """Cosines between texts, each embedded once, in batches as they are added (content-word
    Jaccard on the cosine's scale without an embedder)."""

    def __init__(self, embedder: Embedder | None) -> None:
        self.embedder = embedder
        self.vectors: dict[str, np.ndarray] = {}

    def add(self, texts: Sequence[str]) -> None:
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if self.embedder is None or not missing:
            return
        vectors = np.asarray(self.embedder.embed(missing), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = np.nan_to_num(vectors / np.where(norms > 0, norms, 1.0))
        self.vectors.update(zip(missing, vectors, strict=True))

    def __call__(self, a: str, b: str) -> float:
        if self.embedder is None:
            wa = {w for w in content_words(a) if not w[:1].isdigit()}
            wb = {w for w in content_words(b) if not w[:1].isdigit()}
            share = len(wa & wb) / len(wa | wb) if wa | wb else 0.0
            return share / SAME_THING_JACCARD * SAME_THING_COSINE
        return float(self.vectors[a] @ self.vectors[b])


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
        return _find(sentences, passages, focus, embedder)
    except Exception:  # noqa: BLE001 - a report the answer can do without
        return [], []


def _find(
    sentences: Sequence[CheckedSentence],
    passages: Sequence[Passage],
    focus: str,
    embedder: Embedder | None,
) -> tuple[list[Disagreement], list[CheckedSentence]]:
    by_n = {p.n: p for p in passages}
    anchors = [
        claim
        for s in sentences
        if s.supported and s.citations and s.citations[0] in by_n
        if (claim := _claim(s.text, list(s.citations), [by_n[n] for n in s.citations if n in by_n]))
    ]
    if not anchors:
        return [], []
    others = [
        claim
        for p in passages
        for _, text in news_sentences(replace_surrogates(p.text), str(p.title or ""))
        if (claim := _claim(text, [p.n], [p]))
    ]
    similar = _Similarity(embedder)
    # Whole sentences first (the answerer embedded most of them already), then the clauses of
    # the pairs that are about the same thing.
    similar.add([focus] * bool(focus) + [c.text for c in anchors + others])
    focus_names = stated_names(focus) if focus else set()
    pairs = []
    for anchor in anchors:
        articles = {by_n[n].article_id for n in anchor.citations if n in by_n}
        rivals = [
            c
            for c in others
            if c.article not in articles
            and focus_names <= word_set(by_n[c.citations[0]].text)
            and similar(anchor.text, c.text) >= SAME_THING_COSINE
        ]
        if rivals:
            pairs.append((anchor, rivals))
    similar.add([c for a, rivals in pairs for claim in (a, *rivals) for c, _ in claim.clauses])
    found: list[_Found] = []
    for anchor, rivals in pairs:
        for clause in _focus_clauses(anchor, focus, similar):
            _collect(found, anchor, clause, rivals, similar)
    return _report(found, sentences)


def _focus_clauses(
    anchor: _Claim, focus: str, similar: _Similarity
) -> list[tuple[str, list[Value]]]:
    """The anchor's clauses to compare: the one closest to the focus, or all without one."""
    if not focus:
        return anchor.clauses
    return [max(anchor.clauses, key=lambda c: similar(c[0], focus))]


def _collect(
    found: list[_Found],
    anchor: _Claim,
    clause: tuple[str, list[Value]],
    rivals: Sequence[_Claim],
    similar: _Similarity,
) -> None:
    """Add to `found` the rivals whose closest clause states another value of one kind."""
    text, values = clause
    for rival in rivals:
        rival_text, rival_values = max(rival.clauses, key=lambda c: similar(c[0], text))
        if similar(rival_text, text) < CLAUSE_COSINE:
            continue
        pair = _differing((text, values, anchor), (rival_text, rival_values, rival))
        if pair is None:
            continue
        mine, theirs = pair
        # One disagreement per thing: a value already reported joins its entry.
        entry = next(
            (f for f in found if f.kind == mine.kind and {mine.key, theirs.key} & set(f.sides)),
            None,
        ) or _Found(_about(text, mine), mine.kind, {})
        if entry not in found:
            found.append(entry)
        entry.sides.setdefault(mine.key, (mine, anchor))
        entry.sides.setdefault(theirs.key, (theirs, rival))


def _differing(
    side: tuple[str, list[Value], _Claim], other: tuple[str, list[Value], _Claim]
) -> tuple[Value, Value] | None:
    """The first value of one clause and of the other that differ, of the first kind where both
    state one the other lacks, when the subjects agree; None when they do not differ. A name
    differs only when the other side's passages never mention it."""
    text, values, claim = side
    other_text, other_values, other_claim = other
    for kind in KIND_ORDER:
        mine = [v for v in values if v.kind == kind]
        theirs = [v for v in other_values if v.kind == kind]
        keys, other_keys = {v.key for v in mine}, {v.key for v in theirs}
        pairs = [
            (a, b)
            for a in mine
            if a.key not in other_keys
            for b in theirs
            if b.key not in keys and b.scaled == a.scaled
        ]
        for a, b in pairs:
            if kind == "name" and (
                set(a.key.split()) <= other_claim.passage_words
                or set(b.key.split()) <= claim.passage_words
            ):
                continue
            if _own_subject(text, other_claim) and _own_subject(other_text, claim):
                return None  # each names something the other never mentions: two subjects
            return a, b
        if pairs:
            return None  # this kind differs, but not as one thing: a later kind cannot
    return None


def _own_subject(text: str, other: _Claim) -> bool:
    """Whether a name in the clause `text` (anywhere: its subject may follow the number) is one
    the other side's passages never mention: when both sides have one, they are about different
    things."""
    return not stated_names(text) <= other.passage_words


def _about(clause: str, value: Value) -> str:
    """The clause with its value left out: what the outlets give different values for."""
    text = f"{clause[: value.start].rstrip()} … {clause[value.end :].lstrip()}"
    return clip(text.strip(" .,;:"), ABOUT_CHARS)


def _report(
    found: list[_Found], sentences: Sequence[CheckedSentence]
) -> tuple[list[Disagreement], list[CheckedSentence]]:
    shown = {s.text for s in sentences}
    out: list[Disagreement] = []
    added: list[CheckedSentence] = []
    for entry in found:
        values = [
            StatedValue(value.text, list(claim.citations), claim.published)
            for value, claim in entry.sides.values()
        ]
        values.sort(key=lambda v: (v.published == "", _descending(v.published)))
        out.append(Disagreement(entry.about, values))
        for _, claim in entry.sides.values():
            if claim.text not in shown:
                shown.add(claim.text)
                added.append(CheckedSentence(claim.text, list(claim.citations), True, 1.0))
    return out, added


def _descending(published: str) -> tuple[int, ...]:
    """A sort key putting later ISO dates first."""
    return tuple(-ord(ch) for ch in published)


def add_disagreements(
    result: AnswerResult,
    embedder: Embedder | None,
    *,
    focus: str,
    bullets: bool = False,
    say_dropped: bool = True,
) -> None:
    """Complete a checked, answered `result` in place: say which citations were removed because
    their passage states other values (unless `say_dropped` is False: the citations were bot's
    own, not a writer's claim), find the disagreements (`find_disagreements`), add the sentences
    that give the other values (as "- " bullets with `bullets`) and mark the passages they cite."""
    mismatched = sorted({n for s in result.sentences for n in s.mismatched})
    if mismatched and say_dropped:
        shown = ", ".join(f"[{n}]" for n in mismatched)
        result.warnings.append(
            f"dropped {shown} from sentences whose numbers or names it does not state"
        )
    found, added = find_disagreements(
        result.sentences, result.passages, focus=focus, embedder=embedder
    )
    if not found:
        return
    result.disagreements = found
    joiner = "\n- " if bullets else " "
    for sentence in added:
        result.answer = (
            result.answer.rstrip() + joiner + with_markers(sentence.text, sentence.citations)
        )
    result.sentences = [*result.sentences, *added]
    result.passages = mark_cited(result.passages, result.sentences)
