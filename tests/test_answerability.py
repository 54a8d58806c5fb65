"""Answers that answer: the expected answer type, the question's own words, refusals that name what
is missing, short and filtered questions, "when" with the date's source, and chat follow-ups.

Real Chroma index and the real bundled embedder over a small corpus written for these tests; the
LLM, where one is needed, is a queued fake.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from bot.answer.answer_type import date_mentions, holds_type, read_question
from bot.answer.answerability import Quotable, answers, judge
from bot.app.ask import AskOptions, answer_question
from bot.core.types import NO_ANSWER, Passage

from .fakes import FakeChatModel, fake_provider

ARTICLES = {
    "valley_flood.txt": (
        "Flash flood sweeps through Marlow\n"
        "Valley Herald, 4 May 2025\n"
        "MARLOW, May 3 (Valley Herald) — Twelve hours of rain sent the Ashby river over its banks "
        "on Friday night.\n"
        "Officials said 12 people died inside the city limits and 40 homes were flooded.\n"
        "Rescue teams from three towns searched the riverbanks through the night.\n"
    ),
    "crown.md": (
        "---\ntitle: Northland crown gains after rate decision\nsource: Capital Markets Wire\n"
        "published: 2025-04-10\n---\n"
        "The Northland crown rose 0.8% against the euro after the announcement.\n\n"
        "Traders had expected the central bank to keep its rate unchanged at 3.5%.\n"
    ),
    "kettle_bridge.md": (
        "---\ntitle: Kettle Bridge repairs\nsource: Marlow Courier\npublished: 2025-05-02\n---\n"
        "The Kettle Bridge was closed in April after inspectors found cracks in two of its "
        "piers.\n\n"
        "The Kettle Bridge will reopen on June 3, transport officials said on Thursday.\n\n"
        "Repairs are costing the county 1.6 million pounds.\n"
    ),
    "school.md": (
        "---\ntitle: Hollow Lane School back in use\nsource: Marlow Courier\n"
        "published: 2025-05-07\n---\n"
        "Hollow Lane School reopened on Monday after the flood waters drained from its hall.\n\n"
        "Its 180 pupils had been taught in the town library for a week.\n"
    ),
    "brigade.md": (
        "---\ntitle: Tarnby starts a volunteer fire brigade\nsource: Marlow Courier\n"
        "published: 2025-03-20\n---\n"
        "Tarnby is forming a volunteer fire brigade to cover the villages north of the "
        "river.\n\n"
        "Residents over 16 may join the Tarnby Volunteer Brigade, chief Ada Morrow said.\n\n"
        "Training starts in the spring at the old depot.\n"
    ),
    "strike.md": (
        "---\ntitle: Mayor meets striking bus drivers\nsource: Marlow Courier\n"
        "published: 2025-02-12\n---\n"
        "Bus drivers in Marlow walked out for a second day over pay.\n\n"
        "Mayor Ilya Brandt went on to address the striking drivers outside the depot. Thanking "
        'them for their patience, he urged the drivers to "go home, rest and let us talk."\n\n'
        "Brandt said the council had set aside 3 million pounds for higher wages.\n"
    ),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The articles above in a real index of their own, shared by the module's tests."""
    from bot.app.ingest import ingest_paths
    from bot.core.settings import Settings, get_settings
    from bot.index.store import open_store

    root = tmp_path_factory.mktemp("answer-corpus")
    folder = root / "news"
    folder.mkdir()
    for name, text in ARTICLES.items():
        (folder / name).write_text(text, encoding="utf-8")
    before = os.environ.get("BOT_DATA_DIR")
    os.environ["BOT_DATA_DIR"] = str(root / "data")
    get_settings.cache_clear()
    try:
        settings = Settings()
        report = ingest_paths([folder], settings)
        assert report.added == len(ARTICLES)
        yield {"settings": settings, "store": open_store(settings)}
    finally:
        if before is None:
            os.environ.pop("BOT_DATA_DIR", None)
        else:
            os.environ["BOT_DATA_DIR"] = before
        get_settings.cache_clear()


def ask(corpus: dict[str, Any], question: str, **options: Any) -> Any:
    return answer_question(
        question,
        AskOptions(llm="extractive", **options),
        settings=corpus["settings"],
        store=corpus["store"],
    )


