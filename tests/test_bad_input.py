"""`bot ingest` over a generated corpus of bad files: one-line errors, no lost data, idempotent."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bot.core.text import safe_path
from tests.bad_input_corpus import (
    EXPECTED,
    SECRET_TOKEN,
    without_file_override,
    write_bad_corpus,
    write_failing_newline_name,
    write_long_line,
    written_elsewhere,
)
from tests.fakes import HashEmbedder

REPO = Path(__file__).resolve().parent.parent
GOOD = {"seed", "utf16_bom", "latin1", "crlf", "ansi_control", "utf32_bom", "bidi_override"}
# Kinds the issue names; each must be in the corpus (the test below checks the list).
NAMED_BY_THE_ISSUE = {
    "empty", "whitespace_only", "binary_nul", "nul_mid_text", "utf16_bom", "latin1",
    "invalid_utf8_mid", "too_large_50mb", "line_10mb_no_spaces", "html_script_style_only",
    "html_deeply_nested", "jsonl_broken_lines", "jsonl_wrong_types", "json_wrong_types",
    "date_impossible", "dates_odd", "unreadable_permission", "symlink_loop", "dir_symlink_loop",
    "name_newline", "name_non_ascii",
}  # fmt: skip


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_", "OPENAI_", "LANGSMITH_", "LANGCHAIN_"))
    }
    env.update(BOT_DATA_DIR=str(data_dir), ANONYMIZED_TELEMETRY="False", BOT_LLM="extractive")
    env.update(BOT_CACHE_DIR=os.environ["BOT_CACHE_DIR"])  # the run's model cache (conftest)
    env.update(extra)
    return env


def _bot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`bot ARGS` in a child that obeys file modes even when the tests run as root."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        preexec_fn=without_file_override(),
    )


def _indexed_paths(rows: list[dict[str, Any]]) -> set[str]:
    """File paths behind the indexed articles (a JSON record "path#N" counts for "path")."""
    out = set()
    for row in rows:
        for p in row["paths"]:
            out.add(re.sub(r"#\d+$", "", p))
    return out


def _in_process_expectations(folder: Path, kinds: dict[str, str]) -> dict[str, str]:
    """What this process must see: root (with its capabilities) reads chmod-000 files."""
    unreadable = [n for n, k in kinds.items() if k == "unreadable_permission"]
    return {n: "ingest" for n in unreadable if os.access(folder / n, os.R_OK)}


def _check_outcomes(
    folder: Path,
    kinds: dict[str, str],
    report: dict[str, Any],
    indexed: set[str],
    overrides: dict[str, str] | None = None,
) -> None:
    errors: dict[str, list[str]] = {}
    for item in report["errors"]:
        errors.setdefault(item["path"], []).append(item["error"])
        assert "\n" not in item["error"] and "\r" not in item["error"], item
        assert item["error"].strip(), item
    warned = {w["path"] for w in report["warnings"]}
    for w in report["warnings"]:
        assert "\n" not in w["warning"] and "\r" not in w["warning"], w
    for name, kind in kinds.items():
        key = str(folder / name)
        outcome = (overrides or {}).get(name, EXPECTED[kind])
        got_errors = errors.get(key, [])
        is_indexed = key in indexed
        where = f"{name!r} ({kind})"
        if outcome in ("ingest", "warn"):
            assert is_indexed and not got_errors, (where, got_errors)
            if outcome == "warn":
                assert key in warned, where
        elif outcome == "fail":
            assert len(got_errors) == 1 and not is_indexed, (where, got_errors)
        elif outcome == "skip":
            assert not got_errors and not is_indexed, (where, got_errors)
        else:  # either
            assert len(got_errors) + int(is_indexed) == 1, (where, got_errors)
    # every error belongs to a file of the corpus, and names it only in its `path`
    assert set(errors) <= {str(folder / n) for n in kinds}, set(errors)
    assert report["failed"] == len(report["errors"])
    for item in report["errors"]:
        assert str(folder) not in item["error"], item
    for item in report["warnings"]:
        assert str(folder) not in item["warning"], item


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("bad-cli")
    folder = base / "corpus"
    kinds = write_bad_corpus(folder)
    env = _env(base / "data")
    first = _bot(env, "ingest", str(folder), "--json")
    sources1 = _bot(env, "sources", "--json")
    second = _bot(env, "ingest", str(folder))  # again, in the human-readable form
    return {
        "folder": folder,
        "kinds": kinds,
        "runs": [first, sources1, second],
    }


def test_corpus_has_many_kinds(tmp_path: Path) -> None:
    assert len(EXPECTED) >= 50
    assert set(EXPECTED.values()) <= {"ingest", "warn", "fail", "skip", "either"}
    assert set(EXPECTED) >= NAMED_BY_THE_ISSUE, NAMED_BY_THE_ISSUE - set(EXPECTED)
    # every kind is written somewhere: the main corpus or one of the separate writers
    written = set(write_bad_corpus(tmp_path / "corpus").values())
    assert written | written_elsewhere() == set(EXPECTED), set(EXPECTED) - written
    assert not written & written_elsewhere()


def test_cli_ingest_bad_corpus(cli_runs: dict[str, Any]) -> None:
    first, sources1, *_ = cli_runs["runs"]
    for run in cli_runs["runs"]:
        assert "Traceback" not in run.stderr, run.stderr[-3000:]
        assert "unexpected" not in run.stderr, run.stderr[-3000:]
    assert first.returncode == 2, first.stderr[-2000:]
    assert sources1.returncode == 0, sources1.stderr
    report = json.loads(first.stdout)
    rows = json.loads(sources1.stdout)
    folder = cli_runs["folder"]
    # the child obeys file modes, so the chmod-000 file fails here even when tests run as root
    _check_outcomes(folder, cli_runs["kinds"], report, _indexed_paths(rows))
    unreadable = [e for e in report["errors"] if e["path"] == str(folder / "unreadable.txt")]
    assert unreadable == [
        {"path": str(folder / "unreadable.txt"), "error": "cannot read file: permission denied"}
    ]
    # the named good ones, explicitly
    indexed = _indexed_paths(rows)
    for name, kind in cli_runs["kinds"].items():
        if kind in GOOD:
            assert str(folder / name) in indexed, name
    # stored text carries no control characters (ESC, BEL, CR)
    for row in rows:
        for field in ("title", "source", "url", "published"):
            assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in row[field]), row


def test_cli_ingest_is_idempotent(cli_runs: dict[str, Any]) -> None:
    first, _, second = cli_runs["runs"]
    assert second.returncode == 2
    a = json.loads(first.stdout)
    summary = re.search(
        r"(\d+) added, (\d+) updated, (\d+) unchanged, (\d+) removed, (\d+) failed",
        second.stdout,
    )
    assert summary, second.stdout
    added, updated, unchanged, removed, failed = map(int, summary.groups())
    assert added == updated == removed == 0, second.stdout
    assert unchanged == a["added"] + a["unchanged"], (a, second.stdout)
    assert failed == a["failed"]
    for item in a["errors"]:
        # one failure line: the path once, then the error (which does not repeat it); the
        # reasons of a file's records come before it as warning lines
        line = f"failed: {item['path']}: {item['error']}"
        assert line in second.stderr.splitlines(), line
        failures = [ln for ln in second.stderr.splitlines() if not ln.startswith("warning: ")]
        assert "\n".join(failures).count(item["path"]) == 1, item["path"]


def test_cli_text_output_one_line_per_failure(cli_runs: dict[str, Any]) -> None:
    text_run = cli_runs["runs"][-1]
    failed_lines = [ln for ln in text_run.stderr.splitlines() if ln.startswith("failed: ")]
    n_failed = json.loads(cli_runs["runs"][0].stdout)["failed"]
    assert len(failed_lines) == n_failed
    # every stderr line is a note we emitted, never a wrapped fragment of one (width is not a tty)
    for line in text_run.stderr.splitlines():
        assert line.startswith(("failed: ", "warning: ")), line
    assert "\x1b" not in text_run.stderr and "\x1b" not in text_run.stdout
    assert " failed;" in text_run.stdout


@pytest.fixture
def cheap_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs embed with a trivial model (the files, not the vectors, are under test)."""
    import bot.index.embeddings

    monkeypatch.setattr(bot.index.embeddings, "get_embedder", lambda settings=None: HashEmbedder())


