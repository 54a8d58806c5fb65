"""onnxruntime's CPU memory options, compared for ingest: `python bench/ingest.py --memory`.

Each configuration (the CPU memory arena on or off, memory patterns on or off) embeds the same
chunk texts with `LocalMiniLM` in a process of its own, after a warm-up text that creates the
session. The child reports, from `resource.getrusage(RUSAGE_SELF)` around the embedding alone:
CPU user and system seconds, minor and major page faults; and the process's peak RSS, chunks per
second of wall time and of CPU time. The configurations run in turn, round after round, so a
change in the machine's load falls on all of them; CPU seconds and page faults barely move with
load, wall time does. Vectors are compared with the first configuration's.

Chunks: `--corpus DIR` (files bot ingests), else ../shared/bench/cnndm-100/src.txt (one CNN
article per line), else the bundled seeds; chunked as `bot ingest` does (default settings).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import SHARED

# (name, arena, pattern). The first is the reference: the others' peak RSS may not exceed its.
CONFIGS = (
    ("arena off, pattern on", False, True),
    ("arena on, pattern on", True, True),
    ("arena on, pattern off", True, False),
    ("arena off, pattern off", False, False),
)
DEFAULT_CHUNKS = 600  # a few hundred ingest-sized chunks: seconds per configuration
DEFAULT_ROUNDS = 2
# The kernel's share of CPU time a configuration may take (issue: "ingest without churn").
MAX_KERNEL_SHARE = 0.05

RunChild = Callable[[str, dict[str, Any], Path], dict[str, Any]]


def chunk_texts(corpus: Path | None, limit: int) -> tuple[str, list[str]]:
    """(where the texts come from, up to `limit` chunk texts as `bot ingest` makes them)."""
    from bot.core.settings import Settings, bundled_seeds_dir
    from bot.sources.chunking import chunk_text
    from bot.sources.files import discover_files
    from bot.sources.formats import load_file

    settings = Settings()
    cnn = SHARED / "cnndm-100" / "src.txt"
    if corpus is None and cnn.is_file():
        articles = [line.strip() for line in cnn.read_text(encoding="utf-8").splitlines()]
        origin = str(cnn)
    else:
        folder = corpus or bundled_seeds_dir()
        files, _ = discover_files([folder])
        articles = [a.text for f in files for a in load_file(f, max_bytes=1 << 26).articles]
        origin = str(folder)
    texts: list[str] = []
    for text in articles:
        chunks = chunk_text(text, settings.chunk_size, settings.chunk_overlap)
        texts.extend(c.text for c in chunks if c.text.strip())
    return origin, texts[:limit]


def stage_memory(args: dict[str, Any]) -> dict[str, Any]:
    """Child: embed the chunk texts with one memory configuration; rusage of the embedding."""
    import numpy as np

    from bot.index.embeddings import LocalMiniLM, SessionMemory

    texts = json.loads(Path(args["texts_file"]).read_text(encoding="utf-8"))
    memory = SessionMemory(arena=args["arena"], pattern=args["pattern"])
    model = LocalMiniLM(batch_size=32, memory=memory)
    model.embed(["warm-up: create the session"])
    before, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    vectors = model.embed(texts)
    wall = time.perf_counter() - wall0
    after = resource.getrusage(resource.RUSAGE_SELF)
    np.save(args["vectors_file"], vectors)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return {
        "chunks": len(texts),
        "cpu_user_s": user,
        "cpu_system_s": system,
        "kernel_share": system / (user + system) if user + system else 0.0,
        "minor_faults": after.ru_minflt - before.ru_minflt,
        "major_faults": after.ru_majflt - before.ru_majflt,
        "wall_s": wall,
        "chunks_per_s": len(texts) / wall,
        "chunks_per_cpu_s": len(texts) / (user + system),
    }


def compare(
    run_child: RunChild, tmp: Path, cwd: Path, corpus: Path | None, **opts: int
) -> dict[str, Any]:
    """Every configuration in its own process, `rounds` times in turn; the mean of each figure."""
    import numpy as np

    origin, texts = chunk_texts(corpus, opts.get("chunks", DEFAULT_CHUNKS))
    texts_file = tmp / "memory-texts.json"
    texts_file.write_text(json.dumps(texts), encoding="utf-8")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in CONFIGS}
    for round_no in range(opts.get("rounds", DEFAULT_ROUNDS)):
        for i, (name, arena, pattern) in enumerate(CONFIGS):
            args = {"texts_file": str(texts_file), "arena": arena, "pattern": pattern}
            args["vectors_file"] = str(tmp / f"memory-{i}.npy")
            runs[name].append(run_child("memory", args, cwd))
            print(f"  memory round {round_no + 1}: {name} done", flush=True, file=sys.stderr)
    first = np.load(tmp / "memory-0.npy")
    rows = []
    for i, (name, arena, pattern) in enumerate(CONFIGS):
        mean = {k: sum(r[k] for r in runs[name]) / len(runs[name]) for k in runs[name][0]}
        diff = float(np.abs(np.load(tmp / f"memory-{i}.npy") - first).max())
        rows.append({"config": name, "arena": arena, "pattern": pattern, **mean})
        rows[-1]["max_vector_diff"] = diff
    return {"chunks_from": str(origin), "chunks": len(texts), "rows": rows, "runs": runs}


def render_memory(result: dict[str, Any]) -> str:
    """The comparison as a table, and which configuration the figures pick."""
    head = (
        f"{'configuration':<24} {'user s':>7} {'sys s':>7} {'kernel':>7} {'minor flt':>10} "
        f"{'peak MB':>8} {'chunks/s':>9} {'ch/cpu-s':>9} {'max |dv|':>9}"
    )
    lines = [f"onnxruntime CPU memory, {result['chunks']} chunks of {result['chunks_from']}:", head]
    for r in result["rows"]:
        lines.append(
            f"{r['config']:<24} {r['cpu_user_s']:>7.1f} {r['cpu_system_s']:>7.2f} "
            f"{r['kernel_share']:>6.1%} {r['minor_faults']:>10,.0f} {r['peak_rss_mb']:>8.0f} "
            f"{r['chunks_per_s']:>9.1f} {r['chunks_per_cpu_s']:>9.2f} {r['max_vector_diff']:>9.1e}"
        )
    pick = pick_config(result["rows"])
    lines.append(f"pick: {pick or 'none meets the kernel share and peak RSS limits'}")
    return "\n".join(lines)


def pick_config(rows: list[dict[str, Any]]) -> str | None:
    """The configuration with the least CPU per chunk among those whose kernel share is under
    `MAX_KERNEL_SHARE` and whose peak RSS is no higher than the reference's (the first row)."""
    reference = rows[0]["peak_rss_mb"]
    fit = [
        r for r in rows if r["kernel_share"] < MAX_KERNEL_SHARE and r["peak_rss_mb"] <= reference
    ]
    best = max(fit, key=lambda r: r["chunks_per_cpu_s"], default=None)
    return None if best is None else str(best["config"])
