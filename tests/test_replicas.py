"""Several `bot serve` replicas, each with its own data directory, on one real `chroma run`: what
one writes the others answer from without a restart (their keyword index rebuilt from the
server), and writers take turns through the lease kept in the server itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.core.errors import BotError
from bot.core.settings import Settings
from bot.index.chroma import open_client
from bot.index.lease import CLOCK_SKEW_SECONDS, LeaseRecords, take_lease
from bot.index.records import chunk_id
from bot.index.store import open_store

from .chroma_run import chroma_run, free_port
from .live_server import wait_for_json

pytestmark = pytest.mark.server

# A made-up place name: no other article holds it, and only the keyword index matches it exactly.
RARE = "Quillmoor"
NEW_ARTICLE = (
    f"The {RARE} reservoir overflowed on Tuesday night, the regional water board said. "
    f"Engineers opened the {RARE} spillway at dawn and about 300 homes were evacuated. "
    "The board said the dam itself was not damaged."
)
# Another made-up name, in an article far in meaning from a question about harbour budgets: among
# many harbour-budget reports the dense ranking misses it, and only the keyword index finds it.
FAR_NAME = "Brindlecombe"
FAR_ARTICLE = (
    f"Residents of {FAR_NAME} held their village fete on Sunday, with a cake stall, a brass band "
    "and a dog show on the green."
)
FAR_QUESTION = f"What budget did the harbour authority approve for the {FAR_NAME} piers?"
REPORTS = 200
# A writer of data dir argv[1] that takes the lease for argv[2] seconds, says "held", then writes
# a file record named by each line it reads to the index, saying "wrote" or why not.
HOLDER = """
import sys
from bot.core.errors import BotError
from bot.core.settings import Settings
from bot.index.chroma import open_client
from bot.index.lease import take_lease
from bot.index.records import FileEntry
from bot.index.store import open_store
settings = Settings(data_dir=sys.argv[1])
lease = take_lease(settings, open_client(settings), on_wait=lambda h: None,
                   seconds=float(sys.argv[2]))
store = open_store(settings, create=True)
store.lease = lease
print("held", flush=True)
for line in sys.stdin:
    try:
        store.upsert_files([FileEntry(line.strip(), 1, 1, {})])
        print("wrote", flush=True)
    except BotError as exc:
        print(str(exc), flush=True)
