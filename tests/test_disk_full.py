"""A full disk, for real: the data directory on a size-limited tmpfs mounted for the test (root
only; skipped where mounting is impossible, since a faked ENOSPC would not show what Chroma
really reports, which hides the cause as "Error in compaction: Failed to apply logs...").

A write that fails for lack of space says "Disk full", names the data directory and the space
free and needed, in one line; after space is freed, `bot ingest` brings the index exactly in step.
A search cache that does not fit is a warning, and the answer still comes.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.llm_server import clean_env
from tests.test_chat import BOT, FIRST, _ingest_seeds, _leave, _pty_env, _type, needs_bot
from tests.test_store_faults import (
    QUESTION,
    SEEDS,
    expected_state,
    finish,
    ingest_seeds,
    make_corpus,
    one_error_line,
    start_bot,
)

Mount = Callable[[str], Path]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Mount]:
    """mount(size): a tmpfs of that size (e.g. "700k") at a fresh folder; unmounted after."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a size-limited filesystem here: {done.stderr.strip()}")
        mounted.append(folder)
        return folder

    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited filesystem needs root")
    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _index_state(data: Path) -> dict[str, int]:
    """{article_id: chunks} of the index in `data`, read with the library."""
    from chromadb.api.client import SharedSystemClient

    from bot.core.settings import Settings
    from bot.index.store import open_store

    store = open_store(Settings(BOT_DATA_DIR=str(data)))
    state: dict[str, int] = {}
    for chunk in store.iter_chunks(with_text=False):
        state[chunk.article_id] = state.get(chunk.article_id, 0) + 1
    assert set(state) == set(store.article_entries())
    SharedSystemClient.clear_system_cache()
    return state


def test_ingest_on_a_full_disk_says_disk_full_then_resumes(
    small_disk: Mount, tmp_path: Path
) -> None:
    corpus = make_corpus(tmp_path / "news", 20)
    disk = small_disk("700k")
    data = disk / "data"
    env = clean_env(data)
    line = one_error_line(*finish(start_bot(env, "ingest", str(corpus))))
    assert line.startswith(f"error: Disk full: {data} has "), line
    assert "free, and writing to the index needs about " in line, line
    assert "compaction" not in line and "Traceback" not in line, line
    assert line.endswith(
        "(free some space, or set BOT_DATA_DIR to a bigger disk, then run the command again)"
    )

    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
    code, out, err = finish(start_bot(env, "ingest", str(corpus)))
    assert code == 0, err[-2000:]
    assert _index_state(data) == expected_state(corpus)


def test_search_cache_on_a_full_disk_is_a_warning(small_disk: Mount) -> None:
    disk = small_disk("8m")
    data = disk / "data"
    env = clean_env(data)
    code, _, err = finish(start_bot(env, "ingest", str(SEEDS)))
    assert code == 0, err[-2000:]
    shutil.rmtree(data / "cache")
    _fill(disk, leave=16 * 1024)  # room for Chroma's own small writes, not for the search cache
    code, out, err = finish(start_bot(env, "ask", QUESTION))
    assert code == 0, err[-2000:]
    assert err.splitlines() == [
        f"warning: Disk full: {data} has 16.0 KB free, and the search cache needs about "
        + err.split("needs about ", 1)[-1].split(";")[0]
        + "; searching without it"
    ], err
    needed = err.split("needs about ", 1)[-1].split(" KB;")[0]
    assert float(needed) > 16.0, err  # the estimate covers what did not fit
    assert re.search(r"\[\d+\]", out)  # answered, with a citation


def test_no_room_for_the_ingest_lock_says_disk_full(small_disk: Mount) -> None:
    """A disk that cannot take one more file (here: no inode left) fails at the ingest's lock file,
    its first write, with the same one line as a full index."""
    disk = small_disk("4m,nr_inodes=2")  # the mount point and one folder
    data = disk / "data"
    data.mkdir()
    env = clean_env(data)
    line = one_error_line(*finish(start_bot(env, "ingest", str(SEEDS))))
    assert line.startswith(f"error: Disk full: {data} has "), line
    assert "BOT_DATA_DIR to a bigger disk" in line
    assert list(data.iterdir()) == []


