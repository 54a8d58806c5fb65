"""Plain-text metadata: the outlet and date a wire story's byline and dateline give."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest

from bot.sources.article import LoadResult
from bot.sources.dateline import dateline_prefix_end, is_furniture_line, is_headline, read_header
from bot.sources.formats import load_file

NORTHWIRE = (
    "Flash flood kills 12 in Riverton as Kessel River bursts its banks\n\n"
    "RIVERTON, March 13 (Northwire) — At least 12 people were killed, the emergency service "
    "said.\n\n"
    "Photo: Rescue crews search flooded houses on Mill Street. (Northwire/Jonas Okafor)\n\n"
    "The river rose by 3.2 metres on Wednesday, the weather office said.\n"
)
COURIER = (
    "Flood death toll rises to 14 as Riverton counts the cost\n"
    "By Ana Ruiz\n"
    "Valley Courier, 14 March 2024\n\n"
    "The number of people killed in Riverton's flash flood rose to 14 on Thursday.\n"
)
MARKET = (
    "Lumora raises 18 million dorins\n"
    "Market Watch Daily, 21 March 2024\n\n"
    "Lumora said on Wednesday it had raised 18 million dorins.\n"
)


def _write(tmp_path: Path, name: str, text: str, mtime: dt.datetime | None = None) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    if mtime is not None:
        stamp = mtime.timestamp()
        os.utime(path, (stamp, stamp))
    return path


def _load(path: Path) -> LoadResult:
    return load_file(path, max_bytes=1_000_000)


def test_dateline_gives_outlet_and_date_with_year_from_mtime(tmp_path: Path) -> None:
    path = _write(tmp_path, "nw.txt", NORTHWIRE, dt.datetime(2024, 6, 1, 12))
    result = _load(path)
    record = result.articles[0]
    assert record.source == "Northwire"
    assert record.published == "2024-03-13"
    assert record.title.startswith("Flash flood kills 12")
    assert record.text == NORTHWIRE.strip()  # metadata is read, the text is not cut
    assert any("no year" in warning for warning in result.warnings)


def test_yearless_dateline_takes_the_latest_day_not_after_mtime(tmp_path: Path) -> None:
    """Saved long after that day (a copy, a checkout): the year is marked uncertain."""
    path = _write(tmp_path, "nw.txt", NORTHWIRE, dt.datetime(2024, 2, 1, 12))
    assert _load(path).articles[0].published == "2023-03-13?"


def test_yearless_dateline_without_mtime_leaves_the_date_empty() -> None:
    header = read_header(NORTHWIRE)
    assert header.outlet == "Northwire"
    assert header.published == ""
    assert not header.year_from_mtime


def test_outlet_and_date_line_after_a_byline(tmp_path: Path) -> None:
    result = _load(_write(tmp_path, "vc.txt", COURIER))
    record = result.articles[0]
    assert (record.source, record.published) == ("Valley Courier", "2024-03-14")
    assert result.warnings == []
    market = _load(_write(tmp_path, "mw.md", MARKET)).articles[0]
    assert (market.source, market.published) == ("Market Watch Daily", "2024-03-21")


@pytest.mark.parametrize(
    ("header", "outlet", "published"),
    [
        ("By Dana Reyes, Coastal Courier\nAugust 5, 2025", "", "2025-08-05"),
        ("October 2, 2025 - Metro Sport", "Metro Sport", "2025-10-02"),
        ("2 October 2025 — Metro Sport", "Metro Sport", "2025-10-02"),
        ("Tuesday, 5 August 2025", "", "2025-08-05"),
    ],
)
def test_date_lines_without_a_dateline(
    tmp_path: Path, header: str, outlet: str, published: str
) -> None:
    """A date alone on its line, or a date and an outlet joined by a dash, dates the story; a
    weekday before the date is no outlet."""
    text = f"Fire grows overnight\n\n{header}\n\nThe fire grew to 5,300 hectares on Tuesday.\n"
    result = _load(_write(tmp_path, "d.txt", text))
    record = result.articles[0]
    assert (record.source, record.published) == (outlet, published)
    for line in header.splitlines():
        assert is_furniture_line(line)
    assert not is_furniture_line("Prices rose 5 percent - Reuters")


def test_byline_alone_gives_no_outlet(tmp_path: Path) -> None:
    text = "Budget passes\nBy Tomas Weber\n\nEASTFIELD — The council approved a budget.\n"
    record = _load(_write(tmp_path, "b.txt", text)).articles[0]
    assert (record.source, record.published) == ("", "")


def test_no_dateline_and_a_date_in_the_body_is_not_taken(tmp_path: Path) -> None:
    text = (
        "Council meets\n\n"
        "The council met on Tuesday.\n"
        "Riverton, 14 March 2024\n"
        "RIVERTON, March 13 (Northwire) — A later paragraph is body text.\n"
    )
    record = _load(_write(tmp_path, "plain.txt", text)).articles[0]
    assert (record.source, record.published) == ("", "")


def test_front_matter_wins_over_the_dateline(tmp_path: Path) -> None:
    text = "---\nsource: Meridian Radio\ndate: 2024-03-15\n---\n" + NORTHWIRE
    record = _load(_write(tmp_path, "m.md", text)).articles[0]
    assert (record.source, record.published) == ("Meridian Radio", "2024-03-15")


@pytest.mark.parametrize(
    "text",
    [
        "(" * 5000 + "\n" + "RIVERTON, " + "1" * 5000 + " (" + "x" * 5000 + ") —\n",
        "A\nBy " + "Ana " * 5000 + "\n",
        "A\n" + "Market Watch, " + "9" * 100 + "\n",
        "A\nRIVERTON, March 99 (Northwire) — Text.\n",
        "A\nRIVERTON, yesterday (Northwire) — Text.\n",
        "A\nX, 31 February 2024\n",
        "\n" * 100 + "RIVERTON, March 13 (Northwire) — Text.\n",
    ],
)
def test_hostile_headers_give_nothing_quickly(text: str) -> None:
    began = time.monotonic()
    header = read_header(text, mtime=dt.datetime(2024, 6, 1).timestamp())
    assert header.published == "" or header.published.startswith("2024-03-13")
    assert "yesterday" not in header.published
    assert time.monotonic() - began < 2.0
    assert read_header("A\nRIVERTON, yesterday (Northwire) — Text.\n").published == ""


def test_huge_mtime_is_ignored() -> None:
    assert read_header(NORTHWIRE, mtime=1e30).published == ""


def test_recognisers() -> None:
    assert is_furniture_line("By Ana Ruiz")
    assert is_furniture_line("By ANA RUIZ and Tom Lee")
    assert not is_furniture_line("By noon the water had gone down.")
    assert is_furniture_line("Photo: Crews on Mill Street. (Northwire/Jonas Okafor)")
    assert is_furniture_line("(Photo by Jonas Okafor)")
    assert is_furniture_line("RIVERTON, March 13 (Northwire)")
    assert is_furniture_line("Valley Courier, 14 March 2024")
    assert not is_furniture_line("Riverton, a town of 9,000, was flooded.")
    assert is_headline("  Flood  toll rises ", "flood toll rises")
    assert not is_headline("Flood toll", "")
    line = "RIVERTON, March 13 (Northwire) — At least 12 people died."
    assert line[dateline_prefix_end(line) :] == "At least 12 people died."
    plain = "EASTFIELD — The council met."
    assert plain[dateline_prefix_end(plain) :] == "The council met."
    assert dateline_prefix_end("The council met on March 13 — again.") == 0
    assert dateline_prefix_end("RIVERTON, yesterday — Text.") == 0


def test_markdown_marks_do_not_hide_furniture() -> None:
    assert is_headline("# Council backs new roof", "Council backs new roof")
    assert is_furniture_line("*Photo: Sheets of the old roof hang over the stand.*")
    assert is_furniture_line("> By Ana Ruiz")
