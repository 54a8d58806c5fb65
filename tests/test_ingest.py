"""The index stays exactly in step with the files: incremental, exact, safe (real Chroma, model)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.app.ingest import ingest_paths, list_sources
from bot.core.errors import BotError
from bot.core.settings import get_settings
from bot.index.records import StoredChunk
from bot.index.store import open_store
from tests.test_store_faults import rewrite_index_metadata

from .conftest import SEEDS
from .fakes import HashEmbedder

HARBOUR_MD = (
    "---\ntitle: Harbour reopens\nsource: Coast Daily\npublished: 2024-03-05\n---\n"
    "The harbour reopened on Monday after storm repairs. Ferries resumed at 6 a.m. on the "
    "U.S. side.\n\nOfficials said the works cost $2.5 million.\n"
)


def _corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "news"
    folder.mkdir()
    for seed in SEEDS.iterdir():
        shutil.copy(seed, folder / seed.name)
    (folder / "extra.md").write_text(HARBOUR_MD, encoding="utf-8")
    return folder


def _state(settings) -> tuple[int, int, dict[str, int]]:
    store = open_store(settings)
    per_article: dict[str, int] = {}
    for chunk in store.iter_chunks(with_text=False):
        per_article[chunk.article_id] = per_article.get(chunk.article_id, 0) + 1
    return store.article_count(), store.chunk_count(), per_article


def test_ingest_is_incremental_and_exact(tmp_path: Path) -> None:
    folder = _corpus(tmp_path)
    settings = get_settings()
    first = ingest_paths([folder], settings)
    assert (first.added, first.updated, first.unchanged, first.removed, first.failed) == (
        3,
        0,
        0,
        0,
        0,
    )
    assert first.chunks_embedded > 0
    articles, chunks, per_article = _state(settings)
    assert articles == 3 and chunks == first.chunks_embedded
    manifest = open_store(settings).article_entries()
    assert {a: e.n_chunks for a, e in manifest.items()} == per_article

    second = ingest_paths([folder], settings)
    assert (second.added, second.unchanged, second.chunks_embedded) == (0, 3, 0)
    assert _state(settings)[:2] == (articles, chunks)

    # A changed file: its article is replaced, old chunks gone, nothing else re-embedded.
    md = folder / "extra.md"
    md.write_text(
        md.read_text(encoding="utf-8") + "\nA second pier opens in May.\n", encoding="utf-8"
    )
    third = ingest_paths([folder], settings)
    assert (third.added, third.updated, third.unchanged, third.removed) == (0, 1, 2, 0)
    new_articles, _, per_article = _state(settings)
    assert new_articles == 3
    manifest = open_store(settings).article_entries()
    assert set(per_article) == set(manifest)  # no chunk of the old version is left

    # A file that disappears from the folder is removed, and the run says so.
    md.unlink()
    fourth = ingest_paths([folder], settings)
    assert (fourth.removed, fourth.unchanged) == (1, 2)
    assert _state(settings)[0] == 2


def test_chunk_offsets_point_into_the_article_text(tmp_path: Path) -> None:
    from bot.sources.formats import load_file

    settings = get_settings()
    ingest_paths([SEEDS], settings)
    texts = {}
    for seed in SEEDS.iterdir():
        for article in load_file(seed, max_bytes=10**7).articles:
            texts[article.article_id] = article.text
    store = open_store(settings)
    seen = 0
    for chunk in store.iter_chunks():
        assert texts[chunk.article_id][chunk.start : chunk.end] == chunk.text
        seen += 1
    assert seen == store.chunk_count() > 0


def test_same_text_under_two_paths_is_stored_once(tmp_path: Path) -> None:
    folder = tmp_path / "dupes"
    folder.mkdir()
    seed = sorted(SEEDS.iterdir())[0]
    shutil.copy(seed, folder / "a.txt")
    shutil.copy(seed, folder / "b.txt")
    report = ingest_paths([folder])
    assert report.added == 2
    rows = list_sources()
    assert len(rows) == 1
    assert [Path(p).name for p in rows[0]["paths"]] == ["a.txt", "b.txt"]
    # Removing one copy keeps the article; removing both removes it.
    (folder / "a.txt").unlink()
    ingest_paths([folder])
    assert [Path(p).name for p in list_sources()[0]["paths"]] == ["b.txt"]
    (folder / "b.txt").unlink()
    ingest_paths([folder])
    assert list_sources() == []


def test_bad_files_fail_alone_and_keep_what_was_indexed(tmp_path: Path) -> None:
    folder = _corpus(tmp_path)
    ingest_paths([folder])
    (folder / "empty.txt").write_text("", encoding="utf-8")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02\xff" * 100)
    (folder / "broken.jsonl").write_text(
        '{"title": "Ok", "text": "A fine line about the harbour."}\n{not json\n', encoding="utf-8"
    )
    report = ingest_paths([folder])
    assert report.failed == 2
    assert {Path(e["path"]).name for e in report.errors} == {"empty.txt", "binary.txt"}
    assert any("line 2" in w["warning"] for w in report.warnings)
    assert report.added == 1 and report.unchanged == 3
    # A file that was fine and turns bad keeps its indexed article (nothing is lost).
    (folder / "extra.md").write_bytes(b"\x00" * 64)
    report = ingest_paths([folder])
    assert report.failed == 3
    assert any(r["title"] == "Harbour reopens" for r in list_sources())


def test_index_built_with_another_model_is_a_clear_error(tmp_path: Path) -> None:
    settings = get_settings()
    ingest_paths([SEEDS], settings)

    other = HashEmbedder(384, name="some-other-model", failure=AssertionError("never reached"))
    with pytest.raises(BotError, match=r"--rebuild"):
        open_store(settings, other)


def test_rebuild_starts_from_scratch(tmp_path: Path) -> None:
    settings = get_settings()
    ingest_paths([SEEDS], settings)
    report = ingest_paths([SEEDS], settings, rebuild=True)
    assert report.added == 2 and report.chunks_embedded > 0


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    settings = get_settings()
    ingest_paths([SEEDS], settings)
    rewrite_index_metadata(settings.data_dir, bot_schema=99)
    with pytest.raises(BotError, match="newer bot"):
        open_store(settings)


def test_orphan_chunks_from_a_crash_are_repaired(tmp_path: Path) -> None:
    settings = get_settings()
    ingest_paths([SEEDS], settings)
    store = open_store(settings)
    chunks_before = store.chunk_count()
    # Simulate a run killed after writing chunks but before their article record.
    stray = StoredChunk("aorphan000000000:00000", "aorphan000000000", 0, 0, 5, text="stray")
    store.upsert_chunks([stray], store.embedder.embed([stray.text]))
    store.set_state(dirty=True)
    report = ingest_paths([SEEDS], settings)
    assert report.repaired_chunks == 1
    assert open_store(settings).chunk_count() == chunks_before


def test_cli_ingest_json_and_sources(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bot.ui.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["ingest", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {
        "added",
        "updated",
        "unchanged",
        "removed",
        "failed",
        "chunks_embedded",
        "errors",
    }
    assert data["added"] == 2 and data["errors"] == []
    result = runner.invoke(app, ["sources", "--json"])
    rows = json.loads(result.stdout)
    assert len(rows) == 2 and all(r["chunks"] > 0 for r in rows)
    result = runner.invoke(app, ["sources"])
    assert result.exit_code == 0 and "Zelensky" in result.stdout


def test_ingest_builds_the_keyword_index_of_the_new_generation(tmp_path: Path) -> None:
    from bot.index.keyword import cache_dir, index_folder

    settings = get_settings()
    ingest_paths([_corpus(tmp_path)], settings)
    store = open_store(settings)
    folder = index_folder(cache_dir(store), store.generation)
    assert folder.name.startswith(store.generation)
    folders = [p.name for p in cache_dir(store).iterdir()]
    assert folders == [folder.name]  # built during ingest; older generations are gone
    assert (folder / "chunks.json").is_file()


def _own_articles(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "harbour.md").write_text(HARBOUR_MD, encoding="utf-8")
    return folder


class _Notes:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def start(self, total: int) -> None: ...
    def more(self, n: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def note(self, message: str) -> None:
        self.notes.append(message)

    def stop(self) -> None: ...


def test_the_users_first_files_replace_the_seeds(tmp_path: Path) -> None:
    settings = get_settings()
    assert ingest_paths(None, settings).added == 2  # the first-run demo
    notes = _Notes()
    report = ingest_paths([_own_articles(tmp_path)], settings, progress=notes)
    assert (report.added, report.removed) == (1, 2)
    assert notes.notes == ["Removed the 2 bundled seed articles: the index now holds your own."]
    articles, chunks, per_article = _state(settings)
    assert (
        articles == 1 and len(per_article) == 1 and chunks == per_article[next(iter(per_article))]
    )
    store = open_store(settings)
    assert not store.file_entries().keys() & {str(p) for p in SEEDS.iterdir()}
    assert [r["title"] for r in list_sources(settings)] == ["Harbour reopens"]
    # Later runs, and an index holding both (as older versions left), keep what they hold.
    again = ingest_paths(None, settings, progress=notes)  # the seeds asked for by name
    assert again.added == 2 and again.removed == 0
    more = tmp_path / "more"
    more.mkdir()
    (more / "b.txt").write_text("Bridge works\n\nThe bridge closed for repairs.\n")
    later = ingest_paths([more], settings, progress=notes)
    assert (later.added, later.removed) == (1, 0) and len(notes.notes) == 1
    assert open_store(settings).article_count() == 4


def test_seeds_stay_when_the_users_files_fail(tmp_path: Path) -> None:
    settings = get_settings()
    ingest_paths(None, settings)
    report = ingest_paths([tmp_path / "missing"], settings)
    assert report.failed == 1 and report.removed == 0
    assert open_store(settings).article_count() == 2


def test_cli_ingest_json_counts_the_replaced_seeds(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bot.ui.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["ingest", "--json"]).exit_code == 0
    result = runner.invoke(app, ["ingest", str(_own_articles(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {
        "added", "updated", "unchanged", "removed", "failed", "chunks_embedded", "errors",
        "warnings",
    }  # fmt: skip
    assert (data["added"], data["removed"]) == (1, 2)
    assert "Removed the 2 bundled seed articles" in result.stderr


def test_a_seed_replacement_killed_before_it_forgot_the_files_is_finished(tmp_path: Path) -> None:
    settings = get_settings()
    ingest_paths(None, settings)
    ingest_paths([_own_articles(tmp_path)], settings)
    seed_files = {str(p) for p in SEEDS.iterdir()}
    # As a run killed after it removed the seed articles, before it forgot their files, leaves it:
    ingest_paths(None, settings)
    store = open_store(settings)
    seed_ids = [a for a, e in store.article_entries().items() if set(e.paths) <= seed_files]
    store.delete_articles(seed_ids)
    assert store.file_entries().keys() >= seed_files
    more = tmp_path / "more"
    more.mkdir()
    (more / "b.txt").write_text("Bridge works\n\nThe bridge closed for repairs.\n")
    ingest_paths([more], settings)
    assert not open_store(settings).file_entries().keys() & seed_files
    assert ingest_paths(None, settings).added == 2, "the seeds can be indexed again"
