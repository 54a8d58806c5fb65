"""A damaged embedded index, through the real CLI: real Chroma files damaged for real (truncated
at several lengths, the header or the middle overwritten, the database deleted or emptied while
the vector folders remain).

Every command then fails with one `error:` line that says the index is damaged and names the fix,
`bot ingest PATHS --rebuild`; `ask` does not load the seed articles into it, even when the
damage makes the index look empty. The fix works: it
moves the damaged folder aside whole (byte for byte, never deleted), says so in one warning line,
and builds a fresh index that answers.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.llm_server import clean_env
from tests.test_store_faults import QUESTION, SEEDS, finish, ingest_seeds, one_error_line, start_bot

FIX = "rebuild it with `bot ingest PATHS --rebuild` (PATHS: the files or folders you indexed)"


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding the two seed articles, built once and copied by each test."""
    data = tmp_path_factory.mktemp("seed-index") / "data"
    ingest_seeds(data)
    return data


def _garble(database: Path) -> None:
    """Overwrite part of page 2 (SQLite pages are 4096 bytes): a table Chroma reads on open."""
    with database.open("r+b") as f:
        f.seek(4096 + 8)
        f.write(bytes((i * 73 + 41) % 256 for i in range(200)))


def _truncate(keep: Callable[[int], int]) -> Callable[[Path], None]:
    """Cut the database to keep(size) bytes, as a copy or a disk that stopped midway does."""
    return lambda db: db.write_bytes(db.read_bytes()[: keep(db.stat().st_size)])


def _overwrite(start: Callable[[int], int], length: Callable[[int], int]) -> Callable[[Path], None]:
    """Overwrite length(size) bytes from start(size) with random bytes (a fixed seed)."""

    def damage(db: Path) -> None:
        data = bytearray(db.read_bytes())
        at, n = start(len(data)), length(len(data))
        data[at : at + n] = random.Random(at).randbytes(n)
        db.write_bytes(bytes(data))

    return damage


def _overwrite_last_page_of(table: str) -> Callable[[Path], None]:
    """Overwrite the last page of `table` (found with SQLite's dbstat) with random bytes."""

    def damage(db: Path) -> None:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            size = conn.execute("PRAGMA page_size").fetchone()[0]
            query = "SELECT max(pageno) FROM dbstat WHERE name = ?"
            page = conn.execute(query, (table,)).fetchone()[0]
        _overwrite(lambda _: (page - 1) * size, lambda _: size)(db)

    return damage


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate(lambda size: size // 3),
    "garbled": _garble,
    "deleted": lambda db: db.unlink(),
    "emptied": lambda db: db.write_bytes(b""),
    # SQLite reads a file shorter than its header as an empty database: Chroma would start afresh.
    "truncated to one byte": _truncate(lambda size: 1),
    "truncated in the header": _truncate(lambda size: 50),
    "truncated to one page": _truncate(lambda size: 4096),
    "truncated by one page": _truncate(lambda size: size - 4096),
    "header overwritten": _overwrite(lambda size: 0, lambda size: 100),
    "random bytes in the middle": _overwrite(lambda size: size // 4, lambda size: size // 2),
    # Chroma reports this one only as "Failed to pull logs from the log store".
    "write log page overwritten": _overwrite_last_page_of("embeddings_queue"),
}
# The damage every quick run tries; the others run with the slow tests.
QUICK_DAMAGE = frozenset(
    {"truncated", "garbled", "deleted", "emptied"}
    | {"truncated to one byte", "write log page overwritten"}
)


# Damage Chroma finds only once it has opened the database (its startup tables are intact).
FOUND_AFTER_OPENING = frozenset({"write log page overwritten"})


def _without_database(files: dict[str, bytes]) -> dict[str, bytes]:
    """The vector files: unchanged when no chunk was added."""
    return {name: data for name, data in files.items() if name != "chroma.sqlite3"}


def _unchanged(files: dict[str, bytes]) -> dict[str, bytes]:
    return files


def _files(folder: Path) -> dict[str, bytes]:
    """Chroma's files in `folder`. The read snapshot's pointer is left out: it is bot's own mark,
    and `--rebuild` removes it before anything else, as every write does."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith("snapshot-")
    }


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(name, marks=() if name in QUICK_DAMAGE else pytest.mark.slow)
        for name in sorted(DAMAGE)
    ],
)
def test_damaged_index_names_the_fix_and_rebuild_moves_it_aside(
    seed_index: Path, tmp_path: Path, damage: str
) -> None:
    data = tmp_path / "data"
    shutil.copytree(seed_index, data)
    chroma = data / "chroma"
    DAMAGE[damage](chroma / "chroma.sqlite3")
    shutil.rmtree(data / "cache")  # the search cache must not hide the damage from `ask`
    damaged = _files(chroma)
    env = clean_env(data)
    procs = {
        "ask": start_bot(env, "ask", QUESTION),
        "summarise": start_bot(env, "summarise"),
        "sources": start_bot(env, "sources"),
        "ingest": start_bot(env, "ingest", str(SEEDS)),
    }
    for name, proc in procs.items():
        line = one_error_line(*finish(proc))  # one line: no seed-indexing notice before it
        assert line.startswith(f"error: The index in {chroma} is damaged: "), (name, line)
        assert FIX in line, (name, line)
        assert "permission" not in line, (name, line)
    if damage in ("deleted", "emptied"):
        assert "while 3 vector folders remain" in line, line
    # Chroma writes to its database whenever it opens it: compare the vector files then.
    same = _without_database if damage in FOUND_AFTER_OPENING else _unchanged
    assert same(_files(chroma)) == same(damaged)  # refused without a write: no seeds loaded

    code, out, err = finish(start_bot(env, "ingest", "--rebuild", str(SEEDS)))
    assert code == 0, err[-2000:]
    assert "Traceback" not in err
    warning, *rest = err.splitlines()
    assert not rest, err
    aside = [p for p in data.iterdir() if p.name.startswith("chroma.damaged-")]
    assert len(aside) == 1, list(data.iterdir())
    assert warning.startswith(f"warning: The index in {chroma} was damaged ("), warning
    assert warning.endswith(f"moved it to {aside[0]}; building a fresh one"), warning
    assert same(_files(aside[0])) == same(damaged)  # the user's files, moved, not deleted
    assert out.startswith("2 added, 0 updated"), out

    code, out, err = finish(start_bot(env, "ask", QUESTION, "--json"))
    assert code == 0, err[-2000:]
    assert json.loads(out)["passages"]


def test_damage_seen_at_a_glance_is_reported_though_a_read_snapshot_is_current(
    tmp_path: Path,
) -> None:
    """A read served from the snapshot never opens Chroma; damage that shows without opening the
    database must still stop it, or the user learns of it only at the next write."""
    data = tmp_path / "data"
    ingest_seeds(data)  # in place: the snapshot it publishes is current for this folder
    env = clean_env(data)
    code, out, err = finish(start_bot(env, "ask", QUESTION))
    assert code == 0 and "[" in out, err  # answered from the snapshot
    database = data / "chroma" / "chroma.sqlite3"
    intact = database.read_bytes()
    for damage in ("deleted", "emptied", "truncated to one byte", "header overwritten"):
        DAMAGE[damage](database)
        for args in (("ask", QUESTION), ("summarise",), ("sources",)):
            line = one_error_line(*finish(start_bot(env, *args)))
            assert line.startswith(f"error: The index in {data / 'chroma'} is damaged: "), (
                damage,
                args,
                line,
            )
            assert FIX in line, (damage, args, line)
        database.write_bytes(intact)
