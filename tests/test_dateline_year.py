"""A dateline without a year ("RIVERTON, March 13 (Northwire)") takes its year as a reader would:
from a full date of the same article that agrees, else from the file's modification time when the
file was saved around that day; otherwise the date is marked uncertain and is never ordered as the
newest report."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from bot.answer.disagreement import find_disagreements
from bot.core.dates import is_uncertain, published_ts, uncertain
from bot.core.types import CheckedSentence
from bot.sources.dateline import read_header
from bot.sources.formats import load_file
from tests.test_disagreement import passage

HEAD = "Flash flood kills 12 in Riverton\n\nRIVERTON, March 13 (Northwire) — "
NO_YEAR = HEAD + "At least 12 people were killed when the Kessel River burst its banks.\n"
WITH_YEAR = NO_YEAR + "\nThe river had last flooded the town on 2 August 2019, the council said.\n"
AGREEING = NO_YEAR + "\nThe relief fund opened on 14 March 2024, the council said.\n"


def _stamp(day: dt.datetime) -> float:
    return day.timestamp()


def test_a_full_date_of_the_article_that_agrees_gives_the_year() -> None:
    late = _stamp(dt.datetime(2026, 12, 3, 12))
    header = read_header(AGREEING, mtime=late)
    assert header.published == "2024-03-13" and not header.year_from_mtime
    assert read_header(AGREEING).published == "2024-03-13"  # no file time needed


def test_a_full_date_far_from_the_dateline_day_does_not_give_the_year() -> None:
    """A flood of August 2019 recalled in the story says nothing of the story's own year."""
    saved = _stamp(dt.datetime(2025, 3, 20, 12))
    assert read_header(WITH_YEAR, mtime=saved).published == "2025-03-13"


def test_a_file_saved_around_its_dateline_day_gives_a_year_that_holds(tmp_path: Path) -> None:
    path = tmp_path / "nw.txt"
    path.write_text(NO_YEAR, encoding="utf-8")
    stamp = _stamp(dt.datetime(2025, 3, 20, 12))
    os.utime(path, (stamp, stamp))
    record = load_file(path, max_bytes=1_000_000).articles[0]
    assert record.published == "2025-03-13"


def test_a_file_saved_long_after_gives_an_uncertain_date(tmp_path: Path) -> None:
    path = tmp_path / "nw.txt"
    path.write_text(NO_YEAR, encoding="utf-8")
    stamp = _stamp(dt.datetime(2026, 12, 3, 12))
    os.utime(path, (stamp, stamp))
    result = load_file(path, max_bytes=1_000_000)
    published = result.articles[0].published
    assert published == "2026-03-13?" and is_uncertain(published)
    assert any("no year" in w for w in result.warnings)
    # Filters still place it by its best guess.
    assert published_ts(published) == published_ts("2026-03-13") > 0
    assert uncertain("") == "" and uncertain(published) == published


def test_an_uncertain_date_is_not_ordered_as_the_newest_report() -> None:
    from bot.index.embeddings import LocalMiniLM

    passages = [
        passage(1, "meridian", "2024-03-15",
                 "The death toll from the Kelby flood rose to 16 on Friday, the agency said."),
        passage(2, "northwire", "2026-03-13?",
                 "The death toll from the Kelby flood stood at 12 on Wednesday, the agency said."),
        passage(3, "courier", "",
                 "The death toll from the Kelby flood rose to 14 on Thursday, the agency said."),
    ]  # fmt: skip
    answer = [CheckedSentence(passages[0].text, [1], True, 1.0)]
    question = "What is the death toll from the Kelby flood?"
    found, _ = find_disagreements(answer, passages, focus=question, embedder=LocalMiniLM())
    assert [(v.value, v.published) for v in found[0].values] == [
        ("16", "2024-03-15"),
        ("12", "2026-03-13?"),
        ("14", ""),
    ]


def test_sources_list_an_inferred_date_after_the_known_ones_and_mark_it(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from bot.ui.cli import app

    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "nw.txt").write_text(NO_YEAR, encoding="utf-8")
    stamp = _stamp(dt.datetime(2026, 12, 3, 12))
    os.utime(folder / "nw.txt", (stamp, stamp))
    (folder / "vc.txt").write_text(
        "Flood toll rises to 14\nValley Courier, 14 March 2024\n\nThe toll rose to 14.\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(folder)]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["sources", "--json"]).output)
    rows = listed if isinstance(listed, list) else listed["articles"]
    assert [r["published"] for r in rows] == ["2024-03-14", "2026-03-13?"]
    table = runner.invoke(app, ["sources"], terminal_width=200).output
    assert "2026-03-13?" in table
