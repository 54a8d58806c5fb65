"""Reading a question for the refusal gate: names (possessives, quoted phrases, surnames), the
outlets a question names, sources the index lacks, sentences that cover the question's own words,
extra answer sentences, and the date of a "when" answer. Pure functions over hand-made passages;
the extractive answer uses the repository's fake embedder (no model needed for these rules)."""

from __future__ import annotations

from bot.answer.answer_type import question_names, read_question
from bot.answer.answerability import Quotable, answers, article_contexts, judge
from bot.answer.extractive import extractive_answer
from bot.answer.when import answer_date
from bot.core.types import CheckedSentence, Passage
from bot.core.values import name_matches
from bot.index.search import question_names as search_names

from .fakes import HashEmbedder


def passage(
    n: int, text: str, article: str, *, source: str = "Wire", published: str = ""
) -> Passage:
    return Passage(
        n, f"c{n}", article, f"Title {n}", source, "", published, "p", 0, len(text), text
    )


def quotes(passages: list[Passage]) -> list[Quotable]:
    return [Quotable(p.article_id, p.text) for p in passages]


# --- names ---------------------------------------------------------------------------------------


def test_a_possessive_ends_a_name() -> None:
    names = question_names(
        "Has Richelle Cranston's AFLW career changed since Nike's Latin America?"
    )
    assert [a.text for a in names] == ["Richelle Cranston", "AFLW", "Nike", "Latin America"]


def test_a_quoted_phrase_in_sentence_case_is_no_name() -> None:
    names = question_names("Did both praise 'Universal travel adapters' and 'Port Calder'?")
    assert [a.text for a in names] == ["Port Calder"]


def test_name_words_have_one_home_in_core() -> None:
    text = "Officials said. Crowds met Dario Mensah in Port Calder; Lumora grew."
    assert [m.group() for m in name_matches(text)] == ["Dario", "Mensah", "Port", "Calder"]
    with_openers = [m.group() for m in name_matches(text, openers=True)]
    assert with_openers == ["Officials", "Crowds", "Dario", "Mensah", "Port", "Calder", "Lumora"]
    # Retrieval's rare terms read the same words, plus words holding a digit.
    assert search_names("Lumora's Quorvel2 funding?") == ["Lumora's", "Quorvel2"]


def test_a_name_of_several_words_is_covered_by_its_surname_but_not_by_a_shared_head() -> None:
    passages = [
        passage(1, "Poyer lifted the defence, and the Cowboys beat the Seahawks.", "a"),
        passage(2, "Eastfield FC appointed a coach. The bridge was repainted.", "b"),
    ]
    contexts = article_contexts(passages)

    def covered(question: str) -> bool:
        anchor = read_question(question).anchors[0]
        return any(c.covers(anchor) for c in contexts.values())

    assert covered("What did Jordan Poyer do?")
    assert covered("Did the Dallas Cowboys win?")
    assert not covered("Who coaches Riverton FC?")  # "FC" also heads "Eastfield FC"
    assert not covered("When did Old Mill Bridge open?")  # "bridge" is a common word here


# --- outlets and sources -------------------------------------------------------------------------


def test_outlets_the_question_names_are_neither_names_nor_terms() -> None:
    outlets = ["Business Today | Latest Stock Market And Economy News India", "The New York Times"]
    question = (
        "Does the article from Business Today | Latest Stock Market And Economy News India "
        "discuss Italy, while a New York Times report covers Fulham?"
    )
    needs = read_question(question, outlets)
    assert [a.text for a in needs.anchors] == ["Italy", "Fulham"]
    assert needs.outlets == 2
    assert not {"latest", "stock", "market", "economi", "india"} & needs.terms
    assert read_question(question).outlets == 0


def test_a_publisher_the_index_lacks_is_refused_by_name() -> None:
    passages = [passage(1, "Apple will ship a new headset next year, its chief said.", "a")]
    needs = read_question("What did a Bloomberg article say about Apple's headset plans?")
    assert [a.text for a in needs.sources] == ["Bloomberg"]
    verdict = judge(needs, passages, quotes(passages))
    assert not verdict.answerable and "Bloomberg" in verdict.why
    indexed = read_question(
        "What did a Bloomberg article say about Apple's headset?", ["Bloomberg"]
    )
    assert indexed.sources == () and indexed.outlets == 1


