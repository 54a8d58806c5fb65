"""The answer stage of a warm ask, stage by stage, for two trees in the same run.

    python bench/ask.py --parts answer [--answer-asks 60] [--answer-before main]
    python bench/ask_answer.py --profile [--answer-asks 30]      # cProfile of this tree

The index: bench/serve.py's (the MultiHop-RAG sample ingested normally plus filler chunks of
real sentences up to 10,000 chunks, published as a snapshot; built once and kept in
bench/out/serve-work). Each tree runs in its own process with its own code first on the path,
warmed as `bot serve` warms (`ServeState.warm_up`), then asks MultiHop-RAG questions one after
another with `answer_question(..., store=the warm reader)`, extractive, k=6, as the API does.
The trees alternate in rounds, so a change in the machine's load falls on both.

Stages, from `timings_ms`: retrieval, llm (the extractive answer: picking the quotes), checking
(the citation check, the disagreements and the second search for other reports); "gate" is the
rest of the call: reading the question, the answerability gate and dating the answer. "answer"
= llm + checking, the figure with the target; "after retrieval" = the whole call less prepare,
imports, open_index and retrieval. Also the texts (and tokens) the index model ran on per ask:
what no earlier ask of the process had embedded. Each question is asked twice in a row: the
"seen" rows are the second asks, whose sentences the process has embedded already (what an
answer costs once its sentence vectors exist).

"before" is a tree exported from a git ref (`git archive`, default main) into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO  # noqa: E402

PY = REPO / ".venv" / "bin" / "python"
CHUNKS = 10_000
K = 6
TARGET_ANSWER_P50_MS = 60.0
WARMUP_ASKS = 10  # the first asks load what the server's warm-up did not
ROUNDS = 2
SHOWN = ("retrieval", "llm", "checking", "gate", "answer", "after retrieval")
BEFORE_STAGES = ("prepare", "imports", "open_index", "retrieval")


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def questions(n: int, seed: int = 11) -> list[str]:
    import ask as bench_ask

    queries, _ = bench_ask._load_multihop()
    picked = [q["question"] for q in queries]
    random.Random(seed).shuffle(picked)
    return picked[: n + WARMUP_ASKS]


def _stages(timings: dict[str, float], wall: float) -> dict[str, float]:
    """The shown stages of one ask (see the module docstring)."""
    llm, checking = timings.get("llm", 0.0), timings.get("checking", 0.0)
    after = wall - sum(timings.get(k, 0.0) for k in BEFORE_STAGES)
    return {
        "retrieval": timings.get("retrieval", 0.0),
        "llm": llm,
        "checking": checking,
        "gate": after - llm - checking,
        "answer": llm + checking,
        "after retrieval": after,
        "wall": wall,
    }


def child(data: Path, qs: list[str], profile: bool, tree: Path = REPO) -> list[dict[str, float]]:
    """Ask `qs` in this process, with the code of `tree`, against the warm index in `data`;
    per-ask stages."""
    sys.path.insert(0, str(tree))
    import bot

    if not Path(bot.__file__).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"bot was imported from {bot.__file__}, not from {tree}")
    os.environ["BOT_DATA_DIR"] = str(data)
    from bot.app.ask import AskOptions, answer_question
    from bot.core.settings import get_settings
    from bot.serve.state import ServeState

    get_settings.cache_clear()
    state = ServeState(get_settings())
    state.warm_up()
    store, provider = state.reader(), state.provider("extractive")
    options = AskOptions(k=K, llm="extractive")
    embedded = _count_embedded(store.embedder)
    rows: list[dict[str, float]] = []
    profiler = None
    for i, q in enumerate(qs):
        if profile and i == WARMUP_ASKS:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        for seen in (0.0, 1.0) if i >= WARMUP_ASKS else (0.0,):
            embedded.clear()
            t0 = time.perf_counter()
            result = answer_question(q, options, provider=provider, store=store)
            wall = (time.perf_counter() - t0) * 1000
            row = _stages(result.timings_ms, wall) | {"refused": float(result.refused)}
            row["texts embedded"] = float(len(embedded))
            row["tokens embedded"] = float(sum(store.embedder.token_counts(embedded) or [0]))
            row["seen"] = seen
            rows.append(row)
    rows = rows[WARMUP_ASKS:]
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    return rows


def _count_embedded(embedder: Any) -> list[str]:
    """The texts the index model runs on from now on (the memo's misses), as a list to clear
    before each ask. The question model's runs are retrieval's and are not counted."""
    texts: list[str] = []
    run = embedder._embed

    def counted(batch: list[str]) -> Any:
        texts.extend(batch)
        return run(batch)

    embedder._embed = counted
    return texts


def export_tree(ref: str, into: Path) -> Path:
    """The files of `ref` in a folder of their own."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _run_tree(tree: Path, data: Path, qs: list[str]) -> list[dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": str(tree), "ANONYMIZED_TELEMETRY": "False"}
    env.pop("LANGSMITH_TRACING", None)
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        cmd = [str(PY), str(Path(__file__).resolve()), "--child", str(data), "--out", out.name]
        cmd += ["--tree", str(tree), "--questions", json.dumps(qs)]
        subprocess.run(cmd, env=env, check=True, cwd=tree)
        return json.loads(Path(out.name).read_text(encoding="utf-8"))


