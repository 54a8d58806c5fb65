"""Numbers and names hold citations to their passage; outlets that disagree are reported; a rare
name of the question brings its chunks in. Real MiniLM, real Chroma; articles invented here."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.answer.checking import check_answer
from bot.answer.disagreement import find_disagreements
from bot.answer.extractive import extractive_answer
from bot.core.settings import get_settings
from bot.core.types import Passage


def passage(n: int, article: str, published: str, text: str) -> Passage:
    return Passage(n, f"c{n}", article, "", article, "", published, "", 0, len(text), text)


@pytest.fixture(scope="module")
def embedder():  # type: ignore[no-untyped-def]
    from bot.index.embeddings import LocalMiniLM

    return LocalMiniLM()


STORM = [
    passage(1, "harbour-gazette", "2025-06-02",
            "Nine people died when a storm surge swept through Belmora's harbour district on "
            "Sunday night, the coastguard said. Another 30 people were hurt."),
    passage(2, "tidewater-news", "2025-06-04",
            "The number of dead in the Belmora storm surge has risen to 11, the coastguard said "
            "on Tuesday. Rescuers were still searching the marina."),
    passage(3, "coast-radio", "2025-06-03",
            "Belmora's mayor Ilka Dorn said the storm surge had killed 10 people and that the "
            "harbour wall would be rebuilt by September."),
]  # fmt: skip
PRODUCTS = [
    passage(n, f"outlet-{n}", "2025-01-01",
            f"The Vantrel{n} scheme will cost {12_340 + n:,} dorins, the ministry said. "
            f"Work on the Vantrel{n} scheme starts in spring.")
    for n in (1, 2, 3)
]  # fmt: skip


def test_a_sentence_never_cites_the_outlet_that_states_another_number() -> None:
    passages = [
        passage(1, "a", "", "Police said 15 people were injured in the crash on the ring road."),
        passage(2, "b", "", "Police said 12 people were injured in the crash on the ring road."),
    ]
    result = check_answer("15 people were injured in the crash [1][2].", passages)
    sentence = result.sentences[0]
    assert sentence.citations == [1] and sentence.mismatched == [2] and sentence.supported
    alone = check_answer("15 people were injured in the crash [2].", passages[1:]).sentences[0]
    assert not alone.supported and "15" in alone.unsupported_part
    assert alone.citations == [2]  # kept, so the reader sees which passage was claimed


def test_a_passage_naming_someone_else_loses_its_co_citation() -> None:
    passages = [
        passage(1, "a", "", "Eastvale FC named Pavel Linde as their new head coach on Friday."),
        passage(2, "b", "", "Eastvale FC named Dario Mensa as their new head coach on Friday."),
    ]
    answer = "Eastvale FC named Pavel Linde as their new head coach [1][2]."
    sentence = check_answer(answer, passages).sentences[0]
    assert sentence.citations == [1] and sentence.mismatched == [2] and sentence.supported


def test_near_identical_names_and_numbers_each_cite_their_own_passage(embedder) -> None:
    answer = extractive_answer("How much will the Vantrel2 scheme cost?", PRODUCTS, embedder)
    checked = check_answer(answer, PRODUCTS, embedder=embedder)
    for sentence in checked.sentences:
        n = int(sentence.text.split("Vantrel")[1][0])
        assert sentence.citations == [n], sentence
    found, added = find_disagreements(
        checked.sentences, PRODUCTS, focus="How much will the Vantrel2 scheme cost?",
        embedder=embedder,
    )  # fmt: skip
    assert found == [] and added == []  # three schemes, three prices: no disagreement


def test_outlets_that_disagree_on_a_toll_are_reported_newest_first(embedder) -> None:
    question = "How many people died in the Belmora storm surge?"
    answer = "The number of dead in the Belmora storm surge has risen to 11 [2]."
    checked = check_answer(answer, STORM, embedder=embedder)
    found, added = find_disagreements(checked.sentences, STORM, focus=question, embedder=embedder)
    assert len(found) == 1
    values = [(v.value, v.citations, v.published) for v in found[0].values]
    assert values == [
        ("11", [2], "2025-06-04"),
        ("10", [3], "2025-06-03"),
        ("Nine", [1], "2025-06-02"),
    ]
    assert {tuple(s.citations) for s in added} == {(1,), (3,)}
    assert all(s.supported for s in added)


def _index_storm(folder: Path) -> None:
    from bot.app.ingest import ingest_paths

    folder.mkdir()
    for p in STORM:
        front = f"---\ntitle: Storm surge in Belmora\nsource: {p.article_id}\n"
        front += f"published: {p.published}\n---\n"
        (folder / f"{p.article_id}.md").write_text(front + p.text + "\n", encoding="utf-8")
    ingest_paths([folder], get_settings())


def test_ask_gives_every_value_with_its_citation_and_json_carries_them(tmp_path: Path) -> None:
    from bot.app.ask import AskOptions, answer_question

    _index_storm(tmp_path / "news")
    result = answer_question(
        "How many people died in the Belmora storm surge?", AskOptions(llm="extractive")
    )
    assert not result.refused
    data = result.to_json()
    assert len(data["disagreements"]) == 1
    entry = data["disagreements"][0]
    assert [v["value"] for v in entry["values"]] == ["11", "10", "Nine"]
    for value in entry["values"]:
        sentence = next(s for s in data["sentences"] if value["value"] in s["text"])
        assert sentence["citations"] == value["citations"]


def test_a_model_answer_is_held_to_the_same_rules(tmp_path: Path) -> None:
    """A model that co-cites every outlet for one toll: the outlets stating other tolls lose the
    citation, and the disagreement is reported with their own sentences."""
    from bot.app.ask import answer_question

    from .fakes import FakeChatModel, fake_provider

    _index_storm(tmp_path / "news")
    model = FakeChatModel("The storm surge in Belmora killed 11 people [1][2][3].")
    result = answer_question(
        "How many people died in the Belmora storm surge?", provider=fake_provider(model)
    )
    by_n = {p.n: p for p in result.passages}
    first = result.sentences[0]
    assert [by_n[n].source for n in first.citations] == ["tidewater-news"]
    assert any("numbers or names it does not state" in w for w in result.warnings)
    assert [v.value for v in result.disagreements[0].values] == ["11", "10", "Nine"]
    assert len(result.sentences) == 3


def test_a_rare_name_of_the_question_brings_its_chunks_in(tmp_path: Path) -> None:
    from bot.app.ingest import ingest_paths
    from bot.index.search import retrieve_passages
    from bot.index.store import open_store

    folder = tmp_path / "news"
    folder.mkdir()
    towns = ["Arlen", "Brisk", "Cardow", "Dunmere", "Elsby", "Farrow", "Gessel", "Holm"]
    for i, town in enumerate(towns):
        body = (
            f"How much will the {town} housing initiative cost? The {town} council said the "
            f"housing initiative will cost {20 + i} million dorins and build {100 + i} homes."
        )
        (folder / f"{town}.md").write_text(f"---\ntitle: {town} initiative\n---\n{body}\n")
    (folder / "rare.md").write_text(  # a football report that names the sponsor once
        "---\ntitle: Eastvale win the derby\n---\nEastvale beat Northport 3-1 on Saturday in "
        "front of a full stadium. The winger scored twice before half time and the keeper saved "
        "a penalty. Fans sang in the rain, and the shirt sponsor Crepriquasha paid for the away "
        "fans' buses.\n"
    )
    ingest_paths([folder], get_settings())
    store = open_store(get_settings())
    question = "How much will the Crepriquasha initiative cost, says Zanthor?"
    found = retrieve_passages(question, store, k=3, fetch_k=8)
    holding = [p.n for p in found.passages if "Crepriquasha" in p.text]
    # Below the chunks both rankings agree on, chosen once its rare name counts.
    assert holding == [3] and found.rare_terms == {"Crepriquasha": [3]}
    assert found.unmatched_terms == ["Zanthor"]


FLOOD = [
    passage(1, "dunmore-post", "2025-09-03",
            "The toll from the Kelby flood rose to 16 on Friday, the emergency service said, as "
            "searchers reached the farms downstream."),
    passage(2, "river-herald", "2025-09-01",
            "In Kelby, 12 people were killed when the river burst its banks on Tuesday night, "
            "and 40 people were injured."),
]  # fmt: skip


def test_counts_worded_apart_are_compared_when_they_give_one_quantity(embedder) -> None:
    """ "the toll rose to 16" and "12 people were killed" share no word, but a toll and a number
    killed are one quantity; the injured are another."""
    question = "How many people died in the Kelby flood?"
    answer = "The toll from the Kelby flood rose to 16 on Friday, the emergency service said [1]."
    checked = check_answer(answer, FLOOD, embedder=embedder)
    found, _ = find_disagreements(checked.sentences, FLOOD, focus=question, embedder=embedder)
    assert [[v.value for v in f.values] for f in found] == [["16", "12"]]
    hurt = "How many people were injured in the Kelby flood?"
    found, _ = find_disagreements(checked.sentences, FLOOD, focus=hurt, embedder=embedder)
    assert all("40" not in [v.value for v in f.values] for f in found)


def test_n_of_m_counts_n() -> None:
    """In "36 of parliament's 90 seats" the value is the 36 counted, not the 90 it is out of."""
    from bot.answer.value_frames import framed_values

    framed = framed_values("The party won 36 of parliament's 90 seats on Sunday.")
    assert [(f.value.key, f.unit) for f in framed] == [("36", "seat")]


def test_the_value_compared_counts_the_quantity_asked_for(embedder) -> None:
    """Of "12 people were killed ... and 40 people were injured", a question on the death toll
    compares the 12, however close the 40 sits to the question's place name."""
    question = "What is the death toll from the Kelby river flood?"
    answer = (
        "In Kelby, 12 people were killed when the river burst its banks on Tuesday night, "
        "and 40 people were injured [2]."
    )
    checked = check_answer(answer, FLOOD, embedder=embedder)
    found, _ = find_disagreements(checked.sentences, FLOOD, focus=question, embedder=embedder)
    assert [sorted(v.value for v in f.values) for f in found] == [["12", "16"]]


def test_deaths_of_different_people_are_not_one_count(tmp_path: Path) -> None:
    """On the seeds, soldiers killed (4,500), children killed (16) and civilians who died (10,000)
    are all deaths, but not the same count: stating two is no disagreement."""
    import json

    from tests.llm_server import clean_env
    from tests.test_store_faults import finish, ingest_seeds, start_bot

    data = tmp_path / "data"
    ingest_seeds(data)
    # "16 have been killed" (children) and "10,000 civilians have died" neither: a count of
    # civilians is not the count of children asked about.
    asked = {
        "How many Russian soldiers were killed?": "4,500",
        "How many children were killed?": "16",
    }
    for question, figure in asked.items():
        code, out, err = finish(start_bot(clean_env(data), "ask", question, "--json"))
        assert code == 0, err[-2000:]
        result = json.loads(out)
        assert figure in result["answer"]
        assert result["disagreements"] == [], question
