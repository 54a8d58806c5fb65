"""Kill -9 trials at every write boundary of `bot ingest`, with the files edited, deleted or
renamed before the repair.

    python bench/kill_trials.py [--trials 20] [--first-seed 1] [--jobs 1]
                                [--actions edit,delete,rename]

A trial (tests/kill_trials.py, `run_trial`): a small corpus and its index; a seeded change (a new
article, and some of an edited, a deleted and a renamed one); an ingest of it killed with SIGKILL
right after its 1st write to the index, then its 2nd, ... until one is past its last write; after
each kill, on a copy of what it left, each action (edit, delete or rename the files the change
touched), one ingest to repair, and a check of the index against the files (file records,
article paths, chunks and the paths they cite, `bot sources`, and the passages of an ask about
each article). A (boundary, action) is out of step when the check finds anything.

Each trial runs in a child process of its own (its Chroma indexes stay in that process).
Results go to bench/out/kill_trials.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT_DIR, REPO, cpu_info  # noqa: E402


def child_main(seed: int, root: str) -> int:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.kill_trials import ACTIONS, run_trial

    actions = tuple(os.environ.get("KILL_TRIAL_ACTIONS", ",".join(ACTIONS)).split(","))
    outcomes = run_trial(seed, Path(root), actions)
    print(json.dumps([asdict(o) for o in outcomes]))
    return 0


def run_one(seed: int, actions: str, base: Path) -> list[dict[str, Any]]:
    root = base / f"trial-{seed}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(ANONYMIZED_TELEMETRY="False", KILL_TRIAL_ACTIONS=actions)
    env["BOT_CACHE_DIR"] = str(base / "cache")  # the fast question model, built once
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(seed), str(root)],
        env=env,
        cwd=base,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        print(f"trial {seed} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
        return [{"seed": seed, "boundary": 0, "action": "-", "killed": False,
                 "problems": [f"the trial itself failed: {done.stderr[-300:]}"]}]  # fmt: skip
    outcomes = json.loads(done.stdout.strip().splitlines()[-1])
    bad = sum(1 for o in outcomes if o["problems"])
    kills = len({o["boundary"] for o in outcomes if o["killed"]})
    print(f"  trial {seed}: {kills} write boundaries, {len(outcomes)} repairs, {bad} out of step "
          f"({time.perf_counter() - began:.0f} s)", file=sys.stderr)  # fmt: skip
    return outcomes


def render(outcomes: list[dict[str, Any]], trials: int, actions: list[str]) -> str:
    lines = []
    add = lines.append
    killed = [o for o in outcomes if o["killed"]]
    runs = {(o["seed"], o["boundary"]) for o in killed}
    bad = [o for o in outcomes if o["problems"]]
    add(f"bot kill -9 trials: {trials} trials; {len(runs)} ingests killed at a write boundary "
        f"(every boundary of each trial's change), each repaired after each of "
        f"{', '.join(actions)}")  # fmt: skip
    add("")
    add(f"{'killed after write':<20}" + "".join(f"{a:>21}" for a in actions))
    add("-" * (20 + 21 * len(actions)))
    top = max((o["boundary"] for o in killed), default=0)
    for boundary in range(1, top + 1):
        cells = []
        for action in actions:
            here = [o for o in killed if o["boundary"] == boundary and o["action"] == action]
            out = sum(1 for o in here if o["problems"])
            cells.append(f"{out} / {len(here)} out of step" if here else "-")
        add(f"{boundary:<20}" + "".join(f"{c:>21}" for c in cells))
    cells = []
    for action in actions:
        here = [o for o in outcomes if not o["killed"] and o["action"] == action]
        cells.append(f"{sum(1 for o in here if o['problems'])} / {len(here)} out of step")
    add(f"{'(not killed)':<20}" + "".join(f"{c:>21}" for c in cells))
    add("")
    verdict = "OK" if not bad else "MISS"
    add(f"out of step: {len(bad)} of {len(outcomes)} repairs (target 0): {verdict}")
    for o in bad[:20]:
        add(f"  seed {o['seed']} write {o['boundary']} {o['action']}: {o['problems'][:3]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="trials at once")
    parser.add_argument("--actions", default="edit,delete,rename")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "kill_trials.json")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.child:
        return child_main(int(ns.child[0]), ns.child[1])
    actions = ns.actions.split(",")
    seeds = range(ns.first_seed, ns.first_seed + ns.trials)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bot-kill-") as tmp:
        base = Path(tmp)
        with ThreadPoolExecutor(max_workers=max(1, ns.jobs)) as pool:
            per_trial = list(pool.map(lambda s: run_one(s, ns.actions, base), seeds))
    outcomes = [o for trial in per_trial for o in trial]
    table = render(outcomes, ns.trials, actions)
    print(table)
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "table": table,
        "seconds": round(time.perf_counter() - began, 1),
        "environment": cpu_info(),
        "outcomes": outcomes,
    }
    ns.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"\nwrote {ns.out}", file=sys.stderr)
    return 1 if any(o["problems"] for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
