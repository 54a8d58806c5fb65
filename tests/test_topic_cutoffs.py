"""`summarise --topic` keeps the texts about its topic by their distance from the best match, so
rewording the topic (which moves every cosine alike) keeps the same texts, and a text that shares
the topic's words but trails far behind is about something else. Real MiniLM; sentences invented
here."""

from __future__ import annotations

import numpy as np
import pytest

from bot.answer.topic import about_topic
from bot.core.words import content_words

TOPIC = "the landslide death toll"
SENTENCES = [
    "The death toll from the landslide in Varnholt has risen to 17, the agency said.",
    "The death toll from the Varnholt landslide rose to 16 on Monday.",
    "The number of people killed in the Varnholt landslide rose to 14 on Sunday.",
    "At least 12 people were killed and 30 injured when a hillside collapsed onto homes.",
    "Drivers crossing the Harbour Bridge will pay a higher toll from May.",
    "Some 210 homes were evacuated as engineers checked the slope above the town.",
    "Volunteers brought food and blankets to the shelters.",
]
ON_TOPIC = [True, True, True, True, False, False, False]


@pytest.fixture(scope="module")
def cosines() -> np.ndarray:
    from bot.index.embeddings import LocalMiniLM

    vectors = np.asarray(LocalMiniLM().embed([*SENTENCES, TOPIC]), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors[:-1] @ vectors[-1]


def _words() -> list[list[str]]:
    return [content_words(s) for s in SENTENCES]


def test_the_texts_about_the_topic_are_kept_and_a_shared_word_alone_is_not(cosines) -> None:  # type: ignore[no-untyped-def]
    assert about_topic(TOPIC, _words(), cosines).tolist() == ON_TOPIC


@pytest.mark.parametrize("shift", [-0.06, -0.03, 0.03, 0.06])
def test_rewording_that_moves_every_cosine_alike_keeps_the_same_texts(cosines, shift) -> None:  # type: ignore[no-untyped-def]
    assert about_topic(TOPIC, _words(), cosines + shift).tolist() == ON_TOPIC
