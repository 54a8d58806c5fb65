"""Who, by name: two outlets that give a "who" question different people for the same role.

A sentence answers "who" with the name (bot.core.values) that stands closest to the question's
role words (its content words other than its own names: "new head coach", "replaces"), each
weighted by 1 / distance in content words, within ROLE_WORDS. Two sentences of different articles
give different answers when their answering names share a role word and neither article names
the other's person at all (by surname, the name's last word): an outlet that mentions both people
is not contradicting the other by naming one of them, and "Mensah" against "Dario Mensah" is one
person. Two roles are different when a role word of the question stands right before a word both
sentences share and the other sentence has another word there ("finance minister" / "health
minister").

Whether the two sentences are about the question at all (their cosine with it) is judged by
bot.answer.disagreement, which reports these pairs as it reports numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.answer.extractive import news_sentences
from bot.answer.value_frames import content_tokens
from bot.core.text import replace_surrogates
from bot.core.types import CheckedSentence, Passage
from bot.core.values import WEEKDAYS, Value, stated_names, stated_values, word_set
from bot.core.words import WORD_RE, content_words

# Content words either side of a name that can say what role it has: "Dario Mensah as their
# new head coach" puts the role three words on; further off a sentence has moved on.
ROLE_WORDS = 6


@dataclass(frozen=True)
class NameClaim:
    """A sentence, the passage it comes from, and the name it answers with."""

    text: str
    citations: tuple[int, ...]
    passage: Passage
    name: Value
    roles: frozenset[str]  # the question's role words near the name


def _role_words(focus: str) -> frozenset[str]:
    """The question's content words other than its names: the role it asks who holds."""
    named = set(content_words(" ".join(stated_names(focus))))
    return frozenset(w for w in content_words(focus) if not w[:1].isdigit() and w not in named)


def answering_name(text: str, roles: frozenset[str], asked: set[str]) -> NameClaim | None:
    """The name of `text` nearest the role words (none of whose words the question names), with
    the role words near it; None when no name is near one or two are equally near."""
    names = [
        v
        for v in stated_values(text)
        if v.kind == "name" and v.key not in WEEKDAYS and not set(v.key.split()) & asked
    ]
    every = [v for v in stated_values(text) if v.kind == "name"]
    tokens = [t for t in content_tokens(text, 0) if not any(v.start <= t[0] < v.end for v in every)]
    scored = []
    for name in names:
        before = [t[2] for t in tokens if t[1] <= name.start][::-1][:ROLE_WORDS]
        after = [t[2] for t in tokens if t[0] >= name.end][:ROLE_WORDS]
        near = {w: 1.0 / d for side in (before, after) for d, w in enumerate(side, 1) if w in roles}
        scored.append((sum(near.values()), frozenset(near), name))
    scored = sorted((s for s in scored if s[0] > 0), key=lambda s: -s[0])
    if not scored or (len(scored) > 1 and scored[0][0] == scored[1][0]):
        return None
    _, near_roles, name = scored[0]
    return NameClaim(text, (), _NO_PASSAGE, name, near_roles)


def _pairs_of_words(text: str) -> list[tuple[str, str]]:
    """Each word with the next, as stems ("" for a stopword)."""
    stems = [(content_words(m.group(0)) or [""])[0] for m in WORD_RE.finditer(text)]
    return list(zip(stems, stems[1:], strict=False))


def different_roles(a: str, b: str, roles: frozenset[str]) -> bool:
    """Whether one sentence puts a role word of the question right before a word the other puts
    another content word before: "finance minister" against "health minister"."""
    for first, second in ((a, b), (b, a)):
        other_words = set(content_words(second))
        before = {w: x for x, w in _pairs_of_words(second) if x and x not in roles}
        for x, w in _pairs_of_words(first):
            if x in roles and w and w in before and x not in other_words:
                return True
    return False


def name_pairs(
    sentences: Sequence[CheckedSentence], passages: Sequence[Passage], focus: str
) -> list[tuple[NameClaim, NameClaim]]:
    """The answer's sentences and the other articles' passage sentences that answer the "who"
    question `focus` with different people for the same role (see the module docstring)."""
    roles = _role_words(focus)
    asked = stated_names(focus)
    by_n = {p.n: p for p in passages}
    anchors = []
    for s in sentences:
        if s.supported and s.citations and s.citations[0] in by_n:
            found = answering_name(s.text, roles, asked)
            if found is not None:
                anchors.append(_placed(found, tuple(s.citations), by_n[s.citations[0]]))
    rivals = [
        _placed(found, (p.n,), p)
        for p in passages
        if 2 * len(asked & word_set(f"{p.title} {p.text}")) >= len(asked)
        for _, text in news_sentences(replace_surrogates(p.text), str(p.title or ""))
        if (found := answering_name(text, roles, asked)) is not None
    ]
    return [(a, r) for a in anchors for r in rivals if _differ(a, r, roles, by_n)]


_NO_PASSAGE = Passage(0, "", "", "", "", "", "", "", 0, 0, "")


def _placed(claim: NameClaim, citations: tuple[int, ...], passage: Passage) -> NameClaim:
    return NameClaim(claim.text, citations, passage, claim.name, claim.roles)


def _differ(a: NameClaim, b: NameClaim, roles: frozenset[str], by_n: dict[int, Passage]) -> bool:
    """Whether two claims of different articles name different people for one role, each
    unknown to the other's article."""
    if a.passage.article_id == b.passage.article_id or not a.roles & b.roles:
        return False
    if different_roles(a.text, b.text, roles):
        return False
    seen_a = set().union(*(word_set(by_n[n].text) for n in a.citations if n in by_n))
    seen_b = word_set(f"{b.passage.title} {b.passage.text}")
    return a.name.key.split()[-1] not in seen_b and b.name.key.split()[-1] not in seen_a
