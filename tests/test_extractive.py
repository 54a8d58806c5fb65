"""bot.answer.extractive: the no-LLM answer and summary."""

from __future__ import annotations

import dataclasses
import re
import time

import numpy as np
import pytest

from bot.answer.checking import check_answer
from bot.answer.citations import parse_citations
from bot.answer.extractive import extractive_answer, extractive_summary
from bot.core.types import Passage

from .fakes import HashEmbedder

NO_ANSWER = "The articles don't say."


def passage(n: int, text: str, article: str | None = None, published: str = "") -> Passage:
    return Passage(
        n=n,
        chunk_id=f"c{n}",
        article_id=article or f"a{n}",
        title=f"Title {n}",
        source="Outlet",
        url="",
        published=published,
        path=f"/news/{n}.txt",
        start=100 * n,
        end=100 * n + len(text),
        text=text,
    )


PASSAGES = [
    passage(
        1,
        "The storm closed the harbour for three days. Fishing boats stayed in port. "
        "The mayor promised repairs to the damaged pier.",
        published="2024-03-02",
    ),
    passage(
        2,
        "Rain fell across the region on Tuesday. The storm closed the harbour for three days. "
        "Schools reopened on Thursday.",
        published="2024-03-01",
    ),
    passage(
        3,
        "Inflation rose by 14 percent in March, the statistics office reported. "
        "Food prices drove most of the increase.",
        published="2024-04-01",
    ),
]


def test_answer_cites_every_passage_with_the_same_sentence() -> None:
    answer = extractive_answer(
        "How long was the harbour closed by the storm?", PASSAGES, HashEmbedder()
    )
    first_text, first_numbers = parse_citations(answer)[0]
    assert first_text == "The storm closed the harbour for three days."
    assert first_numbers == [1, 2]
    assert answer.count("The storm closed the harbour") == 1


def test_answer_embeds_question_and_sentences_in_one_call() -> None:
    embedder = HashEmbedder()
    extractive_answer("What drove inflation?", PASSAGES, embedder)
    assert len(embedder.calls) == 1
    assert embedder.calls[0] >= 2


def test_answer_respects_max_sentences_and_orders_by_score() -> None:
    answer = extractive_answer(
        "inflation food prices increase March", PASSAGES, HashEmbedder(), max_sentences=2
    )
    parsed = parse_citations(answer)
    assert 1 <= len(parsed) <= 2
    assert "Food prices" in parsed[0][0] or "Inflation" in parsed[0][0]
    assert all(numbers == [3] for _, numbers in parsed)


def test_no_relevant_sentence_gives_no_answer() -> None:
    assert extractive_answer("Who won the chess olympiad?", PASSAGES, HashEmbedder()) == NO_ANSWER


@pytest.mark.parametrize("passages", [[], [passage(1, "")], [passage(1, "Ok. Yes. No.")]])
def test_nothing_quotable_gives_no_answer(passages: list[Passage]) -> None:
    assert extractive_answer("Anything?", passages, HashEmbedder()) == NO_ANSWER
    assert extractive_summary(passages, HashEmbedder(), max_sentences=3) == NO_ANSWER


def test_markers_in_article_text_are_not_copied() -> None:
    passages = [passage(1, "The harbour closed for three days [12] after the storm [3].")]
    answer = extractive_answer("How long was the harbour closed?", passages, HashEmbedder())
    assert parse_citations(answer) == [("The harbour closed for three days after the storm.", [1])]


def test_answer_works_without_embedder() -> None:
    answer = extractive_answer("How long was the harbour closed by the storm?", PASSAGES, None)
    assert "harbour" in answer and "[1]" in answer


def test_answer_passes_the_citation_check() -> None:
    embedder = HashEmbedder()
    answer = extractive_answer("What happened to the harbour and the pier?", PASSAGES, embedder)
    checked = check_answer(answer, PASSAGES, embedder=embedder)
    assert not checked.refused and not checked.dropped
    assert all(s.supported for s in checked.sentences)


def test_lone_surrogates_do_not_break_it() -> None:
    passages = [passage(1, "The harbour \udcff closed for three days after the storm.")]
    assert "[1]" in extractive_answer("harbour closed \ud800", passages, HashEmbedder())


# --- summary --------------------------------------------------------------------------------------


def test_summary_is_bullets_with_markers_in_date_order() -> None:
    summary = extractive_summary(PASSAGES, HashEmbedder(), max_sentences=4)
    lines = summary.splitlines()
    assert 1 <= len(lines) <= 4
    assert all(re.fullmatch(r"- .+ (\[\d+\])+[.!?]?", line) for line in lines)
    dates = {1: "2024-03-02", 2: "2024-03-01", 3: "2024-04-01"}
    first_dates = [dates[parse_citations(line[2:])[0][1][0]] for line in lines]
    assert first_dates == sorted(first_dates)


def test_summary_merges_near_duplicates_across_articles() -> None:
    summary = extractive_summary(PASSAGES, HashEmbedder(), max_sentences=6)
    assert summary.count("The storm closed the harbour for three days") == 1
    assert "The storm closed the harbour for three days [1][2]." in summary


