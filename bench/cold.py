"""Cold `bot ask --llm extractive` on the seeds, tree against tree, as fresh processes.

    python bench/cold.py [--runs 5] [--tree NAME=PATH ...] [--question Q]

Each tree (default: this checkout, as "this") gets its own data folder with the seeds ingested
and its `bot` package byte-compiled (as a user's machine has it after the first run); then one
discarded run per tree, then `--runs` rounds in which every tree runs once, in turn, so a busy
machine weighs on all trees alike. A run is `<tree>/.venv/bin/bot ask Q --llm extractive
--timings` with PYTHONPATH at the tree. Per tree, the medians (ms) of the stages `--timings`
prints, the wall time, the wall time outside the LLM (wall minus `llm` and `llm_load`: the
extractive answer counts as the LLM) and the CPU time (user + system, all threads) are printed as
a table and written to bench/out/cold.json with every run and the load average before and after.
Target: at most 1.5 s outside the LLM on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT_DIR, REPO  # noqa: E402

QUESTION = "what did Zelensky announce?"
STAGES = ["cli", "setup", "prepare", "imports", "open_index", "retrieval", "llm", "checking"]
COLUMNS = [*STAGES, "render", "total", "wall", "outside_llm", "cpu"]
BUDGET_MS = 1500.0  # issue 12: a cold extractive ask outside the LLM, on 2 cores


def _env(tree: Path, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "OPENAI_", "LANG"))}
    env.update(
        PYTHONPATH=str(tree),
        ANONYMIZED_TELEMETRY="False",
        BOT_DATA_DIR=str(data / "data"),
        BOT_CACHE_DIR=str(data / "cache"),
    )
    return env


def _run(tree: Path, env: dict[str, str], question: str) -> dict[str, float]:
    """One cold ask: its `--timings` stages, wall, outside_llm and CPU time (ms)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    cmd = [str(tree / ".venv/bin/bot"), "ask", question, "--llm", "extractive", "--timings"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in proc.stderr.splitlines() if line.startswith('{"timings_ms"')]
    if proc.returncode or not lines:
        raise SystemExit(f"{tree}: bot ask failed ({proc.returncode}): {proc.stderr[-500:]}")
    row: dict[str, float] = json.loads(lines[-1])["timings_ms"]
    row["wall"] = wall
    row["outside_llm"] = wall - row.get("llm", 0.0) - row.get("llm_load", 0.0)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    row["cpu"] = cpu * 1000
    return row


def _prepare(tree: Path, env: dict[str, str]) -> None:
    bot = str(tree / ".venv/bin/bot")
    subprocess.run([bot, "ingest"], env=env, capture_output=True, check=True)
    python = str(tree / ".venv/bin/python")
    subprocess.run([python, "-m", "compileall", "-q", str(tree / "bot")], env=env, check=True)


def _table(medians: dict[str, dict[str, float]], runs: int) -> str:
    width = max(8, *(len(name) + 2 for name in medians))
    lines = [f"cold bot ask --llm extractive, seeds, median of {runs} processes (ms)"]
    lines.append("tree".ljust(width) + "".join(f"{c:>12}" for c in COLUMNS))
    for name, med in medians.items():
        lines.append(name.ljust(width) + "".join(f"{med[c]:12.0f}" for c in COLUMNS))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH (repeatable)")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--out", type=Path, default=OUT_DIR / "cold.json")
    args = parser.parse_args()
    trees = dict(item.split("=", 1) for item in args.tree) or {"this": str(REPO)}
    work = Path(tempfile.mkdtemp(prefix="bot-cold-"))
    envs = {name: _env(Path(path), work / name) for name, path in trees.items()}
    try:
        for name, path in trees.items():
            _prepare(Path(path), envs[name])
            _run(Path(path), envs[name], args.question)  # discarded: the OS caches the files
        load_before = os.getloadavg()
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for _ in range(args.runs):
            for name, path in trees.items():
                runs[name].append(_run(Path(path), envs[name], args.question))
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    medians = {
        name: {c: statistics.median(r.get(c, 0.0) for r in rows) for c in COLUMNS}
        for name, rows in runs.items()
    }
    print(_table(medians, args.runs))
    print(f"load average (1, 5, 15 min): before {load_before}, after {load_after}")
    for name, med in medians.items():
        verdict = "OK" if med["outside_llm"] <= BUDGET_MS else "over"
        print(f"{name}: {med['outside_llm']:.0f} ms outside the LLM (budget 1500): {verdict}")
    result: dict[str, Any] = {
        "question": args.question,
        "trees": trees,
        "load_before": load_before,
        "load_after": load_after,
        "median": medians,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