def test_ingest_paths_bad_corpus(tmp_path: Path, cheap_embedder: None) -> None:
    from bot.app.ingest import ingest_paths, list_sources
    from bot.core.settings import get_settings
    from bot.index.store import open_store

    folder = tmp_path / "corpus"
    kinds = write_bad_corpus(folder)
    report = ingest_paths([folder], embedder=HashEmbedder())
    rows = list_sources()
    overrides = _in_process_expectations(folder, kinds)
    _check_outcomes(folder, kinds, report.to_json(), _indexed_paths(rows), overrides)
    # the ANSI file: whole escape sequences gone from the stored title
    ansi = [r for r in rows if any(p.endswith("ansi.txt") for p in r["paths"])]
    assert len(ansi) == 1 and ansi[0]["title"] == "Red alert in the Ansitown harbour."
    # stored chunk texts: no escape remnants, no NUL, no leaked external entity
    texts: dict[str, str] = {}
    store = open_store(get_settings(), HashEmbedder())
    for chunk in store.iter_chunks():
        texts[chunk.path] = texts.get(chunk.path, "") + chunk.text
        assert SECRET_TOKEN not in chunk.text
        assert not re.search(r"\x1b|\[\d+(;\d+)*m|\x00|\x07", chunk.text), chunk.text[:200]
    ansi_text = texts[str(folder / "ansi.txt")]
    assert ansi_text.startswith("Red alert in the Ansitown harbour.\nclick here.")
    nul_text = texts[str(folder / "nul_mid.txt")]
    assert "Nulmid report" in nul_text and "Nulmid2 report" in nul_text
    warned = {w["path"]: w["warning"] for w in report.warnings}
    assert warned[str(folder / "nul_mid.txt")] == "dropped 1 stray NUL byte"
    assert "aliases" in warned[str(folder / "alias_bomb.md")]
    assert "\u202e" not in texts[str(folder / "bidi.txt")]
    again = ingest_paths([folder], embedder=HashEmbedder())
    assert again.added == again.updated == again.removed == 0
    assert again.failed == report.failed
    assert list_sources() == rows


