"""Store faults through the real CLI: a data directory that cannot be written, a Chroma server that
goes away in the middle of an ingest, an index written by another embedding model or a newer bot.

Each command runs as its own process (`python -m bot ...`). For each: exit code 1, one `error:`
line that names the directory or URL and the fix, no traceback, and an index that is either left
exactly as it was or, after the fault is gone, brought back to exactly the expected articles and
chunks. Tests may run as root, for whom chmod does not stop writes: the read-only cases then start
their commands without CAP_DAC_OVERRIDE (`without_file_override`), so file modes hold.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bad_input_corpus import without_file_override
from tests.llm_server import clean_env
from tests.test_llm_faults import index_snapshot

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
QUESTION = "What did Zelensky announce about prisoners?"


def start_bot(env: dict[str, str], *args: str, obey_modes: bool = False) -> subprocess.Popen[str]:
    """`bot ARGS` in its own process, run from the nearest existing folder above BOT_DATA_DIR
    (a test's temporary folder: no stray .env is read)."""
    cwd = Path(env["BOT_DATA_DIR"]).parent
    while not cwd.is_dir():
        cwd = cwd.parent
    return subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=without_file_override() if obey_modes else None,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out, err


def one_error_line(code: int, out: str, err: str) -> str:
    assert "Traceback" not in err and "unexpected" not in err, err[-3000:]
    assert code == 1, (code, err[-2000:])
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert out == ""
    return lines[0]


def ingest_seeds(data: Path) -> None:
    from bot.app.ingest import ingest_paths
    from bot.core.settings import Settings

    report = ingest_paths([SEEDS], Settings(BOT_DATA_DIR=str(data)))
    assert report.added == 2 and report.failed == 0
    _forget_clients()


def _forget_clients() -> None:
    """Drop this process's cached Chroma clients, so it holds no index open."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


# --- a data directory that cannot be written ------------------------------------------------------


def test_data_dir_under_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder.txt"
    blocker.write_text("a regular file\n")
    data = blocker / "data"  # cannot exist, for root too: its parent is a file
    env = clean_env(data)
    procs = {
        "ingest": start_bot(env, "ingest", str(SEEDS)),
        "ask": start_bot(env, "ask", QUESTION),
        "sources": start_bot(env, "sources", "--json"),
    }
    for name, proc in procs.items():
        line = one_error_line(*finish(proc))
        assert f"Cannot create the data directory {data}" in line, (name, line)
        assert "not a directory" in line.lower() and "BOT_DATA_DIR" in line, (name, line)
    assert blocker.read_text() == "a regular file\n"


def _read_only_run(data: Path, commands: dict[str, tuple[str, ...]]) -> dict[str, tuple]:
    """Each command's (code, stdout, stderr), run at once on `data` made read-only meanwhile."""
    subprocess.run(["chmod", "-R", "a-w", str(data)], check=True)
    try:
        env = clean_env(data)
        procs = {name: start_bot(env, *args, obey_modes=True) for name, args in commands.items()}
        return {name: finish(proc) for name, proc in procs.items()}
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(data)], check=True)


def test_read_only_data_dir_is_refused_and_left_unharmed(tmp_path: Path) -> None:
    from bot.core.settings import Settings
    from bot.index.snapshot import pointer_path

    data = tmp_path / "data"
    ingest_seeds(data)
    before = index_snapshot(data)
    files_before = sorted(str(p.relative_to(data)) for p in data.rglob("*"))
    news = tmp_path / "news"
    news.mkdir()
    (news / "new.txt").write_text("The harbour council of Port Lina met on Tuesday.\n")
    results = _read_only_run(
        data,
        {
            "ingest": ("ingest", str(news)),
            "ingest_rebuild": ("ingest", "--rebuild", str(SEEDS)),
            "ask": ("ask", QUESTION, "--json"),
            "sources": ("sources", "--json"),
        },
    )
    for name in ("ingest", "ingest_rebuild"):
        assert one_error_line(*results[name]) == (
            f"error: Cannot write to the data directory {data}: permission denied "
            "(make it writable, or set BOT_DATA_DIR to a writable folder)"
        ), results[name]
    # The read commands answer from the index's read snapshot, which needs no writing.
    for name in ("ask", "sources"):
        code, out, err = results[name]
        assert code == 0 and json.loads(out), (name, err[-2000:])
    # unharmed: the same records, the same files, and it still answers once writable again
    assert index_snapshot(data) == before
    assert sorted(str(p.relative_to(data)) for p in data.rglob("*")) == files_before
    # Without the snapshot, Chroma answers, and it cannot open a read-only index.
    pointer_path(Settings(BOT_DATA_DIR=str(data))).unlink()
    results = _read_only_run(data, {"ask": ("ask", QUESTION), "sources": ("sources",)})
    lines = {name: one_error_line(*got) for name, got in results.items()}
    for name in ("ask", "sources"):
        assert lines[name].startswith(f"error: The index in {data / 'chroma'} is read-only"), lines
        assert lines[name].endswith(
            "(make the folder writable, or set BOT_DATA_DIR to a writable folder)"
        ), lines[name]
    code, out, err = finish(start_bot(clean_env(data), "sources", "--json"))
    assert code == 0, err
    assert len(json.loads(out)) == 2


