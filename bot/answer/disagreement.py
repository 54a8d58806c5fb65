"""Disagreement between articles: two sentences that state the same thing with different numbers."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.text import clip
from bot.core.types import CheckedSentence, Passage
from bot.core.words import content_words, stated_numbers

# Share of content words (numbers aside) two sentences must share to be about the same thing.
DISAGREEMENT_JACCARD = 0.5  # content words (numbers aside) two differing statements share


def disagreements(sentences: Sequence[CheckedSentence], passages: Sequence[Passage]) -> list[str]:
    """Pairs of summary sentences from different articles that say the same thing with different
    numbers ("15 people were injured" [1] / "12 people were injured" [2]), as one-line notes."""
    article_of = {p.n: p.article_id for p in passages}
    facts = []
    for sentence in sentences:
        numbers = stated_numbers(sentence.text)
        words = {w for w in content_words(sentence.text) if not w[:1].isdigit()}
        articles = {article_of.get(n) for n in sentence.citations}
        if numbers and len(words) >= 3 and sentence.citations:
            facts.append((sentence, numbers, words, articles))
    found = []
    for i, (a, a_numbers, a_words, a_articles) in enumerate(facts):
        for b, b_numbers, b_words, b_articles in facts[i + 1 :]:
            if a_numbers == b_numbers or a_articles & b_articles:
                continue
            if len(a_words & b_words) / len(a_words | b_words) >= DISAGREEMENT_JACCARD:
                found.append(f"the articles disagree: {_quote(a)} vs {_quote(b)}")
    return found


def _quote(sentence: CheckedSentence, limit: int = 90) -> str:
    return f"“{clip(sentence.text.rstrip('.'), limit)}” " + "".join(
        f"[{n}]" for n in sentence.citations
    )