# --- reading the question -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "kind", "names"),
    [
        ("Who won the Northland general election?", "who", ["Northland"]),
        ("When will the Kettle Bridge reopen?", "when", ["Kettle Bridge"]),
        ("How many people died?", "count", []),
        ("How much are the repairs costing?", "amount", []),
        ("Where did the river burst its banks?", "where", []),
        ("What did Mayor Ilya Brandt tell the drivers?", "say", ["Mayor Ilya Brandt"]),
        (
            "and what did the National Bank of Estravia announce?",
            "say",
            ["National Bank of Estravia"],
        ),
        ("What is the Tarnby brigade?", "other", ["Tarnby"]),
    ],
)
def test_question_kind_and_names(question: str, kind: str, names: list[str]) -> None:
    needs = read_question(question)
    assert needs.kind == kind
    assert [a.text for a in needs.anchors] == names


def test_question_terms_leave_out_names_and_question_framing() -> None:
    needs = read_question("How many people died in the Marlow flood, according to reports?")
    assert needs.terms == frozenset({"peopl", "die", "flood"})
    assert [a.text for a in needs.anchors] == ["Marlow"]


@pytest.mark.parametrize(
    ("kind", "text", "holds"),
    [
        ("count", "Officials said 12 people died inside the city limits.", True),
        ("count", "Rescue teams searched the riverbanks through the night.", False),
        ("when", "The bridge will reopen on June 3.", True),
        ("when", "School reopened on Monday.", True),
        ("when", "The bridge will reopen soon.", False),
        ("who", "Residents may join, chief Ada Morrow said.", True),
        ("who", "Residents over sixteen may join the brigade.", False),
        ("say", 'He urged the drivers to "go home and rest."', True),
        ("say", "The drivers walked out for a second day.", False),
    ],
)
def test_a_sentence_holds_the_expected_answer_type(kind: str, text: str, holds: bool) -> None:
    assert holds_type(kind, text, frozenset({"brigad", "join"})) is holds


def test_how_long_something_took_is_no_amount_unless_time_is_asked() -> None:
    took = "The tunnel opened on Thursday after four years of construction."
    cost = "The tunnel cost 640 million euros, 90 million more than planned."
    spent = read_question("How much did the harbour tunnel cost?").terms
    assert not holds_type("amount", took, spent) and holds_type("amount", cost, spent)
    asked_time = read_question("How much time did the tunnel take to build?").terms
    assert holds_type("amount", took, asked_time)


def test_date_mentions_absolute_first() -> None:
    found = date_mentions("On Monday the council said trains run again from 15 April 2025.")
    assert found[0] == "15 April 2025" and "Monday" in found


def test_term_coverage_needs_the_question_words_not_only_its_name() -> None:
    def passage(n: int, text: str, article: str) -> Passage:
        return Passage(n, f"c{n}", article, "t", "Wire", "", "", "p", 0, len(text), text)

    passages = [
        passage(1, "The Northland crown rose 0.8% against the euro.", "a"),
        passage(2, "Voters in Lorvania chose a new parliament on Sunday.", "b"),
    ]
    sentences = [Quotable(p.article_id, p.text) for p in passages]
    off = judge(read_question("Who won the Northland general election?"), passages, sentences)
    assert not off.answerable
    assert "who won the Northland general election" in off.why and "election" in off.why
    on = judge(read_question("How much did the Northland crown rise?"), passages, sentences)
    assert on.answerable and on.articles == {"a"}
    # The sentence must name what the question names: a number about something else is no count.
    needs = read_question("How many Northland banks failed?")
    assert not answers(needs, Quotable("b", "Voters in Lorvania chose 101 members of parliament."))


def test_a_count_of_deaths_is_answered_only_by_a_sentence_counting_deaths() -> None:
    """However close a sentence is to the question, "two firefighters were treated" does not say
    how many died; "the death toll rose to 17" does, in other words."""
    needs = read_question("How many firefighters died in the Pinecrest fire?")
    treated = "Two firefighters were treated for heat exhaustion in the Pinecrest fire."
    assert not answers(needs, Quotable("a", treated, similarity=0.9))
    toll = "The Pinecrest fire's death toll among firefighters rose to 2."
    assert answers(needs, Quotable("a", toll, similarity=0.9))
    killed = "Two firefighters were killed in the Pinecrest fire."
    assert answers(needs, Quotable("a", killed))
    # A count of something outside the classes keeps the usual rules.
    assert answers(
        read_question("How many beds does the shelter have?"),
        Quotable("a", "The shelter has 300 beds."),
    )


# --- refusals and answers through `bot ask` ------------------------------------------------------


def test_refusal_names_what_is_missing_and_shows_the_closest_passages(corpus: dict) -> None:
    result = ask(corpus, "Who won the Northland general election?")
    assert result.refused and result.answer == NO_ANSWER
    assert any(
        "no passage says who won the Northland general election" in w for w in result.warnings
    )
    assert any("election" in w for w in result.warnings)
    assert result.passages, "the closest passages are shown"