def test_failed_line_for_a_path_with_a_newline_is_one_line(tmp_path: Path) -> None:
    path = write_failing_newline_name(tmp_path / "names")
    run = _bot(_env(tmp_path / "data"), "ingest", str(path.parent))
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert lines == [f"failed: {safe_path(path)}: file is empty"], lines


def test_good_index_survives_bad_corpus(tmp_path: Path, cheap_embedder: None) -> None:
    from bot.app.ingest import ingest_paths, list_sources

    folder = tmp_path / "corpus"
    write_bad_corpus(folder, bad=False)
    first = ingest_paths([folder], embedder=HashEmbedder())
    assert first.failed == 0 and first.added >= 2
    before = {r["article_id"]: r for r in list_sources()}

    write_bad_corpus(folder, seeds=False)  # the bad files join the same folder
    seed = sorted((folder / "seeds").iterdir())[0]
    seed.write_bytes(b"\x00garbage\x00" * 100)  # and a good file turns bad after indexing
    report = ingest_paths([folder], embedder=HashEmbedder())
    assert report.failed > 0
    assert any(e["path"] == str(seed) for e in report.errors)
    after = {r["article_id"]: r for r in list_sources()}
    for article_id, row in before.items():
        assert article_id in after, row["paths"]
        assert after[article_id]["chunks"] == row["chunks"]
        assert set(row["paths"]) <= set(after[article_id]["paths"])


def test_ten_mb_single_line_ingests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.app.ingest import ingest_paths
    from bot.core.settings import get_settings

    monkeypatch.setenv("BOT_MAX_FILE_MB", "30")
    monkeypatch.setenv("BOT_CHUNK_SIZE", "20000")  # fewer chunks: the point is "no hang"
    monkeypatch.setenv("BOT_CHUNK_OVERLAP", "0")
    get_settings.cache_clear()
    path = write_long_line(tmp_path / "long")
    started = time.perf_counter()
    report = ingest_paths([path], embedder=HashEmbedder())
    assert report.failed == 0 and report.added == 1, report.errors
    assert report.chunks_embedded >= 10 * 1024 * 1024 // 20000
    assert time.perf_counter() - started < 40


def test_fifty_mb_file_one_clear_failure(tmp_path: Path) -> None:
    from bot.app.ingest import ingest_paths

    folder = tmp_path / "big"
    folder.mkdir()
    with open(folder / "big.txt", "wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    report = ingest_paths([folder], embedder=HashEmbedder())
    assert report.failed == 1 and len(report.errors) == 1
    message = report.errors[0]["error"]
    assert "too large" in message and "BOT_MAX_FILE_MB" in message and "\n" not in message