"""


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    with chroma_run(tmp_path) as url:
        yield url


def _env(url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "BOT_CHROMA_URL": url, "BOT_DATA_DIR": str(data_dir), **extra}


def _bot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True, timeout=300
    )


def _settings(url: str, data_dir: Path, **extra: object) -> Settings:
    return Settings(chroma_url=url, data_dir=data_dir, **extra)  # type: ignore[arg-type]


def _holder(url: str, data_dir: Path, seconds: float) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir), str(seconds)],
        env=_env(url, data_dir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_of_many_writers_racing_for_the_lease_one_takes_it(chroma_server: str, tmp_path) -> None:
    outcomes: list[str] = []

    def race(n: int) -> None:
        settings = _settings(chroma_server, tmp_path / f"d{n}", lock_timeout=0)
        try:
            take_lease(settings, open_client(settings), on_wait=lambda h: None)
            outcomes.append("took")
        except BotError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=race, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("took") == 1, outcomes
    assert all("kept the index" in o for o in outcomes if o != "took")


def test_a_live_writer_keeps_its_lease_past_its_length(chroma_server: str, tmp_path) -> None:
    writer = _holder(chroma_server, tmp_path / "a", seconds=1.0)
    assert writer.stdin is not None and writer.stdout is not None
    time.sleep(1.0 + CLOCK_SKEW_SECONDS + 1)  # renewed every third of a second meanwhile
    writer.stdin.write("/news/kept.txt\n")
    writer.stdin.flush()
    assert writer.stdout.readline().strip() == "wrote"
    assert "/news/kept.txt" in open_store(_settings(chroma_server, tmp_path)).file_entries()
    settings = _settings(chroma_server, tmp_path / "b", lock_timeout=0)
    with pytest.raises(BotError, match="kept the index"):
        take_lease(settings, open_client(settings), on_wait=lambda h: None)
    writer.kill()


def test_a_crashed_writers_lease_frees_once_it_expires(chroma_server: str, tmp_path) -> None:
    crashed = _holder(chroma_server, tmp_path / "a", seconds=1.0)
    crashed.send_signal(signal.SIGKILL)
    crashed.wait()
    waits: list[str] = []
    settings = _settings(chroma_server, tmp_path / "b", lock_timeout=60)
    started = time.monotonic()
    lease = take_lease(settings, open_client(settings), on_wait=waits.append)
    waited = time.monotonic() - started
    assert len(waits) == 1 and str(tmp_path / "a") in waits[0]
    assert waited < 1.0 + CLOCK_SKEW_SECONDS + 5
    lease.release()


def test_a_writer_that_stalled_past_its_lease_writes_nothing_more(
    chroma_server: str, tmp_path
) -> None:
    stalled = _holder(chroma_server, tmp_path / "a", seconds=1.0)
    assert stalled.stdin is not None and stalled.stdout is not None
    stalled.send_signal(signal.SIGSTOP)  # its renewals stop with it
    try:
        settings = _settings(chroma_server, tmp_path / "b", lock_timeout=60)
        lease = take_lease(settings, open_client(settings), on_wait=lambda h: None)
    finally:
        stalled.send_signal(signal.SIGCONT)
    time.sleep(1.0)  # its renewal thread wakes first, and finds the newer lease
    stalled.stdin.write("/news/late.txt\n")
    stalled.stdin.flush()
    said = stalled.stdout.readline()
    assert said.startswith("Stopped writing to") and "lease on the index was lost" in said
    assert f"data dir {tmp_path / 'b'}" in said and "took it over" in said
    stalled.kill()
    assert "/news/late.txt" not in open_store(settings).file_entries()
    records = LeaseRecords(settings, open_client(settings)).all()
    assert records[-1].version == lease.version and not records[-1].released
    lease.release()
    assert LeaseRecords(settings, open_client(settings)).all()[-1].released


def test_an_ingest_from_another_data_dir_fails_in_one_line_while_the_lease_is_held(
    chroma_server: str, tmp_path, seeds_dir
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    holder = _holder(chroma_server, a, seconds=30.0)
    try:
        failed = _bot(_env(chroma_server, b, BOT_LOCK_TIMEOUT="0"), "ingest", str(seeds_dir))
    finally:
        holder.kill()
    assert failed.returncode == 1
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in failed.stderr, failed.stderr
    assert lines[0].startswith("error: Another writer (pid") and f"data dir {a}" in lines[0]
    assert "kept the index" in lines[0] and chroma_server in lines[0]
    assert not (b / "chroma").exists()


def _articles(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        text = (
            f"Council report {i}: the harbour authority of district {i} approved a budget of "
            f"{i + 2} million euros for new piers. Work on district {i} starts next spring."
        )
        (folder / f"report-{i:03d}.txt").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.slow
def test_a_second_writer_waits_for_a_running_ingest_and_never_interleaves(
    chroma_server: str, tmp_path, seeds_dir
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    many = _articles(tmp_path / "many", 200)
    first = subprocess.Popen(
        [sys.executable, "-m", "bot", "ingest", str(many)],
        env=_env(chroma_server, a),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    records = LeaseRecords(_settings(chroma_server, b), open_client(_settings(chroma_server, b)))
    deadline = time.monotonic() + 120
    while not [r for r in records.all() if not r.released and str(a) in r.holder]:
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.1)
    # A is paused while it holds the lease (well within the lease's length), so B's two writers
    # meet a running ingest however fast A would otherwise finish on a quiet machine.
    os.kill(first.pid, signal.SIGSTOP)
    try:
        failed = _bot(_env(chroma_server, b, BOT_LOCK_TIMEOUT="0"), "ingest", str(seeds_dir))
        waiting = subprocess.Popen(
            [sys.executable, "-m", "bot", "ingest", str(seeds_dir)],
            env=_env(chroma_server, b, BOT_LOCK_TIMEOUT="300"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        told = ""
        assert waiting.stderr is not None
        while "waiting for it" not in " ".join(told.split()):
            line = waiting.stderr.readline()
            assert line, "the second writer never said it was waiting"
            told += line
    finally:
        os.kill(first.pid, signal.SIGCONT)
    rest_out, rest_err = waiting.communicate(timeout=300)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0 and "200 added" in out, err
    assert failed.returncode == 1 and len(failed.stderr.strip().splitlines()) == 1
    assert f"data dir {a}" in failed.stderr
    assert waiting.returncode == 0, told + rest_err
    assert "is writing to this index; waiting for it" in " ".join(told.split())
    assert "2 added" in rest_out
    held = records.all()
    assert [str(a) in r.holder for r in held[-2:]] == [True, False]
    assert all(r.released for r in held)
    listed = json.loads(_bot(_env(chroma_server, b), "sources", "--json").stdout)
    assert len(listed) == 202


@pytest.fixture
def two_replicas(chroma_server: str, tmp_path) -> Iterator[tuple[str, str, Path, Path]]:
    """Replicas A and B (`bot serve`, each its own data dir) on harbour-budget reports indexed
    through A."""
    a, b = tmp_path / "a", tmp_path / "b"
    reports = _articles(tmp_path / "reports", REPORTS)
    assert _bot(_env(chroma_server, a), "ingest", str(reports)).returncode == 0
    processes, urls = [], []
    for data_dir in (a, b):
        port = free_port()
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--port", str(port)],
                env=_env(chroma_server, data_dir, BOT_LLM="extractive"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url in urls:
            wait_for_json(f"{url}/healthz")
        yield urls[0], urls[1], a, b
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            _, err = process.communicate(timeout=30)
            assert "Traceback" not in err


def _cached_keyword_ids(data_dir: Path, generation: str) -> list[str]:
    """The chunk ids of the keyword index a replica built for `generation`, from its cache."""
    folders = list((data_dir / "cache" / "bm25").glob(f"*/{generation}-*"))
    assert len(folders) == 1, folders
    return list(json.loads((folders[0] / "chunks.json").read_text(encoding="utf-8"))["ids"])


@pytest.mark.slow
def test_what_one_replica_indexes_another_answers_without_a_restart(
    chroma_server: str, two_replicas: tuple[str, str, Path, Path], tmp_path
) -> None:
    url_a, url_b, a, b = two_replicas
    before = httpx.get(f"{url_b}/healthz").json()["generation"]
    news = tmp_path / "news"
    news.mkdir()
    (news / "reservoir.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    (news / "fete.txt").write_text(FAR_ARTICLE, encoding="utf-8")
    assert _bot(_env(chroma_server, a), "ingest", str(news)).returncode == 0

    question = {"question": f"What happened at the {RARE} reservoir?", "llm": "extractive"}
    answer = httpx.post(f"{url_b}/api/ask", json=question, timeout=120).json()
    generation = httpx.get(f"{url_b}/healthz").json()["generation"]
    assert generation != before
    assert generation == httpx.get(f"{url_a}/healthz").json()["generation"]
    assert not answer["refused"] and RARE in answer["answer"]
    assert any(p["path"].endswith("reservoir.txt") for p in answer["passages"])
    # B's keyword index is the new generation's, built from the server: it holds the new chunk.
    article = next(p["article_id"] for p in answer["passages"] if RARE in p["text"])
    assert chunk_id(article, 0) in _cached_keyword_ids(b, generation)
    listed = json.loads(_bot(_env(chroma_server, a), "sources", "--json").stdout)
    assert httpx.get(f"{url_b}/api/sources").json() == listed
    # A keyword-only hit: the dense ranking alone misses the fete, B's answer has it.
    from bot.index.search import retrieve_passages

    store = open_store(_settings(chroma_server, tmp_path / "probe"))
    dense = retrieve_passages(FAR_QUESTION, store, k=8, mode="dense").passages
    assert dense and not any(p.path.endswith("fete.txt") for p in dense)
    far = httpx.post(f"{url_b}/api/ask", json={"question": FAR_QUESTION}, timeout=120).json()
    assert any(p["path"].endswith("fete.txt") for p in far["passages"]), far["passages"]
