"""Whether a text is about a summary's topic: it covers most of the topic's content words, the
rarer ones counting more; or it sits close to the topic in embedding space; or it holds part of
the topic's words and sits near it.

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

# A text covering this share of the topic's weight is about it: with two topic words, the
# rarer one (or either, when they are as rare) must be there.
COVER_SHARE = 0.5
# A text this close to the topic is about it whatever its words: with MiniLM a sentence sharing
# only the topic's setting ("before the landslide") can reach 0.5, a close paraphrase 0.6 and more.
CLOSE_COSINE = 0.6
# A text holding part of the topic's words and this close to it is about it ("12 killed when a
# hillside collapsed" for "the landslide death toll"); texts that share only the topic's setting
# or only its quantity (another event's toll) sit under 0.4.
NEAR_COSINE = 0.42


def concepts(words: Iterable[str]) -> set[str]:
    """Content-word stems, each replaced by its quantity class when it has one."""
    return {quantity_class(w) or w for w in words if not w[:1].isdigit()}


def topic_shares(topic: str, word_sets: Sequence[Iterable[str]]) -> np.ndarray:
    """For each text (its content words), the share of the topic's weight it covers; a topic
    word weighs log(1 + texts / texts holding it), so words every text holds count least."""
    wanted = concepts(content_words(topic))
    held = [concepts(words) & wanted for words in word_sets]
    if not wanted or not held:
        return np.zeros(len(held), dtype=np.float32)
    weight = {
        w: math.log(1 + len(held) / max(1, sum(w in h for h in held))) for w in sorted(wanted)
    }
    total = sum(weight.values())
    return np.array([sum(weight[w] for w in h) / total for h in held], dtype=np.float32)


def about_topic(topic: str, word_sets: Sequence[Iterable[str]], cosines: np.ndarray) -> np.ndarray:
    """Which texts are about `topic` (see the module docstring), given each one's content words
    and cosine with the topic."""
    shares = topic_shares(topic, word_sets)
    cosines = np.asarray(cosines)
    near = (shares > 0) & (cosines >= NEAR_COSINE)
    return (shares >= COVER_SHARE) | (cosines >= CLOSE_COSINE) | near
