"""Outlets that report different figures for one thing: `bot ask` and `bot summarise --topic`
give every figure with its citations, newest report first; outlets that agree are cited together;
other figures (another count, another event) are no conflict. Real files, real index, real
MiniLM; the articles are invented here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.ui.cli import app

# (file, outlet, published, body): a landslide whose toll rose as the days went by, each outlet
# reporting the figure of its day; one outlet repeats another's figure.
ARTICLES = [
    ("harbourline_landslide.md", "Harbourline", "2025-05-10",
     "At least 12 people were killed and 30 injured when a hillside collapsed onto homes in "
     "Varnholt early on Saturday, the civil protection agency said.\n\n"
     "Some 210 homes were evacuated as engineers checked the slope above the town.\n\n"
     "Heavy rain had soaked the hillside for a week before the collapse."),
    ("ridge_gazette_landslide.md", "Ridge Gazette", "2025-05-11",
     "The number of people killed in the Varnholt landslide rose to 14 on Sunday after "
     "rescuers recovered two more bodies from a buried street, the civil protection agency "
     "said.\n\nAuthorities said 210 homes had been evacuated and their residents moved to "
     "schools in nearby towns.\n\nThe regional governor visited the site on Sunday afternoon."),
    ("coast_wire_landslide.md", "Coast Wire", "2025-05-11",
     "The Varnholt landslide has killed 14 people, the civil protection agency said on "
     "Sunday, as rescue teams kept digging through the mud.\n\n"
     "Volunteers from neighbouring villages brought food and blankets to the shelters."),
    ("north_echo_landslide.md", "North Echo", "2025-05-12",
     "The death toll from the Varnholt landslide rose to 16 on Monday after searchers found "
     "two bodies near the river below the town.\n\n"
     "A relief fund for the families has raised 1.5 million crowns, its organisers said."),
    ("valley_post_landslide.md", "Valley Post", "2025-05-13",
     "The death toll from the landslide in Varnholt has risen to 17, the civil protection "
     "agency said on Tuesday, after the body of a woman was found in a collapsed garage.\n\n"
     "Geologists warned that the slope could move again if the rain returned."),
    ("harbourline_ferry.md", "Harbourline", "2025-04-02",
     "A fire on a ferry off Dunmere killed 9 people on Tuesday, the coastguard said.\n\n"
     "The ferry was carrying 140 passengers when the fire broke out in its engine room."),
]  # fmt: skip
TOLLS = ["17", "16", "14", "12"]  # newest report first


def ingest_articles(folder: Path, articles: list[tuple[str, str, str, str]]) -> Path:
    """Writes each (file, outlet, published, body) as a markdown file with front matter into
    `folder` and ingests it."""
    folder.mkdir()
    for name, outlet, published, body in articles:
        title = body.split(",")[0][:60]
        front = f"---\ntitle: {title}\nsource: {outlet}\npublished: {published}\n---\n\n"
        (folder / name).write_text(front + body + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["ingest", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def news(tmp_path: Path) -> Path:
    return ingest_articles(tmp_path / "news", ARTICLES)


def _ask(question: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["ask", question, "--llm", "extractive", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _source(data: dict[str, Any], n: int) -> dict[str, Any]:
    return next(p for p in data["passages"] if p["n"] == n)


def test_every_outlets_toll_is_given_with_its_citation_newest_first(news: Path) -> None:
    data = _ask("How many people died in the Varnholt landslide?")
    assert not data["refused"]
    assert len(data["disagreements"]) == 1, data["disagreements"]
    values = data["disagreements"][0]["values"]
    assert [v["value"] for v in values] == TOLLS
    for value in values:
        for n in value["citations"]:
            passage = _source(data, n)
            assert value["value"] in passage["text"] and passage["cited"]
            assert value["published"] >= passage["published"]
        assert value["value"] in data["answer"]
    # Two outlets give 14: one value, both cited.
    fourteen = next(v for v in values if v["value"] == "14")
    outlets = {_source(data, n)["source"] for n in fourteen["citations"]}
    assert outlets == {"Ridge Gazette", "Coast Wire"}


def test_the_terminal_says_the_articles_disagree(news: Path) -> None:
    result = CliRunner().invoke(
        app, ["ask", "How many people died in the Varnholt landslide?", "--llm", "extractive"]
    )
    assert result.exit_code == 0, result.output
    note = " ".join(result.output.split()).split("disagreement:", 1)[1]
    assert "disagree" in note
    assert [note.index(f" {toll} [") for toll in TOLLS] == sorted(
        note.index(f" {toll} [") for toll in TOLLS
    )  # the newest report first


@pytest.mark.parametrize(
    "question",
    [
        "How many homes were evacuated in Varnholt?",  # two outlets, one figure
        "How many people died in the ferry fire off Dunmere?",  # another event's toll
    ],
)
def test_the_same_figure_or_another_thing_is_no_disagreement(news: Path, question: str) -> None:
    data = _ask(question)
    assert not data["refused"]
    assert data["disagreements"] == []


def test_another_count_of_the_same_event_is_not_mixed_in(news: Path) -> None:
    data = _ask("How many people were injured in the Varnholt landslide?")
    assert "30" in data["answer"]
    for entry in data["disagreements"]:
        assert "30" not in [v["value"] for v in entry["values"]]


def test_summarise_on_a_topic_reports_the_tolls_and_keeps_to_the_topic(news: Path) -> None:
    result = CliRunner().invoke(
        app, ["summarise", "--topic", "the landslide death toll", "--llm", "extractive", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    values = [v["value"] for d in data["disagreements"] for v in d["values"]]
    assert set(TOLLS) <= set(values)
    assert "ferry" not in data["answer"].lower()


# Two reports of one fire whose sentences read differently apart from the figure asked about.
CONTAINMENT = [
    ("herald_fire.md", "Valley Herald", "2025-08-04",
     "A wildfire near the Pinecrest reservoir has burned 4,100 hectares, the county fire "
     "service said on Monday.\n\n"
     "Fire chief Marta Oyelaran said crews had contained about 20 percent of the fire's edge "
     "by Monday morning.\n\nTwo firefighters were treated for heat exhaustion."),
    ("courier_fire.md", "Coastal Courier", "2025-08-05",
     "The Pinecrest wildfire grew overnight to 5,300 hectares, officials said on Tuesday.\n\n"
     "The fire service said containment stood at 15 percent.\n\n"
     "Schools in the eastern district will stay closed until Friday."),
]  # fmt: skip


def test_values_beside_the_questions_own_word_disagree_however_the_rest_reads(
    tmp_path: Path,
) -> None:
    """ "contained about 20 percent" and "containment stood at 15 percent" both give what the
    question asks, though the two sentences are otherwise far apart."""
    ingest_articles(tmp_path / "fire", CONTAINMENT)
    data = _ask("How much of the Pinecrest fire is contained?")
    assert not data["refused"]
    found = [[v["value"] for v in d["values"]] for d in data["disagreements"]]
    assert ["15 percent", "20 percent"] in found  # the newest report first
