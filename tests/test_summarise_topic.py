"""`bot summarise --topic` keeps to its topic: articles that only share the topic's setting (the
same town and disaster, another subject) give no bullet and are not read, and the sentences
quoted are about the topic, not merely central. Real files, real index, real MiniLM; the
articles are invented here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.ui.cli import app
from tests.test_conflicts import ARTICLES, ingest_articles

# The landslide's setting, other subjects: a train line, a relief fund, water rates.
SETTING = [
    ("north_echo_rail.md", "North Echo", "2025-05-14",
     "The Varnholt rail line will reopen on June 2, the operator said on Wednesday.\n\n"
     "About 4,800 passengers a day used the line before the landslide, most of them commuters "
     "to the city.\n\nThe operator said replacement buses would run until then."),
    ("valley_post_fund.md", "Valley Post", "2025-05-15",
     "A relief fund for families hit by the Varnholt landslide has raised 2.1 million crowns "
     "from about 6,300 donors, its organisers said on Thursday.\n\n"
     "The money will pay for temporary housing and school supplies."),
    ("harbourline_rates.md", "Harbourline", "2025-05-16",
     "Varnholt's council approved a 9 percent rise in water rates on Friday to pay for "
     "repairs to mains damaged in the landslide.\n\n"
     "The average household will pay 38 crowns more a year."),
]  # fmt: skip


@pytest.fixture
def news(tmp_path: Path) -> Path:
    return ingest_articles(tmp_path / "news", [*ARTICLES, *SETTING])


def test_a_topic_summary_reads_and_quotes_only_what_is_about_the_topic(news: Path) -> None:
    args = ["summarise", "--topic", "the landslide death toll", "--llm", "extractive", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    setting = {name for name, *_ in SETTING}
    read = {Path(p["path"]).name for p in data["passages"]}
    assert not read & setting, read
    bullets = [line for line in data["answer"].splitlines() if line.startswith("- ")]
    assert bullets
    for bullet in bullets:
        assert any(w in bullet.lower() for w in ("killed", "death", "toll", "dead")), bullet


def test_the_sentences_quoted_cover_the_topic_not_only_its_setting() -> None:
    """Of the toll articles' sentences, those about the toll are quoted ("killed" covers "death
    toll"); evacuations, rain and volunteers are not, however central."""
    from bot.answer.extractive import extractive_summary
    from bot.core.types import Passage
    from bot.index.embeddings import LocalMiniLM

    texts = [body for *_, body in ARTICLES[:5]]
    passages = [
        Passage(n, f"c{n}", f"a{n}", "", f"s{n}", "", "", "", 0, len(t), t)
        for n, t in enumerate(texts, start=1)
    ]
    text = extractive_summary(
        passages, LocalMiniLM(), max_sentences=10, query="the landslide death toll"
    )
    assert "12 people were killed" in text and "rose to 16" in text
    for off in ("evacuated", "Heavy rain", "Volunteers", "governor", "Geologists"):
        assert off not in text, text