def summary(rows: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {"asks": len(rows), "refused": int(sum(r["refused"] for r in rows))}
    for key in (*SHOWN, "wall", "texts embedded", "tokens embedded"):
        values = [r[key] for r in rows]
        out[key] = {"p50": round(_pct(values, 50), 2), "p95": round(_pct(values, 95), 2)}
    return out


def render(results: dict[str, Any]) -> str:
    lines = [
        f"Warm ask, answer stage, {results['chunks']} chunks, extractive, k={K}, "
        f"{results['asks']} asks per tree in {ROUNDS} rounds (ms, p50/p95)"
    ]
    head = f"  {'tree':<10}" + "".join(f"{k:>18}" for k in SHOWN) + f"{'refused':>9}"
    lines.append(head)
    for name in ("before", "after", "before seen", "after seen"):
        row = results.get(name)
        if row is None:
            continue
        cells = "".join(f"{row[k]['p50']:>9.1f}/{row[k]['p95']:<8.1f}" for k in SHOWN)
        lines.append(f"  {name:<10}{cells}{row['refused']:>9}")
    for name in ("before", "after"):
        row = results.get(name)
        if row is not None:
            texts, tokens = row["texts embedded"], row["tokens embedded"]
            lines.append(
                f"  {name}: the index model embedded {texts['p50']:.0f} texts "
                f"({tokens['p50']:.0f} tokens) per ask at p50, {texts['p95']:.0f} "
                f"({tokens['p95']:.0f}) at p95"
            )
    after = results["after"]["answer"]["p50"]
    verdict = "OK" if after <= TARGET_ANSWER_P50_MS else "MISS"
    lines.append(f"  answer (llm + checking) p50 <= {TARGET_ANSWER_P50_MS:.0f} ms: {verdict}")
    return "\n".join(lines)


def part_answer(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import serve as bench_serve

    data = bench_serve.build_index(CHUNKS)
    qs = questions(args.answer_asks * ROUNDS)
    before = export_tree(args.answer_before, work / "before-tree")
    rows: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    per_round = args.answer_asks
    for r in range(ROUNDS):
        batch = qs[:WARMUP_ASKS] + qs[WARMUP_ASKS + r * per_round :][:per_round]
        for name, tree in (("before", before), ("after", REPO)):
            rows[name] += _run_tree(tree, data, batch)
            print(f"  round {r + 1}: {name} done", flush=True)
    first_asks = [r for r in rows["after"] if not r["seen"]]
    results: dict[str, Any] = {"chunks": CHUNKS, "asks": len(first_asks)}
    results["before_ref"] = args.answer_before
    for name, found in rows.items():
        results[name] = summary([r for r in found if not r["seen"]])
        results[f"{name} seen"] = summary([r for r in found if r["seen"]])
    print(render(results))
    keys = ("before", "after", "before seen", "after seen")
    print(json.dumps({k: results[k] for k in keys}, indent=1))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--tree", type=Path, default=REPO)
    parser.add_argument("--questions", default="[]")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--answer-asks", type=int, default=30)
    args = parser.parse_args()
    if args.child is not None:
        rows = child(args.child, json.loads(args.questions), profile=False, tree=args.tree)
        args.out.write_text(json.dumps(rows), encoding="utf-8")
        return
    import serve as bench_serve

    data = bench_serve.build_index(CHUNKS)
    rows = child(data, questions(args.answer_asks), profile=args.profile)
    print(json.dumps(summary([r for r in rows if not r["seen"]]), indent=1))


if __name__ == "__main__":
    main()
