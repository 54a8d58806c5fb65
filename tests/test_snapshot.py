"""The read snapshot of the embedded index: it answers as Chroma does, never after a write, and
spares the read commands Chroma itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app.ingest import ingest_paths
from bot.core.dates import parse_date_bound
from bot.core.settings import Settings, get_settings
from bot.index import snapshot
from bot.index.filters import Filters
from bot.index.search import retrieve_passages
from bot.index.snapshot import SnapshotStore, open_snapshot, pointer_path
from bot.index.store import ArticleStore, open_reader, open_store

from .conftest import REPO, SEEDS
from .test_retrieval import _write_corpus

QUESTIONS = [
    "when did the Port Ellis harbour reopen?",
    "kestrel-7 radar",
    "what did the council budget set aside?",
    "what did Zelensky announce?",
    "ferry passengers at dawn",
]


def _filter_grid() -> list[Filters]:
    since = parse_date_bound("2024-03-05", end=False)
    until = parse_date_bound("2024-03-05", end=True)
    return [
        Filters(),
        Filters(source="Coast Daily"),
        Filters(since_ts=since),
        Filters(until_ts=until),
        Filters(source="BBC News", since_ts=since, until_ts=until),
        Filters(source="No Such Outlet"),
    ]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """The retrieval corpus plus the seeds (undated and dated chunks, several outlets)."""
    news = _write_corpus(tmp_path / "news")
    report = ingest_paths([news, SEEDS], get_settings())
    assert report.failed == 0
    return news


def _snapshot() -> SnapshotStore:
    store = open_snapshot(get_settings(), open_store(get_settings()).embedder)
    assert store is not None, "ingest publishes the snapshot"
    return store


def test_snapshot_and_chroma_return_the_same_passages(corpus: Path) -> None:
    chroma, snap = open_store(get_settings()), _snapshot()
    assert snap.generation == chroma.generation
    assert snap.article_entries() == chroma.article_entries()
    some = sorted(chroma.article_entries())[:2] + ["no-such-article"]
    assert snap.article_entries(some) == chroma.article_entries(some)
    for question in QUESTIONS:
        qvec = chroma.embedder.embed_questions([question])[0]
        for filters in _filter_grid():
            assert snap.dense_ids(qvec, 30, filters) == chroma.dense_ids(qvec, 30, filters)
            for mode in ("hybrid", "dense", "bm25"):
                got = retrieve_passages(question, snap, k=4, filters=filters, mode=mode)
                want = retrieve_passages(question, chroma, k=4, filters=filters, mode=mode)
                assert got.passages == want.passages, (question, filters, mode)
                assert got.best_dense == pytest.approx(want.best_dense, abs=1e-5)


def test_filters_select_the_same_chunks_in_chroma_and_in_the_snapshot(corpus: Path) -> None:
    chroma, snap = open_store(get_settings()), _snapshot()
    article = next(iter(chroma.article_entries()))
    seen = set()
    for filters in _filter_grid():
        for article_id in (None, article):
            want = chroma.chunks_where(filters, article_id=article_id)
            assert snap.chunks_where(filters, article_id=article_id) == want
            seen.add(len(want))
    assert len(seen) > 3  # the filters really select different chunks
    ids = [c.chunk_id for c in chroma.chunks_where()]
    assert snap.chunks_by_ids(ids[::-1] + ["x:00000"]) == chroma.chunks_by_ids(ids[::-1])
    vectors, want = snap.chunk_vectors(ids), chroma.chunk_vectors(ids)
    assert vectors.keys() == want.keys()
    assert all((vectors[i] == want[i]).all() for i in ids)


def _answer(question: str) -> list[str]:
    reader = open_reader(get_settings())
    return [p.text for p in retrieve_passages(question, reader, k=3).passages]


def _edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def test_writes_after_the_snapshot_are_never_answered_from_it(corpus: Path) -> None:
    settings = get_settings()
    assert isinstance(open_reader(settings), SnapshotStore)
    old_generation = _snapshot().generation
    # An edited file: the new text is found, the old one is not.
    _edit(corpus / "codeword.md", "coastal radar stations", "lunar observatories")
    ingest_paths([corpus, SEEDS], settings)
    reader = open_reader(settings)
    assert isinstance(reader, SnapshotStore) and reader.generation != old_generation
    texts = " ".join(_answer("Project Kestrel-7 plan"))
    assert "lunar observatories" in texts and "coastal radar" not in texts
    # A deleted file is forgotten by the next ingest of its folder.
    (corpus / "codeword.md").unlink()
    ingest_paths([corpus, SEEDS], settings)
    assert not any("Kestrel" in t for t in _answer("Project Kestrel-7 plan"))
    assert open_reader(settings).generation == open_store(settings).generation
    # A rebuild from other files.
    ingest_paths([SEEDS], settings, rebuild=True)
    reader = open_reader(settings)
    assert isinstance(reader, SnapshotStore)
    assert {e.title for e in reader.article_entries().values()} == {
        e.title for e in open_store(settings).article_entries().values()
    }
    assert not any("Port Ellis" in t for t in _answer("Port Ellis harbour"))


def test_any_write_through_the_store_takes_the_snapshot_away_first(corpus: Path) -> None:
    settings = get_settings()
    store = open_store(settings)
    victim = retrieve_passages("kestrel-7 radar", store, k=1).passages[0].chunk_id
    assert pointer_path(settings).exists()
    store.delete_chunk_ids([victim])  # no state marking, no new generation
    assert not pointer_path(settings).exists()
    reader = open_reader(settings)
    assert isinstance(reader, ArticleStore)
    assert victim not in {p.chunk_id for p in retrieve_passages("kestrel-7", reader, k=4).passages}
    # The write started no new generation: the next ingest must not bring the old copy back.
    ingest_paths([corpus, SEEDS], settings)
    reader = open_reader(settings)
    assert reader.chunks_by_ids([victim]) == []
    assert victim not in {p.chunk_id for p in retrieve_passages("kestrel-7", reader, k=4).passages}


def test_an_unchanged_ingest_keeps_the_snapshot_as_it_is(corpus: Path) -> None:
    settings = get_settings()
    table = snapshot._folder_of(settings, _snapshot().generation) / snapshot.TABLE_FILE
    written = table.stat().st_mtime_ns
    report = ingest_paths([corpus, SEEDS], settings)
    assert report.added == report.updated == report.removed == 0
    assert isinstance(open_reader(settings), SnapshotStore)
    assert table.stat().st_mtime_ns == written


def test_a_crash_between_taking_the_pointer_away_and_writing_leaves_no_pointer(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.index import guards

    settings = get_settings()
    generation = open_store(settings).generation
    real = guards.retract_snapshot

    def crash_after_retracting(settings: Settings) -> None:
        real(settings)
        raise KeyboardInterrupt  # the process dies before Chroma is written

    monkeypatch.setattr(guards, "retract_snapshot", crash_after_retracting)
    _edit(corpus / "codeword.md", "coastal radar stations", "lunar observatories")
    with pytest.raises(KeyboardInterrupt):
        ingest_paths([corpus, SEEDS], settings)
    monkeypatch.undo()
    assert not pointer_path(settings).exists()
    assert open_store(settings).generation == generation  # Chroma was not written
    assert isinstance(open_reader(settings), ArticleStore)
    ingest_paths([corpus, SEEDS], settings)  # the next ingest publishes a snapshot again
    assert isinstance(open_reader(settings), SnapshotStore)
    assert any("lunar observatories" in t for t in _answer("Project Kestrel-7 plan"))


def test_above_the_chunk_limit_chroma_answers(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    chunks = open_store(settings).chunk_count()
    assert isinstance(open_reader(settings), SnapshotStore)
    monkeypatch.setattr(snapshot, "SNAPSHOT_MAX_CHUNKS", chunks - 1)
    assert isinstance(open_reader(settings), ArticleStore)  # a snapshot written under a higher one
    _edit(corpus / "codeword.md", "coastal radar stations", "lunar observatories")
    ingest_paths([corpus, SEEDS], settings)
    assert not pointer_path(settings).exists()
    assert isinstance(open_reader(settings), ArticleStore)
    assert any("lunar observatories" in t for t in _answer("Project Kestrel-7 plan"))


def test_a_chroma_server_never_uses_a_snapshot(corpus: Path) -> None:
    local = get_settings()
    assert pointer_path(local).exists()
    remote = Settings(BOT_DATA_DIR=str(local.data_dir), BOT_CHROMA_URL="http://127.0.0.1:9")
    assert open_snapshot(remote, open_store(local).embedder) is None
    assert not snapshot.snapshot_ready(remote)


READ_COMMANDS = """
import sys
from bot.app.ask import answer_question
from bot.app.ingest import list_sources
from bot.app.summarise import SummariseOptions, summarise
result = answer_question("what did Zelensky announce?")
assert result.passages, result
assert list_sources()
summary = summarise(SummariseOptions())
assert summary.passages
print("chromadb" in sys.modules)
"""


def _imports_chromadb(data_dir: Path) -> bool:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(BOT_DATA_DIR=str(data_dir), BOT_CACHE_DIR=os.environ["BOT_CACHE_DIR"])
    env.update(BOT_LLM="extractive", PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", READ_COMMANDS], env=env, capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1].lower())


def _chat_imports(data_dir: Path) -> str:
    """What `bot chat` imports (`-X importtime`) while it answers one question."""
    done = _run_bot(data_dir, ["chat", "--json"], "what did Zelensky announce?\n")
    assert json.loads(done.stdout.splitlines()[0])["passages"]
    return done.stderr


def _run_bot(data_dir: Path, args: list[str], given: str = "") -> subprocess.CompletedProcess[str]:
    """`bot ARGS` run with `-X importtime` (its imports on stderr) on the index in `data_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(BOT_DATA_DIR=str(data_dir), BOT_CACHE_DIR=os.environ["BOT_CACHE_DIR"])
    env.update(BOT_LLM="extractive", PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot", *args],
        input=given,
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_a_question_on_a_current_snapshot_imports_only_what_answering_needs() -> None:
    """The BM25 index is read with numpy and the settings with pydantic alone: no bm25s (nor its
    progress bars, thread and process pools), no pydantic-settings (nor the asyncio it pulls)."""
    settings = get_settings()
    ingest_paths(None, settings)  # the seeds
    done = _run_bot(settings.data_dir, ["ask", "what did Zelensky announce?", "--json"])
    assert json.loads(done.stdout)["passages"]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    unneeded = {"bm25s", "pydantic_settings", "tqdm", "asyncio", "multiprocessing", "scipy"}
    assert "numpy" in imported and not imported & unneeded, imported & unneeded


def test_read_commands_on_a_current_snapshot_do_not_import_chromadb() -> None:
    settings = get_settings()
    ingest_paths(None, settings)  # the seeds
    assert not _imports_chromadb(settings.data_dir)
    assert "chromadb" not in _chat_imports(settings.data_dir)
    pointer_path(settings).unlink()  # without the snapshot, the same commands read Chroma
    assert _imports_chromadb(settings.data_dir)
