"""File names that are not UTF-8, and records that are not articles, as `bot ingest` reports
them (real CLI, real Chroma, real files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.text import key_path, path_key, safe_path
from tests.kill_trials import article_text, bot_env

CAFE = os.fsdecode(b"caf\xe9.txt")  # the name `printf 'caf\xe9.txt'` makes: not UTF-8


def _bot(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=bot_env(data),
        cwd=data.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_path_key_prints_and_maps_back_to_the_bytes() -> None:
    name = os.fsdecode(b"/news/caf\xe9 \xff\x80.txt")
    key = path_key(name)
    assert key == "/news/caf\\xe9 \\xff\\x80.txt"
    key.encode("utf-8")  # storable and printable
    assert key_path(key) == name and os.fsencode(key_path(key)) == b"/news/caf\xe9 \xff\x80.txt"
    assert path_key("/news/café.txt") == "/news/café.txt"  # valid UTF-8 is itself
    assert safe_path(name) == key  # messages show the name as the index stores it


def test_a_file_name_that_is_not_utf8_is_indexed_and_the_others_are_not_affected(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "u"
    folder.mkdir()
    (folder / CAFE).write_text(article_text("Belmonde", 31_000), encoding="utf-8")
    (folder / "good.txt").write_text(article_text("Culvane", 8_000), encoding="utf-8")
    data = tmp_path / "data"
    first = _bot(data, "ingest", str(folder), "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["added"] == 2
    shown = str(folder) + "/caf\\xe9.txt"
    listed = json.loads(_bot(data, "sources", "--json").stdout)
    assert sorted(p for row in listed for p in row["paths"]) == [shown, str(folder / "good.txt")]
    asked = _bot(data, "ask", "How much will the Belmonde initiative cost?", "--json")
    passages = json.loads(asked.stdout)["passages"]
    assert any(p["path"] == shown and "Belmonde" in p["text"] for p in passages), passages
    again = _bot(data, "ingest", str(folder), "--json")
    assert json.loads(again.stdout)["unchanged"] == 2  # the stored name finds the file again
    (folder / CAFE).unlink()
    gone = json.loads(_bot(data, "ingest", str(folder), "--json").stdout)
    assert (gone["removed"], gone["unchanged"], gone["failed"]) == (1, 1, 0)
    listed = json.loads(_bot(data, "sources", "--json").stdout)
    assert [row["paths"] for row in listed] == [[str(folder / "good.txt")]]


@pytest.mark.parametrize(
    ("value", "reason"),
    [(7, '"text" is a number'), ([1, 2], '"text" is a list'), (None, '"text" is null')],
)
def test_each_bad_record_says_why_it_was_skipped(
    tmp_path: Path, value: object, reason: str
) -> None:
    folder = tmp_path / "j"
    folder.mkdir()
    records = [{"title": "One", "text": value}, {"title": "Two", "body": value}]
    (folder / "bad.json").write_text(json.dumps(records), encoding="utf-8")
    (folder / "bad.jsonl").write_text(
        "\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8"
    )
    report = json.loads(_bot(tmp_path / "data", "ingest", str(folder), "--json").stdout)
    assert report["failed"] == 2
    warnings = {(w["path"], w["warning"]) for w in report["warnings"]}
    body = reason.replace('"text"', '"body"')
    for name, label in (("bad.json", "record"), ("bad.jsonl", "line")):
        path = str(folder / name)
        assert (path, f"{label} 1: {reason}" + ("" if value is None else ", not a string")
                + "; skipped") in warnings, warnings  # fmt: skip
        assert any(p == path and w.startswith(f"{label} 2: {body}") for p, w in warnings)


def test_the_reasons_of_many_bad_records_are_capped(tmp_path: Path) -> None:
    from bot.sources.formats import MAX_WARNINGS_PER_FILE

    folder = tmp_path / "j"
    folder.mkdir()
    records = [{"text": n} for n in range(200)]
    (folder / "many.json").write_text(json.dumps(records), encoding="utf-8")
    done = _bot(tmp_path / "data", "ingest", str(folder))
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(lines) == MAX_WARNINGS_PER_FILE
    assert "record 1: " in lines[0] and lines[-1].endswith("191 more warnings like these")
    assert [ln for ln in done.stderr.splitlines() if ln.startswith("failed: ")] == [
        f"failed: {folder / 'many.json'}: no article records found"
    ]


def test_html_with_only_a_title_is_not_an_article(tmp_path: Path) -> None:
    folder = tmp_path / "h"
    folder.mkdir()
    (folder / "title.html").write_text(
        "<html><head><title>Only a title here</title></head><body></body></html>", encoding="utf-8"
    )
    (folder / "real.html").write_text(
        "<html><head><title>Harbour</title></head><body><p>"
        + article_text("Hestrine", 2_500)
        + "</p></body></html>",
        encoding="utf-8",
    )
    report = json.loads(_bot(tmp_path / "data", "ingest", str(folder), "--json").stdout)
    assert report["added"] == 1
    assert [(e["path"], e["error"].split(":")[0]) for e in report["errors"]] == [
        (str(folder / "title.html"), "no article text")
    ]