# --- a Chroma server that goes away in the middle of an ingest ------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ChromaServer:
    """`chroma run` on 127.0.0.1:port over `path`; can be killed and started again there."""

    def __init__(self, path: Path, port: int) -> None:
        self.path, self.port = path, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> None:
        exe = Path(sys.executable).with_name("chroma")
        cmd = [str(exe) if exe.exists() else "chroma", "run", "--path", str(self.path),
               "--host", "127.0.0.1", "--port", str(self.port)]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
            cwd=self.path.parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chroma run exited with code {self.proc.returncode}")
            try:
                self.client().heartbeat()
                return
            except Exception:
                time.sleep(0.2)
        raise RuntimeError(f"chroma run did not answer on {self.url} within {timeout:.0f} s")

    def client(self) -> Any:
        import chromadb

        return chromadb.HttpClient(host="127.0.0.1", port=self.port)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path / "server-db", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def make_corpus(folder: Path, n: int) -> Path:
    """n distinct articles of 2-4 chunks each."""
    folder.mkdir(parents=True)
    rng = random.Random(11)
    words = [
        "council", "harbour", "minister", "storm", "budget", "court", "ferry", "bridge", "strike",
        "tariff", "vaccine", "drought", "festival", "inquiry", "verdict", "satellite", "merger",
    ]  # fmt: skip
    for i in range(n):
        sentences = [
            f"Report {i}.{j} says the {' '.join(rng.choice(words) for _ in range(12))}."
            for j in range(rng.randint(20, 45))
        ]
        (folder / f"article_{i:03d}.txt").write_text(
            f"Headline {i}\n" + " ".join(sentences) + "\n", encoding="utf-8"
        )
    return folder


def expected_state(corpus: Path) -> dict[str, int]:
    """{article_id: chunks} that ingesting `corpus` with default settings must produce."""
    from bot.core.settings import Settings
    from bot.sources.chunking import chunk_text
    from bot.sources.files import discover_files
    from bot.sources.formats import load_file

    settings = Settings()
    files, errors = discover_files([corpus])
    assert not errors
    expected: dict[str, int] = {}
    for path in files:
        for article in load_file(path, max_bytes=10**8).articles:
            chunks = chunk_text(article.text, settings.chunk_size, settings.chunk_overlap)
            expected[article.article_id] = len(chunks)
    return expected


def server_state(server: ChromaServer) -> dict[str, Any]:
    client = server.client()
    chunks = client.get_collection("news").get(include=["metadatas"])
    per_article: dict[str, int] = {}
    for meta in chunks["metadatas"]:
        per_article[meta["article_id"]] = per_article.get(meta["article_id"], 0) + 1
    articles = client.get_collection("news__articles").get(include=["metadatas"])
    manifest = {
        i: m["n_chunks"] for i, m in zip(articles["ids"], articles["metadatas"], strict=True)
    }
    files = client.get_collection("news__files").count()
    return {"chunks": per_article, "manifest": manifest, "files": files}


# The CLI itself, with ingest writing every 8 chunks instead of every 512, so that the server can
# be killed between two writes of a small corpus.
SMALL_FLUSH_CLI = (
    "import sys, bot.app.ingest; bot.app.ingest.EMBED_BUFFER_CHUNKS = 8; "
    "from bot.ui.cli import main; sys.argv = ['bot', *sys.argv[1:]]; main()"
)


