"""Ingests killed with SIGKILL at random moments, and concurrent ingests, never corrupt an index."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

INGEST = (
    "import json, sys; from bot.app.ingest import ingest_paths; "
    "r = ingest_paths([sys.argv[1]]); print(json.dumps(r.to_json()))"
)
STATE = (
    "import json; from bot.core.settings import get_settings; "
    "from bot.index.store import open_store; "
    "s = open_store(get_settings()); ids = {}; "
    "[ids.__setitem__(c.article_id, ids.get(c.article_id, 0) + 1) "
    " for c in s.iter_chunks(with_text=False)]; "
    "manifest = {a: e.n_chunks for a, e in s.article_entries().items()}; "
    "print(json.dumps({'chunks': s.chunk_count(), 'per_article': ids, 'manifest': manifest, "
    "'files': len(s.file_entries())}))"
)


def _make_corpus(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    rng = random.Random(7)
    words = [
        "minister",
        "council",
        "harbour",
        "election",
        "storm",
        "budget",
        "court",
        "protest",
        "vaccine",
        "market",
        "strike",
        "pipeline",
        "drought",
        "festival",
        "ceasefire",
        "tariff",
        "satellite",
        "merger",
        "inquiry",
        "verdict",
    ]
    for i in range(n):
        sentences = []
        for j in range(rng.randint(8, 30)):
            picked = " ".join(rng.choice(words) for _ in range(rng.randint(6, 18)))
            sentences.append(f"Report {i}.{j} says the {picked}.")
        (folder / f"article_{i:03d}.txt").write_text(
            f"Headline number {i}\n" + " ".join(sentences) + "\n", encoding="utf-8"
        )
    return folder


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "BOT_DATA_DIR": str(data_dir), "ANONYMIZED_TELEMETRY": "False"}


def _run(code: str, data_dir: Path, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=_env(data_dir), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _assert_exact(state: dict, expected: dict) -> None:
    assert state["per_article"] == state["manifest"], "chunks and manifest disagree"
    assert state["manifest"] == expected["manifest"]
    assert state["chunks"] == expected["chunks"]
    assert state["files"] == expected["files"]


# The read snapshot after a crash: no pointer, or a pointer to a complete snapshot of the
# generation Chroma holds, with exactly Chroma's chunks.
SNAPSHOT_STATE = (
    "import json; from bot.core.settings import get_settings; "
    "from bot.index.snapshot import open_snapshot, current_generation; "
    "from bot.index.store import open_store; "
    "st = get_settings(); s = open_store(st); pointed = current_generation(st); "
    "snap = open_snapshot(st, s.embedder) if pointed else None; "
    "print(json.dumps({'pointer': pointed is not None, 'opens': snap is not None, "
    "'current': pointed == s.generation and not s.dirty, "
    "'same': snap is not None and sorted(c.chunk_id for c in snap.chunks_where()) == "
    "sorted(c.chunk_id for c in s.iter_chunks(with_text=False))}))"
)


@pytest.mark.slow
def test_kill_9_at_random_moments_then_ingest_restores_the_exact_index(tmp_path: Path) -> None:
    corpus = _make_corpus(tmp_path / "corpus", 60)
    reference = tmp_path / "reference"
    full = _run(INGEST, reference, str(corpus))
    assert full["added"] == 60
    expected = _run(STATE, reference)

    rng = random.Random(2024)
    data_dir = tmp_path / "victim"
    trials = 20
    killed_mid_run = 0
    for trial in range(trials):
        # Every trial changes some files, so each victim run has real work to be killed in
        # (updates, which delete old chunks and write new ones), not only unchanged checks.
        for index in rng.sample(range(60), 8):
            victim = corpus / f"article_{index:03d}.txt"
            victim.write_text(
                victim.read_text(encoding="utf-8") + f"Update {trial}.\n", encoding="utf-8"
            )
        began = time.perf_counter()
        _run(INGEST, reference, str(corpus))
        duration = time.perf_counter() - began
        expected = _run(STATE, reference)
        proc = subprocess.Popen(
            [sys.executable, "-c", INGEST, str(corpus)],
            env=_env(data_dir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, max(0.6, duration)))
        if proc.poll() is None:
            killed_mid_run += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        snapshot = _run(SNAPSHOT_STATE, data_dir)
        assert not snapshot["pointer"] or snapshot["opens"] and snapshot["current"], snapshot
        assert not snapshot["pointer"] or snapshot["same"], snapshot
        if trial % 2 == 1:  # half the time, check the repaired state right away
            report = _run(INGEST, data_dir, str(corpus))
            assert report["failed"] == 0
            _assert_exact(_run(STATE, data_dir), expected)
    report = _run(INGEST, data_dir, str(corpus))
    _assert_exact(_run(STATE, data_dir), expected)
    again = _run(INGEST, data_dir, str(corpus))
    assert again["chunks_embedded"] == 0 and again["unchanged"] == 60
    snapshot = _run(SNAPSHOT_STATE, data_dir)
    assert snapshot == {"pointer": True, "opens": True, "current": True, "same": True}
    assert killed_mid_run >= trials // 2, f"only {killed_mid_run} kills landed mid-run"


@pytest.mark.slow
def test_four_ingests_at_once_leave_one_exact_index(tmp_path: Path) -> None:
    corpus = _make_corpus(tmp_path / "corpus", 25)
    reference = tmp_path / "reference"
    _run(INGEST, reference, str(corpus))
    expected = _run(STATE, reference)
    data_dir = tmp_path / "shared"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", INGEST, str(corpus)],
            env=_env(data_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        assert "Traceback" not in err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    # Exactly one run did the work; the others waited for it and found everything unchanged.
    assert sorted(r["added"] for r in reports) == [0, 0, 0, 25]
    assert sum(r["chunks_embedded"] for r in reports) == expected["chunks"]
    _assert_exact(_run(STATE, data_dir), expected)


def test_article_written_before_its_file_record_is_dropped_when_the_file_changes_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window the kill -9 trials above can land in: a run writes a changed file's new article
    (chunks and manifest) and dies before the file's own record. If the file then changes once
    more, the next run must drop that middle version, which no file record names."""
    from bot.app.ingest import ingest_paths
    from bot.core.settings import get_settings
    from bot.index.store import ArticleStore, open_store

    corpus = _make_corpus(tmp_path / "corpus", 3)
    target = corpus / "article_001.txt"
    settings = get_settings()
    ingest_paths([corpus], settings)
    first = set(open_store(settings).article_entries())

    target.write_text(target.read_text(encoding="utf-8") + "Second version.\n", encoding="utf-8")
    real_upsert_files = ArticleStore.upsert_files

    def die(self, entries):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt  # as if killed: the articles are written, the file record not

    monkeypatch.setattr(ArticleStore, "upsert_files", die)
    with pytest.raises(KeyboardInterrupt):
        ingest_paths([corpus], settings)
    monkeypatch.setattr(ArticleStore, "upsert_files", real_upsert_files)
    middle = set(open_store(settings).article_entries()) - first
    assert len(middle) == 1  # the second version is written; the file record still names the first

    target.write_text(target.read_text(encoding="utf-8") + "Third version.\n", encoding="utf-8")
    report = ingest_paths([corpus], settings)
    assert report.failed == 0 and report.updated == 1
    state = _run(STATE, settings.data_dir)
    assert not middle & set(state["manifest"])
    reference = tmp_path / "reference"
    _run(INGEST, reference, str(corpus))
    _assert_exact(state, _run(STATE, reference))
