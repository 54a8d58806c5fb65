"""Disagreement by name ("who"), by a count out of a total ("36 of the 90 seats"), by a toll
whose rival sentence also counts the injured; an amount of another thing is none. Real MiniLM;
articles invented here."""

from __future__ import annotations

import pytest

from bot.answer.checking import check_answer
from bot.answer.disagreement import find_disagreements
from bot.core.types import Passage, StatedValue
from tests.test_disagreement import passage


@pytest.fixture(scope="module")
def embedder():  # type: ignore[no-untyped-def]
    from bot.index.embeddings import LocalMiniLM

    return LocalMiniLM()


def _values(answer: str, passages: list[Passage], question: str, embedder) -> list[list[str]]:  # type: ignore[no-untyped-def]
    checked = check_answer(answer, passages, embedder=embedder)
    found, _ = find_disagreements(checked.sentences, passages, focus=question, embedder=embedder)
    return [sorted(v.value for v in f.values) for f in found]


COACH = [
    passage(1, "harwick-herald", "2025-02-07",
            "Harwick Town named Tomas Berg as their new head coach on Thursday, replacing Ole "
            "Strand, who was sacked in January. Berg, 44, signed a two-year contract."),
    passage(2, "dunmere-post", "2025-02-06",
            "Harwick Town have appointed former Dunmere Athletic manager Ivo Sandell as head "
            "coach to replace Ole Strand, two people familiar with the decision said on "
            "Thursday."),
    passage(3, "velmar-wire", "2025-02-06",
            "Harwick Town's chairman Jonas Falk said the board had met four candidates."),
]  # fmt: skip
BERG_ANSWER = COACH[0].text.split(". ")[0] + " [1]."


@pytest.mark.parametrize(
    "question",
    ["Who is Harwick Town's new head coach?", "Who replaces Ole Strand at Harwick Town?"],
)
def test_two_outlets_naming_different_people_for_one_role_disagree(embedder, question) -> None:  # type: ignore[no-untyped-def]
    checked = check_answer(BERG_ANSWER, COACH, embedder=embedder)
    found, added = find_disagreements(checked.sentences, COACH, focus=question, embedder=embedder)
    assert [[v.value for v in f.values] for f in found] == [["Tomas Berg", "Ivo Sandell"]]
    assert found[0].values[0] == StatedValue("Tomas Berg", [1], "2025-02-07")  # newest first
    assert [s.citations for s in added] == [[2]] and "Ivo Sandell" in added[0].text


def test_the_same_person_by_surname_or_another_role_is_no_disagreement(embedder) -> None:  # type: ignore[no-untyped-def]
    same = [
        COACH[0],
        passage(2, "dunmere-post", "2025-02-06",
                "The club confirmed that Berg takes over as head coach of Harwick Town."),
    ]  # fmt: skip
    question = "Who is Harwick Town's new head coach?"
    assert _values(BERG_ANSWER, same, question, embedder) == []
    ministers = [
        passage(1, "velmar-wire", "2025-03-03",
                "Velmar's president appointed Anna Kell as finance minister on Monday."),
        passage(2, "tarsk-times", "2025-03-03",
                "Velmar's president appointed Oskar Brandt as health minister on Monday."),
    ]  # fmt: skip
    answer = ministers[0].text.rstrip(".") + " [1]."
    question = "Who was appointed finance minister of Velmar?"
    assert _values(answer, ministers, question, embedder) == []


ELECTION = [
    passage(1, "tarsk-wire", "2025-04-14",
            "Tarsk's opposition Unity Party won Sunday's election with 40.5% of the vote, but its "
            "41 seats in the 100-seat assembly leave it short of a majority. Unity Party leader "
            "Mira Holt said she would talk to the Farmers' League, which won 12 seats."),
    passage(2, "market-daily", "2025-04-15",
            "Tarsk's government bonds rallied on Tuesday after Mira Holt, whose Unity Party won "
            "39 of the 100 seats in Sunday's election, promised to keep the currency peg."),
]  # fmt: skip


def test_a_count_out_of_a_total_lines_up_with_the_same_count(embedder) -> None:  # type: ignore[no-untyped-def]
    """36 of 90 seats against 38 seats, for one party; another party's seats stay apart."""
    answer = ELECTION[0].text.split(". ")[0] + " [1]."
    question = "How many seats did the Unity Party win in Tarsk's election?"
    assert _values(answer, ELECTION, question, embedder) == [["39", "41"]]


FLOOD = [
    passage(1, "kelby-radio", "2025-05-09",
            "The death toll from Kelby's flash flood rose to 16 on Friday after searchers found "
            "two bodies on the riverbank near the village of Ostby."),
    passage(2, "north-wire", "2025-05-06",
            "At least 12 people were killed and 15 injured when the Arn River burst its banks in "
            "Kelby late on Tuesday, the regional emergency service said."),
]  # fmt: skip


def test_a_toll_is_lined_up_with_the_killed_not_with_the_injured_beside_it(embedder) -> None:  # type: ignore[no-untyped-def]
    answer = FLOOD[0].text.rstrip(".") + " [1]."
    question = "What is the death toll from the Arn River flood in Kelby?"
    assert _values(answer, FLOOD, question, embedder) == [["12", "16"]]


def test_an_amount_of_another_thing_is_no_rival_value(embedder) -> None:  # type: ignore[no-untyped-def]
    """A budget of 310 million and a 48 million roof plan of the same council are two things."""
    council = [
        passage(1, "east-times", "2025-02-04",
                "Harwick city council approved a 310 million dorin budget for the coming year on "
                "Tuesday, raising property tax by 2 percent."),
        passage(2, "harwick-post", "2025-02-08",
                "Harwick city council on Friday approved a 48 million dorin plan to replace the "
                "roof of the town's stadium."),
    ]  # fmt: skip
    answer = council[0].text.rstrip(".") + " [1]."
    assert _values(answer, council, "Harwick budget total?", embedder) == []