def test_a_question_comparing_two_outlets_is_judged_on_every_report() -> None:
    outlets = ["Sporting News", "The Roar"]
    passages = [
        passage(1, "FC Cincinnati won the Supporters' Shield.", "a", source="Sporting News"),
        passage(2, "Aston Villa beat Fulham 3-1 at Villa Park.", "b", source="The Roar"),
    ]
    question = (
        "Did the Sporting News report on FC Cincinnati's achievement before The Roar mentioned "
        "Aston Villa's victory over Fulham?"
    )
    verdict = judge(read_question(question, outlets), passages, quotes(passages))
    assert verdict.answerable, verdict.why
    assert verdict.articles == {"a", "b"}


# --- sentences that answer ------------------------------------------------------------------------


def test_a_number_about_the_same_bridge_does_not_answer_what_the_question_presupposes() -> None:
    passages = [
        passage(
            1,
            "Drivers crossing the Harbour Bridge will pay more, a tax on people, critics said. "
            "About 38,000 vehicles cross the Harbour Bridge each day.",
            "a",
        )
    ]
    sentences = [
        Quotable("a", "About 38,000 vehicles cross the Harbour Bridge each day.", passages[0].text)
    ]
    needs = read_question("How many people died when the Harbour Bridge collapsed?")
    assert not answers(needs, sentences[0])
    assert not judge(needs, passages, sentences).answerable
    toll = read_question("How many vehicles cross the Harbour Bridge each day?")
    assert answers(toll, sentences[0])


def test_an_extra_how_many_sentence_must_count_what_was_asked() -> None:
    text = (
        "Officials said 4,500 Russian soldiers had been killed. "
        "Sixteen children have been killed and 45 wounded since the fighting began."
    )
    answer = extractive_answer(
        "How many Russian soldiers were killed?", [passage(1, text, "a")], HashEmbedder()
    )
    assert "4,500 Russian soldiers" in answer
    assert "children" not in answer


# --- when -----------------------------------------------------------------------------------------


def test_a_when_answer_takes_no_date_from_a_sentence_about_something_else() -> None:
    passages = [
        passage(1, "The visa requirement was temporarily lifted.", "a", published="2022-03-01"),
        passage(2, "He also announced Monday he will free prisoners.", "a", published="2022-03-01"),
    ]
    sentences = [
        CheckedSentence("The visa requirement was temporarily lifted [1].", [1], True),
        CheckedSentence("He also announced Monday he will free prisoners [2].", [2], True),
    ]
    needs = read_question("When was the visa requirement lifted?")
    found = answer_date(needs, sentences, passages)
    assert found is not None
    assert found["value"] == "2022-03-01" and found["source"] == "published"
    prisoners = read_question("When did he announce he will free prisoners?")
    found = answer_date(prisoners, sentences, passages)
    assert found is not None and found["text"] == "Monday"


def test_a_follow_up_whose_own_words_no_passage_holds_is_judged_by_its_subject() -> None:
    passages = [
        passage(1, "Riverton council voted to raise water rates by 9 percent from July 1.", "a"),
        passage(2, "The Riverton flood closed the sports hall for a week.", "b"),
    ]
    rewrite = "When does it take effect? (Riverton, council, water, rates)"
    verdict = judge(read_question(rewrite), passages, quotes(passages))
    assert verdict.answerable, verdict.why
    assert verdict.articles == {"a"}
    # Typed on its own, the question says nothing the passages hold.
    assert not judge(
        read_question("When does it take effect?"), passages, quotes(passages)
    ).answerable


def test_a_comparison_of_reports_quotes_them_when_no_sentence_is_close() -> None:
    passages = [
        passage(1, "The defence needs to pick up the pieces before the Bengals game.", "a"),
        passage(2, "Poyer lifted others through versatility and sacrifice.", "b"),
    ]
    question = (
        "Does the Wire article credit Jordan Poyer for the defence, while the Post article "
        "says the Baltimore Ravens defence must improve before the Cincinnati Bengals game?"
    )
    needs = read_question(question, ["Wire", "Post"])
    answer = extractive_answer(
        question, passages, HashEmbedder(), min_relevance=0.99, articles={"a", "b"}, needs=needs
    )
    assert answer != "The articles don't say."