def _fill(disk: Path, leave: int = 0) -> None:
    """Take all the free space of `disk` but `leave` bytes, with one preallocated file."""
    filler = os.open(disk / "filler", os.O_CREAT | os.O_WRONLY)
    try:
        os.posix_fallocate(filler, 0, shutil.disk_usage(disk).free - leave)
    finally:
        os.close(filler)


@needs_bot
def test_chat_history_on_a_full_disk_says_disk_full_and_the_chat_goes_on(
    small_disk: Mount,
) -> None:
    """A real terminal: the first question cannot be added to the history file, which says so
    once, in one line, and the answer still comes."""
    pexpect = pytest.importorskip("pexpect")
    disk = small_disk("8m")
    data = disk / "data"
    env = _pty_env(data)
    _ingest_seeds(env)
    _fill(disk)
    child = pexpect.spawn(
        str(BOT), ["chat", "--llm", "extractive"], env=env, encoding="utf-8", timeout=240
    )
    transcript = io.StringIO()
    child.logfile_read = transcript
    try:
        child.expect_exact("bot>")
        _type(child, FIRST)
        child.expect_exact(f"warning: Disk full: {data} has ")
        child.expect_exact("free, and the chat history needs about ")
        child.expect_exact("; keeping it in memory for this session")
        child.expect(r"\[\d\]")  # the answer, with a citation
        child.expect_exact("bot>")
        _type(child, "/help")
        child.expect_exact("/summarise [topic]")
        child.expect_exact("bot>")
        _leave(child)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, transcript.getvalue()
    assert transcript.getvalue().count("Disk full") == 1  # said once, not at every line
    assert "Traceback" not in transcript.getvalue()
    assert (data / "chat_history").read_text() == ""


def test_fast_question_model_on_a_full_disk_says_disk_full(small_disk: Mount) -> None:
    """The int8 question model cannot be built into a full cache folder: one warning says so,
    and questions are embedded with the index model."""
    import numpy as np

    from bot.core.errors import BotWarning
    from bot.index.embeddings import LocalMiniLM

    cache = small_disk("2m") / "cache"
    model = LocalMiniLM(question_cache=cache)
    with pytest.warns(BotWarning) as warned:
        vectors = model.embed_questions([QUESTION])
    lines = [str(w.message) for w in warned]
    assert len(lines) == 1, lines
    assert f"Disk full: {cache} has " in lines[0], lines
    assert "free, and the fast question model needs about " in lines[0], lines
    np.testing.assert_array_equal(vectors, LocalMiniLM().embed([QUESTION]))


def test_read_snapshot_on_a_full_disk_says_disk_full(small_disk: Mount) -> None:
    """A read snapshot that does not fit beside its search cache is one warning naming the data
    folder, and the commands read the index instead."""
    from chromadb.api.client import SharedSystemClient

    from bot.core.errors import BotWarning
    from bot.core.settings import Settings
    from bot.index import snapshot
    from bot.index.store import open_store

    data = small_disk("8m") / "data"
    ingest_seeds(data)
    settings = Settings(BOT_DATA_DIR=str(data))
    names = (snapshot.TABLE_FILE, snapshot.COLUMNS_FILE, snapshot.TEXTS_FILE)
    names += (snapshot.NORMS_FILE, snapshot.ARTICLES_FILE, snapshot.MARKER_FILE)
    for path in (data / "cache").rglob("*"):
        if path.name in names:  # the snapshot goes; its search cache stays
            path.unlink()
    snapshot.pointer_path(settings).unlink()
    _fill(data.parent, leave=16 * 1024)  # room for Chroma's own small writes, not the snapshot
    store = open_store(settings)
    try:
        with pytest.warns(BotWarning) as warned:
            assert snapshot.publish_snapshot(store) is False
    finally:
        SharedSystemClient.clear_system_cache()
    lines = [str(w.message) for w in warned]
    assert len(lines) == 1 and lines[0].startswith(f"Disk full: {data} has "), lines
    assert "free, and the read snapshot needs about " in lines[0], lines
    assert lines[0].endswith("; reading the index instead"), lines
    assert snapshot.current_generation(settings) is None  # readers use Chroma