def test_summary_of_one_passage() -> None:
    summary = extractive_summary(PASSAGES[2:], HashEmbedder(), max_sentences=5)
    assert summary.splitlines() == [
        "- Inflation rose by 14 percent in March, the statistics office reported [3].",
        "- Food prices drove most of the increase [3].",
    ]


def test_summary_query_bias() -> None:
    summary = extractive_summary(
        PASSAGES, HashEmbedder(), max_sentences=1, query="inflation prices"
    )
    assert "[3]" in summary


def test_summary_scales_to_thousands_of_sentences() -> None:
    words = [f"w{i}" for i in range(400)]
    rng = np.random.default_rng(0)
    passages = []
    for n in range(1, 101):
        sentences = [
            "Topic " + " ".join(rng.choice(words, size=8)) + "." for _ in range(50)
        ]  # 5,000 sentences across 100 articles
        passages.append(passage(n, " ".join(sentences), published=f"2024-01-{n % 28 + 1:02d}"))
    embedder = HashEmbedder()
    start = time.perf_counter()
    summary = extractive_summary(passages, embedder, max_sentences=8)
    assert time.perf_counter() - start < 30
    assert len(summary.splitlines()) == 8
    assert len(embedder.calls) == 1 and embedder.calls[0] <= 4000


WIRE_TITLE = "Death toll rises to 17 in Riverton flood, emergency service says"
WIRE = (
    f"{WIRE_TITLE}\n"
    "By Ana Ruiz\n\n"
    "RIVERTON, March 13 (Northwire) — The death toll in the Riverton flood rose to 17 on "
    "Thursday, the regional emergency service said.\n\n"
    "Photo: Rescue crews search flooded houses in Riverton. (Northwire/Jonas Okafor)\n\n"
    "The regional emergency service said the flood toll in Riverton could rise further.\n"
)


def _wire_passage(text: str = WIRE, title: str = WIRE_TITLE) -> Passage:
    return dataclasses.replace(passage(1, text), title=title)


def test_furniture_is_never_quoted_and_the_dateline_is_cut() -> None:
    wire = _wire_passage()
    answer = extractive_answer(
        "What is the death toll of the Riverton flood, the emergency service says?",
        [wire],
        HashEmbedder(),
        max_sentences=5,
    )
    sentences = [text for text, _ in parse_citations(answer)]
    lead = "The death toll in the Riverton flood rose to 17 on Thursday, the regional emergency"
    assert any(text.startswith(lead) for text in sentences)
    for text in sentences:
        assert text in wire.text
        assert WIRE_TITLE not in text and "RIVERTON," not in text
        assert not text.startswith(("By ", "Photo:"))


def test_a_title_that_is_the_lead_sentence_is_still_quoted() -> None:
    lead = "The storm closed the harbour for three days and damaged the pier."
    text = f"{lead}\nFishing boats stayed in port.\n"
    answer = extractive_answer(
        "What did the storm do to the harbour?", [_wire_passage(text, lead)], None
    )
    assert lead.rstrip(".") in answer


def test_a_quote_without_an_end_mark_is_not_glued_to_the_next() -> None:
    headline = "Riverton flood toll rises to 17, emergency service says"
    text = f"{headline}\nThe regional emergency service said the flood toll rose to 17.\n"
    wire = _wire_passage(text, title="Another title")
    answer = extractive_answer(
        "Riverton flood toll emergency service", [wire], HashEmbedder(), max_sentences=2
    )
    parsed = [sentence for sentence, _ in parse_citations(answer)]
    assert headline in parsed
    assert "The regional emergency service said the flood toll rose to 17." in parsed
    checked = check_answer(answer, [wire], embedder=HashEmbedder())
    assert [s.citations for s in checked.sentences] == [[1], [1]]


class _Recording:
    """The bundled model, recording each text it is asked to embed."""

    def __init__(self) -> None:
        from bot.core.settings import get_settings
        from bot.index.embeddings import get_embedder

        self.model = get_embedder(get_settings())
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.model.embed(texts)


def test_the_sentences_of_articles_no_answer_may_quote_are_not_embedded() -> None:
    question = "How long was the harbour closed by the storm?"
    everything, scoped = _Recording(), _Recording()
    full = extractive_answer(question, PASSAGES, everything)
    answer = extractive_answer(question, PASSAGES, scoped, articles={"a1", "a2"})
    assert answer == full and "three days" in answer
    assert any("Inflation" in t for t in everything.texts)
    assert not any("Inflation" in t or "Food prices" in t for t in scoped.texts)
    assert len(scoped.texts) < len(everything.texts)


def test_a_near_duplicate_in_an_article_no_answer_may_quote_is_still_cited() -> None:
    same = "The storm closed the harbour for three days."
    passages = [*PASSAGES[:2], passage(3, f"{same} Ferries were cancelled.")]
    answer = extractive_answer(
        "How long was the harbour closed?", passages, _Recording(), articles={"a1"}
    )
    assert parse_citations(answer)[0] == (same, [1, 2, 3])