@pytest.mark.slow
@pytest.mark.server
def test_chroma_server_killed_mid_ingest_then_reingest_is_exact(
    tmp_path: Path, chroma_server: ChromaServer
) -> None:
    corpus = make_corpus(tmp_path / "corpus", 24)
    expected = expected_state(corpus)
    assert sum(expected.values()) >= 48  # six writes of 8 chunks at least
    env = clean_env(tmp_path / "data", BOT_CHROMA_URL=chroma_server.url)
    (tmp_path / "data").mkdir()
    victim = subprocess.Popen(
        [sys.executable, "-c", SMALL_FLUSH_CLI, "ingest", str(corpus)],
        env=env,
        cwd=tmp_path / "data",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # wait for the first chunks to land, then pull the server away under the running ingest
    client = chroma_server.client()
    landed = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and victim.poll() is None:
        try:
            landed = client.get_collection("news").count()
        except Exception:
            landed = 0
        if landed:
            break
        time.sleep(0.05)
    assert victim.poll() is None, "the ingest ended before the server could be killed"
    assert 0 < landed < sum(expected.values())
    chroma_server.kill()
    line = one_error_line(*finish(victim))
    assert line.startswith(f"error: Lost the Chroma server at {chroma_server.url} ("), line
    assert "re-run" in line

    # the same server, same path and port, back again: one ingest repairs and completes
    chroma_server.start()
    partial = server_state(chroma_server)
    assert set(partial["manifest"]) < set(expected)  # the first run did not finish
    code, out, err = finish(start_bot(env, "ingest", str(corpus), "--json"))
    assert code == 0, err[-2000:]
    assert "Traceback" not in err
    report = json.loads(out)
    assert report["failed"] == 0
    assert report["added"] + report["unchanged"] == len(expected)
    state = server_state(chroma_server)
    assert state["chunks"] == expected, "chunks in the index differ from the corpus"
    assert state["manifest"] == expected, "the manifest differs from the corpus"
    assert state["files"] == len(expected)
    # and a further ingest finds nothing to do
    code, out, _ = finish(start_bot(env, "ingest", str(corpus), "--json"))
    again = json.loads(out)
    assert code == 0 and again["chunks_embedded"] == 0 and again["unchanged"] == len(expected)


@pytest.mark.server
def test_chroma_server_down_is_one_line_for_every_command(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = clean_env(tmp_path / "data", BOT_CHROMA_URL=url)
    procs = {
        "ingest": start_bot(env, "ingest", str(SEEDS)),
        "ask": start_bot(env, "ask", QUESTION),
        "sources": start_bot(env, "sources"),
    }
    for name, proc in procs.items():
        line = one_error_line(*finish(proc))
        assert line.startswith(f"error: Cannot reach the Chroma server at {url}"), (name, line)
        assert "chroma run" in line


# --- an index written by another embedding model, or by a newer bot -------------------------------


def rewrite_index_metadata(data: Path, **changes: Any) -> None:
    """Change the chunk collection's metadata behind bot's back, as another bot would write it."""
    from bot.core.settings import Settings
    from bot.index.chroma import open_client
    from bot.index.snapshot import retract_snapshot

    settings = Settings(BOT_DATA_DIR=str(data))
    retract_snapshot(settings)  # as every writer does first
    chunks = open_client(settings).get_collection(settings.collection)
    meta = dict(chunks.metadata)
    meta.pop("hnsw:space", None)
    meta.update(changes)
    chunks.modify(metadata=meta)
    _forget_clients()


def test_foreign_or_newer_index_is_refused_by_every_command(tmp_path: Path) -> None:
    other = tmp_path / "other-model"
    newer = tmp_path / "newer-schema"
    for data in (other, newer):
        ingest_seeds(data)
    rewrite_index_metadata(other, embedding_model="text-embedding-3-small", embedding_dim=1536)
    rewrite_index_metadata(newer, bot_schema=99)
    snapshots = {data: index_snapshot(data) for data in (other, newer)}
    procs = {
        (data, cmd): start_bot(clean_env(data), *args)
        for data in (other, newer)
        for cmd, args in {
            "ask": ("ask", QUESTION),
            "sources": ("sources",),
            "ingest": ("ingest", str(SEEDS)),
        }.items()
    }
    for (data, cmd), proc in procs.items():
        line = one_error_line(*finish(proc))
        assert f"The index at {data / 'chroma'}" in line, (cmd, line)
        assert "bot ingest PATHS --rebuild" in line, (cmd, line)
        if data == other:
            assert "text-embedding-3-small (1536 dims)" in line, line
            assert "all-MiniLM-L6-v2" in line, line
        else:
            assert "newer bot (schema 99, this one reads 1)" in line, line
            assert "upgrade bot" in line, line
    for data, before in snapshots.items():
        assert index_snapshot(data) == before  # refused without touching it
    # the fix the message names works
    code, out, err = finish(start_bot(clean_env(other), "ingest", "--rebuild", "--json"))
    assert code == 0, err[-2000:]
    assert json.loads(out)["added"] == 2
    code, out, err = finish(start_bot(clean_env(other), "ask", QUESTION, "--json"))
    assert code == 0, err[-2000:]
    assert json.loads(out)["passages"]