def test_unknown_name_is_refused_and_named(corpus: dict) -> None:
    result = ask(corpus, "When will the Harwick Bridge reopen?")
    assert result.refused
    assert any("Harwick Bridge" in w for w in result.warnings)


def test_short_question_under_a_source_filter_is_answered(corpus: dict) -> None:
    result = ask(corpus, "How many people died?", source="Valley Herald")
    assert not result.refused, result.warnings
    assert "12 people died" in result.answer


def test_who_question_answered_from_a_sentence_that_names_who(corpus: dict) -> None:
    result = ask(corpus, "who can join the Tarnby Volunteer Brigade?")
    assert not result.refused, result.warnings
    assert "Residents over 16 may join" in result.answer


def test_what_did_x_say_leads_with_the_quote_after_a_sentence_naming_x(corpus: dict) -> None:
    result = ask(corpus, "What did Mayor Ilya Brandt tell the striking drivers?")
    assert not result.refused, result.warnings
    assert "go home, rest and let us talk" in result.answer


def test_headline_and_dateline_are_never_part_of_an_answer(corpus: dict) -> None:
    result = ask(corpus, "What happened when the Ashby river flooded Marlow?")
    assert not result.refused
    assert "Flash flood sweeps through Marlow" not in result.answer
    assert "MARLOW, May 3" not in result.answer


def test_a_model_is_not_asked_when_no_sentence_answers(corpus: dict) -> None:
    model = FakeChatModel()  # any call fails: the queue is empty
    result = answer_question(
        "How many otters live in the Ashby river?",
        AskOptions(),
        settings=corpus["settings"],
        store=corpus["store"],
        provider=fake_provider(model),
    )
    assert result.refused and model.seen == []
    assert any("otters" in w for w in result.warnings)


# --- when ----------------------------------------------------------------------------------------


def test_when_answer_gives_the_date_the_text_states(corpus: dict) -> None:
    result = ask(corpus, "When will the Kettle Bridge reopen?")
    assert not result.refused
    assert result.answer_date is not None
    assert result.answer_date["value"] == "June 3" and result.answer_date["source"] == "text"
    cited = {n for s in result.sentences for n in s.citations}
    assert result.answer_date["citation"] in cited
    assert result.to_json()["answer_date"] == result.answer_date


def test_when_answer_counts_a_weekday_from_the_publication_date(corpus: dict) -> None:
    result = ask(corpus, "When did Hollow Lane School reopen?")
    assert not result.refused
    assert result.answer_date == {
        "value": "2025-05-05",  # the Monday before the report of Wednesday 7 May
        "source": "published",
        "citation": result.answer_date["citation"],
        "text": "Monday",
    }


def test_other_questions_have_no_answer_date(corpus: dict) -> None:
    result = ask(corpus, "How much are the Kettle Bridge repairs costing?")
    assert not result.refused and result.answer_date is None
    assert "1.6 million" in result.answer


# --- chat -----------------------------------------------------------------------------------------


def test_chat_when_follow_up_keeps_its_subject_and_gets_a_date(corpus: dict) -> None:
    from bot.app.chat import Chat

    chat = Chat(AskOptions(llm="extractive"), settings=corpus["settings"], store=corpus["store"])
    first = chat.ask("Why was the Kettle Bridge closed?")
    assert not first.result.refused
    reply = chat.ask("When will it reopen?")
    assert "Kettle Bridge" in reply.rewrite.question
    assert not reply.result.refused
    assert reply.result.answer_date and reply.result.answer_date["value"] == "June 3"


def test_chat_follow_up_without_names_stays_on_the_subject(corpus: dict) -> None:
    from bot.app.chat import Chat

    chat = Chat(AskOptions(llm="extractive"), settings=corpus["settings"], store=corpus["store"])
    chat.ask("What is Tarnby forming?")
    reply = chat.ask("Who leads the brigade?")
    assert "Tarnby" in reply.rewrite.question
    assert "Ada Morrow" in reply.result.answer


def test_rendered_date_line_says_where_the_date_comes_from() -> None:
    from bot.ui.render import date_line

    assert date_line({"value": "June 3", "source": "text", "citation": 2, "text": "June 3"}) == (
        "June 3 (stated in the text [2])"
    )
    line = date_line(
        {"value": "2025-05-05", "source": "published", "citation": 1, "text": "Monday"}
    )
    assert "Monday" in line and "publication date" in line and "[1]" in line
