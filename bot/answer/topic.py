"""Whether a text is about a summary's topic: it covers most of the topic's content words, the
rarer ones counting more and the rarest among them; or it sits close to the topic in embedding
space; or it holds part of the topic's words and sits near it. Near is judged against the best
match of the same texts, not only on an absolute scale: how close on-topic texts come to a topic
depends on how the topic is worded, and a text far behind the best one is about something else
that shares some of its words ("a bridge toll" for "the flood death toll", "the home of Eastfield
FC" for "Eastfield FC's new coach").

Centrality alone lets a sentence that only shares the setting ("passengers used the line before
the flood") into a summary on "the flood death toll". A topic word every text holds (the flood)
tells little; the words that set the topic apart (the death toll) must be there. Words of one
news quantity count as one (bot.core.words.QUANTITY_CLASSES: "killed" covers "death toll").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from bot.core.words import content_words, quantity_class

# A text covering this share of the topic's weight, the rarest topic word among it, is about it...
COVER_SHARE = 0.5
# ... unless it trails the best match by more than this: then it shares the topic's words but
# is about another thing (a report of the topic worded apart trails the best by up to 0.26).
COVER_MARGIN = 0.3
# A text this close to the best match is about the topic whatever its words (paraphrases).
CLOSE_MARGIN = 0.1
# A text holding this share of the topic's weight holds more than its setting ("12 killed when a
# hillside collapsed" holds the toll of "the landslide death toll"; "in Riverton" alone holds
# under 0.2)...
NEAR_SHARE = 0.3
# ... and may trail the best match by this much: such reports trail by 0.2-0.21.
NEAR_MARGIN = 0.26
# Under this cosine a text is about something else however the topic is worded (unrelated news
# sits under 0.2 with MiniLM).
ABOUT_FLOOR = 0.25


def concepts(words: Iterable[str]) -> set[str]:
    """Content-word stems, each replaced by its quantity class when it has one."""
    return {quantity_class(w) or w for w in words if not w[:1].isdigit()}


def _weights(
    topic: str, word_sets: Sequence[Iterable[str]]
) -> tuple[dict[str, float], list[set[str]]]:
    """Each topic word's weight, log(1 + texts / texts holding it), so words every text holds
    count least; and the topic words each text holds."""
    wanted = concepts(content_words(topic))
    held = [concepts(words) & wanted for words in word_sets]
    weight = {
        w: math.log(1 + len(held) / max(1, sum(w in h for h in held))) for w in sorted(wanted)
    }
    return weight, held


def topic_shares(topic: str, word_sets: Sequence[Iterable[str]]) -> np.ndarray:
    """For each text (its content words), the share of the topic's weight it covers."""
    weight, held = _weights(topic, word_sets)
    total = sum(weight.values())
    if not total or not held:
        return np.zeros(len(held), dtype=np.float32)
    return np.array([sum(weight[w] for w in h) / total for h in held], dtype=np.float32)


def _holds_rarest(topic: str, word_sets: Sequence[Iterable[str]]) -> np.ndarray:
    """Which texts hold a topic word of the greatest weight (the one that sets it apart)."""
    weight, held = _weights(topic, word_sets)
    top = max(weight.values(), default=0.0)
    rarest = {w for w, v in weight.items() if v >= top}
    return np.array([bool(h & rarest) for h in held], dtype=bool)


def about_topic(topic: str, word_sets: Sequence[Iterable[str]], cosines: np.ndarray) -> np.ndarray:
    """Which texts are about `topic` (see the module docstring), given each one's content words
    and cosine with the topic. Each cut-off is a distance from the best match, so rewording the
    topic, which moves every cosine alike, keeps the same texts."""
    shares = topic_shares(topic, word_sets)
    cosines = np.asarray(cosines, dtype=np.float32)
    if not len(cosines):
        return np.zeros(0, dtype=bool)
    behind = float(cosines.max()) - cosines
    cover = (shares >= COVER_SHARE) & _holds_rarest(topic, word_sets) & (behind <= COVER_MARGIN)
    near = (shares >= NEAR_SHARE) & (behind <= NEAR_MARGIN)
    return (cover | (behind <= CLOSE_MARGIN) | near) & (cosines >= ABOUT_FLOOR)
