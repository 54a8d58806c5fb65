"""`bot serve` under load: many clients asking at once, a warm ask stage by stage, and both again
while `bot ingest` writes the index in another process.

    python bench/serve.py [--chunks 10000] [--clients 50] [--asks 20] [--warm 100]

The index: the MultiHop-RAG sample corpus ingested normally, plus filler chunks of real sentences
(bench/ask.py `build_filler`) up to --chunks, published as a snapshot as `bot ingest` leaves it;
kept in bench/out/serve-work between runs. The server: `bot serve` (extractive answers) as its own
process; its RSS is sampled every RSS_EVERY seconds. Questions: MultiHop-RAG queries.

  warm     --warm asks one after another: client latency p50/p95 and each `timings_ms` stage's
           p50; "rest" = client time minus those stages: the answerability gate (which has no
           stage of its own), HTTP and JSON; "healthz" = an HTTP round trip with no pipeline.
  load     --clients concurrent clients, --asks each: p50/p95/p99, errors, asks per second.
  ingest   the load again while `bot ingest` adds --ingest-articles new articles; the server
           must keep answering and afterwards answer from the new generation.
Results: a table on stdout and bench/out/serve.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT_DIR, REPO, cpu_info  # noqa: E402

PY = REPO / ".venv" / "bin" / "python"
WORK = OUT_DIR / "serve-work"
TARGET_WARM_P50_MS = 60.0
RSS_EVERY = 0.5  # seconds between RSS samples of the server
STAGES = ("prepare", "imports", "open_index", "retrieval", "checking")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def build_index(chunks: int) -> Path:
    """The data folder of an index of `chunks` chunks (built once, then reused)."""
    import ask as bench_ask
    import numpy as np

    data = WORK / "data"
    done = WORK / f"built-{chunks}"
    if done.exists():
        return data
    from bot.index.snapshot import publish_snapshot

    settings, store, info = bench_ask._ingest_multihop(data)
    sentences = bench_ask._real_sentences(4000)
    vectors = np.asarray(store.embedder.embed(sentences), dtype=np.float32)
    rng = np.random.default_rng(3)
    bench_ask.build_filler(store, chunks - info["chunks"], 0, (sentences, vectors), rng)
    store.set_state(dirty=False, new_generation=True)
    if not publish_snapshot(store):
        raise SystemExit("the index has no snapshot: the server would read Chroma")
    done.write_text(json.dumps({"chunks": store.chunk_count()}), encoding="utf-8")
    return data


def questions(n: int) -> list[str]:
    import ask as bench_ask

    queries, _ = bench_ask._load_multihop()
    picked = [q["question"] for q in queries]
    random.Random(7).shuffle(picked)
    return (picked * (n // len(picked) + 1))[:n]


class Server:
    """`bot serve` as a process, with its RSS sampled in a thread."""

    def __init__(self, data: Path, port: int) -> None:
        import psutil

        env = {**os.environ, "BOT_DATA_DIR": str(data), "BOT_LLM": "extractive"}
        env.update({"ANONYMIZED_TELEMETRY": "False", "PYTHONPATH": str(REPO)})
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(WORK / "server.log", "w", encoding="utf-8")  # noqa: SIM115
        cmd = [str(PY), "-m", "bot", "serve", "--port", str(port)]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.proc.pid)
        self.rss: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self.started = time.monotonic()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.is_set() and self.proc.poll() is None:
            mb = self.ps.memory_info().rss / 2**20
            self.rss.append((round(time.monotonic() - self.started, 2), round(mb, 1)))
            self._stop.wait(RSS_EVERY)

    def wait_ready(self) -> None:
        import httpx

        for _ in range(600):
            try:
                httpx.get(f"{self.url}/healthz", timeout=5).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.5)
        raise SystemExit("bot serve did not start; see bench/out/serve-work/server.log")

    def rss_between(self, t0: float, t1: float) -> list[float]:
        a, b = t0 - self.started, t1 - self.started
        return [mb for t, mb in self.rss if a <= t <= b]

    def stop(self) -> None:
        self._stop.set()
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()


def warm(server: Server, qs: list[str]) -> dict[str, Any]:
    """Asks one after another: client latency and each pipeline stage, p50."""
    import httpx

    totals: list[float] = []
    stages: dict[str, list[float]] = {}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for q in qs[:10]:  # the first asks load what the server's warm-up did not
            client.post("/api/ask", json={"question": q})
        for q in qs:
            t0 = time.perf_counter()
            response = client.post("/api/ask", json={"question": q})
            total = (time.perf_counter() - t0) * 1000
            timings = response.json()["timings_ms"]
            totals.append(total)
            for key, ms in timings.items():
                stages.setdefault(key, []).append(ms)
            stages.setdefault("rest", []).append(total - sum(timings.values()))
        floor = []
        for _ in range(20):
            t0 = time.perf_counter()
            client.get("/healthz")
            floor.append((time.perf_counter() - t0) * 1000)
        stages["healthz"] = floor
    row = {"asks": len(qs), "p50": pct(totals, 50), "p95": pct(totals, 95)}
    row["stages_p50"] = {k: round(statistics.median(v), 2) for k, v in stages.items()}
    return row


async def _client(url: str, qs: list[str], out: dict[str, list[Any]]) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        for q in qs:
            t0 = time.perf_counter()
            try:
                response = await client.post("/api/ask", json={"question": q})
                ok = response.status_code == 200
                err = "" if ok else f"{response.status_code}: {response.text[:120]}"
            except httpx.HTTPError as exc:
                err = f"{type(exc).__name__}: {exc}"
            out["ms"].append((time.perf_counter() - t0) * 1000)
            if err:
                out["errors"].append(err)


def load(server: Server, clients: int, asks: int) -> dict[str, Any]:
    """`clients` concurrent clients, `asks` asks each."""
    qs = questions(clients * asks)
    out: dict[str, list[Any]] = {"ms": [], "errors": []}

    async def run() -> None:
        await asyncio.gather(
            *(_client(server.url, qs[i * asks : (i + 1) * asks], out) for i in range(clients))
        )

    t0 = time.monotonic()
    asyncio.run(run())
    t1 = time.monotonic()
    rss = server.rss_between(t0, t1)
    ms = out["ms"]
    return {
        "clients": clients,
        "asks": len(ms),
        "errors": len(out["errors"]),
        "error_samples": out["errors"][:5],
        "p50": pct(ms, 50),
        "p95": pct(ms, 95),
        "p99": pct(ms, 99),
        "asks_per_s": len(ms) / (t1 - t0),
        "seconds": t1 - t0,
        "rss_mb": {"first": rss[0], "max": max(rss), "last": rss[-1]} if rss else {},
    }


def write_articles(folder: Path, n: int) -> None:
    """`n` new articles of real sentences (10 each), for the ingest that runs during the load."""
    import ask as bench_ask

    folder.mkdir(parents=True, exist_ok=True)
    sentences = bench_ask._real_sentences(20_000)[-n * 10 :]
    for i in range(n):
        body = " ".join(sentences[i * 10 : (i + 1) * 10])
        (folder / f"added-{i:04d}.txt").write_text(f"Added article {i}\n\n{body}\n", "utf-8")


def during_ingest(server: Server, data: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The load again while `bot ingest` adds new articles in another process."""
    import httpx

    folder = WORK / f"added-{args.ingest_articles}"
    if not folder.exists():
        write_articles(folder, args.ingest_articles)
    before = httpx.get(f"{server.url}/healthz").json()["generation"]
    env = {**os.environ, "BOT_DATA_DIR": str(data), "PYTHONPATH": str(REPO)}
    cmd = [str(PY), "-m", "bot", "ingest", str(folder)]
    ingest = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    row = load(server, args.clients, args.asks)
    rounds = 0
    while ingest.poll() is None:  # keep asking until the ingest ends
        extra = load(server, args.clients // 5 or 1, 4)
        row["errors"] += extra["errors"]
        rounds += 1
    row["extra_rounds_until_ingest_ended"] = rounds
    row["ingest_exit"] = ingest.returncode
    row["ingest_report"] = (ingest.stdout.read() if ingest.stdout else "").strip()
    after = httpx.get(f"{server.url}/healthz").json()["generation"]
    row["new_generation_served"] = after != before
    return row


def render(r: dict[str, Any]) -> str:
    lines = [f"bot serve, {r['chunks']} chunks, extractive, {r['cpu'].get('cpus', '?')} cores"]
    w = r["warm"]
    verdict = "ok" if w["p50"] <= TARGET_WARM_P50_MS else "over target"
    lines.append(
        f"warm ask ({w['asks']} in a row): p50 {w['p50']:.1f} ms, p95 {w['p95']:.1f} ms "
        f"(target p50 <= {TARGET_WARM_P50_MS:.0f} ms: {verdict})"
    )
    lines.append("  stages p50 (ms): " + ", ".join(f"{k} {v}" for k, v in w["stages_p50"].items()))
    head = f"{'run':<16}{'asks':>6}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
    lines.append(head + f"{'asks/s':>8}   RSS MB first/max/last")
    for name in ("load", "during_ingest"):
        row = r[name]
        rss = row["rss_mb"]
        lines.append(
            f"{name:<16}{row['asks']:>6}{row['errors']:>8}{row['p50']:>9.0f}{row['p95']:>9.0f}"
            f"{row['p99']:>9.0f}{row['asks_per_s']:>8.1f}   "
            f"{rss.get('first', 0):.0f}/{rss.get('max', 0):.0f}/{rss.get('last', 0):.0f}"
        )
    ing = r["during_ingest"]
    lines.append(
        f"ingest during load: exit {ing['ingest_exit']}, new generation served without restart: "
        f"{ing['new_generation_served']}; {ing['ingest_report']}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--asks", type=int, default=20)
    parser.add_argument("--warm", type=int, default=100)
    parser.add_argument("--ingest-articles", type=int, default=100)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    WORK.mkdir(parents=True, exist_ok=True)
    data = build_index(args.chunks)
    server = Server(data, args.port)
    try:
        server.wait_ready()
        result: dict[str, Any] = {"chunks": args.chunks, "cpu": cpu_info()}
        result["warm"] = warm(server, questions(args.warm))
        print(f"  warm p50 {result['warm']['p50']:.1f} ms", flush=True)
        result["load"] = load(server, args.clients, args.asks)
        print(f"  load p50 {result['load']['p50']:.0f} ms", flush=True)
        result["during_ingest"] = during_ingest(server, data, args)
        result["rss_samples"] = server.rss
    finally:
        server.stop()
    (OUT_DIR / "serve.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(render(result))


if __name__ == "__main__":
    main()
