"""Soak benchmark: many `ask`s in one process, and several processes asking at once, on one index.

    python bench/soak.py [--asks 1000] [--procs 4] [--proc-asks 100] [--warmup 50] [--corpus DIR]

Setup: a temporary BOT_DATA_DIR indexed from the seed articles (or --corpus), and a fake
OpenAI-compatible server on 127.0.0.1 in its own process (`python -m tests.llm_server --fake-text`),
answering every request at once with one cited sentence. Every ask is
`bot.app.ask.answer_question(question, settings=...)` with BOT_LLM=openai and OPENAI_BASE_URL at
that
server: the whole pipeline each time (open the index, retrieve, prompt, stream the completion,
check citations), questions taken in turn from a fixed list of ten.

Stages, each in its own child process:
  serial    --asks asks in a row. RSS (psutil) at start (bot imported, nothing loaded), after the
            --warmup first asks, every 100 asks and at the end; open file descriptors and threads
            alongside. "growth" = end minus after-warm-up; "slope" = least-squares KB per ask over
            the samples from the warm-up on.
  parallel  --procs processes started at once, --proc-asks asks each, on the same index and server:
            errors, RSS at start and end, and how long they actually overlapped.
An error is any exception an ask raises; refusals and unsupported sentences are counted apart.
The output also lists the kinds of bad input tests/bad_input_corpus.py feeds to `bot ingest`.
Results go to bench/out/soak.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT_DIR, REPO, cpu_info  # noqa: E402

ANSWER = (
    "Zelensky announced that prisoners with combat experience will be released to defend "
    "Ukraine [1]."
)
QUESTIONS = (
    "What did Zelensky announce about prisoners?",
    "Who will be released from custody?",
    "What did Zelensky say to Russian soldiers?",
    "How many children have been killed?",
    "What tactic did the Ukrainian president announce?",
    "Which prisoners can join the fight?",
    "What did leaders and media outlets say about Zelensky?",
    "Where did Zelensky give his speech?",
    "What happened since the fighting broke out?",
    "Why are prisoners being released?",
)
TARGET_GROWTH_MB = 50.0  # "memory flat": what 1,000 asks may add after the warm-up


# --- child stages ------------------------------------------------------------------------------


def _rss_mb(proc: Any) -> float:
    return proc.memory_info().rss / (1024 * 1024)


def _sample(proc: Any, asks: int) -> dict[str, Any]:
    return {
        "asks": asks,
        "rss_mb": round(_rss_mb(proc), 1),
        "fds": proc.num_fds() if hasattr(proc, "num_fds") else None,
        "threads": proc.num_threads(),
        "t": time.time(),
    }


def ask_loop(asks: int, warmup: int, sample_every: int, label: str) -> dict[str, Any]:
    """`asks` asks in a row in this process; errors, latencies and resource samples."""
    import psutil

    from bot.app.ask import answer_question
    from bot.core.settings import get_settings

    me = psutil.Process()
    settings = get_settings()
    samples = [_sample(me, 0)]  # "start": bot imported, nothing loaded or asked yet
    errors: list[str] = []
    refused = unsupported = 0
    latencies: list[float] = []
    first_ask = last_ask = 0.0
    for i in range(1, asks + 1):
        question = QUESTIONS[(i - 1) % len(QUESTIONS)]
        t0 = time.perf_counter()
        if i == 1:
            first_ask = time.time()
        try:
            result = answer_question(question, settings=settings)
        except Exception as exc:  # the benchmark counts every failure, of any kind
            errors.append(f"ask {i}: {type(exc).__name__}: {str(exc)[:200]}")
        else:
            refused += int(result.refused)
            unsupported += sum(1 for s in result.sentences if not s.supported)
        latencies.append(time.perf_counter() - t0)
        last_ask = time.time()
        if i in (warmup, asks) or i % sample_every == 0:
            samples.append(_sample(me, i))
            print(
                f"  {label}: {i}/{asks} asks, RSS {samples[-1]['rss_mb']:.0f} MB", file=sys.stderr
            )
    lat = sorted(latencies)
    return {
        "asks": asks,
        "errors": len(errors),
        "error_samples": errors[:10],
        "refused": refused,
        "unsupported_sentences": unsupported,
        "samples": samples,
        "latency_ms": {
            "p50": 1000 * lat[len(lat) // 2],
            "p95": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.95))],
            "max": 1000 * lat[-1],
            "mean": 1000 * statistics.fmean(lat),
        },
        "first_ask": first_ask,
        "last_ask": last_ask,
    }


def child_main(stage: str, args_json: str) -> int:
    args = json.loads(args_json)
    out = ask_loop(args["asks"], args["warmup"], args["sample_every"], args["label"])
    print(json.dumps(out))
    return 0


def run_children(stage: str, many: list[dict[str, Any]], env: dict[str, str], cwd: Path) -> list:
    """Start one child per argument set at once; wait for all; return their JSON results."""
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", stage, json.dumps(args)],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            text=True,
        )
        for args in many
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"{stage} child failed with exit code {proc.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


# --- setup ---------------------------------------------------------------------------------------


def start_fake_server(cwd: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.llm_server", "--fake-text", ANSWER, "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = (proc.stdout.readline() if proc.stdout else "").strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        raise SystemExit(f"the fake OpenAI server did not start (said {url!r})")
    return proc, url


def build_index(corpus: Path | None, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    code = (
        "import json, sys; from bot.app.ingest import ingest_paths; "
        "r = ingest_paths([sys.argv[1]] if sys.argv[1] else None); print(json.dumps(r.to_json()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(corpus or "")],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bad_input_kinds() -> dict[str, list[str]]:
    """The kinds of bad input tests/bad_input_corpus.py has, by what `bot ingest` must do."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.bad_input_corpus import EXPECTED

    by_outcome: dict[str, list[str]] = {}
    for kind, outcome in EXPECTED.items():
        by_outcome.setdefault(outcome, []).append(kind)
    return by_outcome


# --- results -------------------------------------------------------------------------------------


def slope_kb_per_ask(samples: list[dict[str, Any]]) -> float:
    xs = [s["asks"] for s in samples]
    ys = [s["rss_mb"] * 1024 for s in samples]
    if len(xs) < 2 or len(set(xs)) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def summarise(serial: dict[str, Any], parallel: list[dict[str, Any]], warmup: int) -> dict:
    samples = serial["samples"]
    start = samples[0]
    warm = next(s for s in samples if s["asks"] >= min(warmup, serial["asks"]))
    end = samples[-1]
    after_warm = [s for s in samples if s["asks"] >= warm["asks"]]
    growth = end["rss_mb"] - warm["rss_mb"]
    seconds = serial["last_ask"] - serial["first_ask"]
    overlap = min(p["last_ask"] for p in parallel) - max(p["first_ask"] for p in parallel)
    span = max(p["last_ask"] for p in parallel) - min(p["first_ask"] for p in parallel)
    return {
        "serial": {
            "asks": serial["asks"],
            "errors": serial["errors"],
            "refused": serial["refused"],
            "unsupported_sentences": serial["unsupported_sentences"],
            "rss_start_mb": start["rss_mb"],
            "rss_after_warmup_mb": warm["rss_mb"],
            "rss_end_mb": end["rss_mb"],
            "growth_after_warmup_mb": round(growth, 1),
            "slope_kb_per_ask": round(slope_kb_per_ask(after_warm), 2),
            "fds_warm_end": [warm["fds"], end["fds"]],
            "threads_warm_end": [warm["threads"], end["threads"]],
            "asks_per_s": serial["asks"] / seconds if seconds > 0 else None,
            "latency_ms": serial["latency_ms"],
            "flat": growth <= TARGET_GROWTH_MB * serial["asks"] / 1000 and serial["errors"] == 0,
        },
        "parallel": {
            "procs": len(parallel),
            "asks": sum(p["asks"] for p in parallel),
            "errors": sum(p["errors"] for p in parallel),
            "refused": sum(p["refused"] for p in parallel),
            "rss_start_mb": [p["samples"][0]["rss_mb"] for p in parallel],
            "rss_end_mb": [p["samples"][-1]["rss_mb"] for p in parallel],
            "overlap_s": max(0.0, overlap),
            "span_s": span,
            "latency_p50_ms": [p["latency_ms"]["p50"] for p in parallel],
            "error_samples": [e for p in parallel for e in p["error_samples"]][:10],
        },
    }


def render(r: dict[str, Any]) -> str:
    s, p, env = r["serial"], r["parallel"], r["environment"]
    lines: list[str] = []
    add = lines.append
    add(
        f"bot soak benchmark: {env['cpus']} CPUs, python {env['python']}, chromadb "
        f"{env.get('chromadb', '?')}; load average {env['loadavg_before'][0]:.1f} before, "
        f"{env['loadavg_after'][0]:.1f} after"
    )
    add(
        f"index: {r['index']['articles']} articles, {r['index']['chunks']} chunks; provider openai "
        f"-> fake server on 127.0.0.1 (answers at once: one cited sentence)"
    )
    add("")
    add(f"{'serial: asks in one process':<34}{'value':>14}   target")
    add("-" * 70)
    verdict = "OK" if s["errors"] == 0 else "MISS"
    add(f"{'asks':<34}{s['asks']:>14,}")
    add(f"{'errors':<34}{s['errors']:>14,}   0: {verdict}")
    unsupported = s["unsupported_sentences"]
    add(f"{'refused / unsupported sentences':<34}{s['refused']:>7,} / {unsupported:<6,}")
    add(f"{'RSS at start (MB)':<34}{s['rss_start_mb']:>14,.1f}")
    add(f"{'RSS after warm-up (MB)':<34}{s['rss_after_warmup_mb']:>14,.1f}   "
        f"({r['warmup']} asks)")  # fmt: skip
    add(f"{'RSS at end (MB)':<34}{s['rss_end_mb']:>14,.1f}")
    limit = TARGET_GROWTH_MB * s["asks"] / 1000
    flat = "OK" if s["growth_after_warmup_mb"] <= limit else "MISS"
    add(f"{'growth after warm-up (MB)':<34}{s['growth_after_warmup_mb']:>14,.1f}   "
        f"<= {limit:g}: {flat}")  # fmt: skip
    add(f"{'slope after warm-up (KB/ask)':<34}{s['slope_kb_per_ask']:>14,.2f}")
    if s["fds_warm_end"][0] is not None:
        add(f"{'open fds after warm-up / end':<34}{s['fds_warm_end'][0]:>7} / "
            f"{s['fds_warm_end'][1]:<6}")  # fmt: skip
    add(f"{'threads after warm-up / end':<34}{s['threads_warm_end'][0]:>7} / "
        f"{s['threads_warm_end'][1]:<6}")  # fmt: skip
    if s["asks_per_s"]:
        add(f"{'asks per second':<34}{s['asks_per_s']:>14,.1f}")
    lat = s["latency_ms"]
    add(f"{'latency p50 / p95 / max (ms)':<34}{lat['p50']:>6.0f} / {lat['p95']:.0f} / "
        f"{lat['max']:.0f}")  # fmt: skip
    add("RSS samples (asks: MB): " + ", ".join(
        f"{x['asks']}: {x['rss_mb']:.0f}" for x in r["serial_samples"]))  # fmt: skip
    add("")
    add(f"{'parallel: processes at once':<34}{'value':>14}")
    add("-" * 70)
    add(f"{'processes x asks':<34}{p['procs']:>9} x {p['asks'] // max(1, p['procs']):<4}")
    verdict = "OK" if p["errors"] == 0 else "MISS"
    add(f"{'errors':<34}{p['errors']:>14,}   0: {verdict}")
    add(f"{'refused':<34}{p['refused']:>14,}")
    add("RSS start (MB): " + ", ".join(f"{x:.0f}" for x in p["rss_start_mb"])
        + "; end: " + ", ".join(f"{x:.0f}" for x in p["rss_end_mb"]))  # fmt: skip
    add(f"all asking at once for {p['overlap_s']:.1f} s of {p['span_s']:.1f} s; p50 latency (ms): "
        + ", ".join(f"{x:.0f}" for x in p["latency_p50_ms"]))  # fmt: skip
    for e in (s.get("error_samples") or []) + p["error_samples"]:
        add(f"error: {e}")
    add("")
    kinds = r["bad_input_kinds"]
    total = sum(len(v) for v in kinds.values())
    add(f"bad input tried by tests/test_bad_input.py ({total} kinds, tests/bad_input_corpus.py):")
    for outcome in ("fail", "warn", "ingest", "either", "skip"):
        if kinds.get(outcome):
            add(f"  {outcome} ({len(kinds[outcome])}): " + ", ".join(kinds[outcome]))
    if env["loadavg_before"][0] > (env["cpus"] or 1) * 0.75:
        add("NOTE: the machine was shared (load average above the CPU count): latencies and "
            "asks/s are noisy; errors and memory are not.")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--asks", type=int, default=1000, help="asks in a row in one process")
    parser.add_argument("--procs", type=int, default=4, help="processes asking at once")
    parser.add_argument("--proc-asks", type=int, default=100, help="asks per parallel process")
    parser.add_argument("--warmup", type=int, default=50, help="asks before the baseline RSS")
    parser.add_argument("--corpus", type=Path, default=None, help="index this (default: seeds)")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "soak.json")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.child:
        return child_main(*ns.child)
    if ns.asks < 1 or ns.procs < 1 or ns.proc_asks < 1:
        parser.error("--asks, --procs and --proc-asks must be at least 1")
    warmup = min(ns.warmup, ns.asks)

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bot-soak-") as tmp_name:
        tmp = Path(tmp_name)
        cwd = tmp / "cwd"  # an empty folder: no stray .env
        cwd.mkdir()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("BOT_", "OPENAI_", "LANGSMITH_", "LANGCHAIN_"))
        }
        env.update(
            BOT_DATA_DIR=str(tmp / "data"),
            ANONYMIZED_TELEMETRY="False",
            PYTHONPATH=str(REPO),
        )
        print("indexing…", file=sys.stderr)
        report = build_index(ns.corpus, {**env, "BOT_LLM": "extractive"}, cwd)
        server, url = start_fake_server(cwd)
        try:
            ask_env = {**env, "BOT_LLM": "openai", "OPENAI_BASE_URL": url,
                       "BOT_OPENAI_MODEL": "fake-model", "BOT_LLM_MAX_RETRIES": "0"}  # fmt: skip
            print(f"serial: {ns.asks} asks…", file=sys.stderr)
            common = {"warmup": warmup, "sample_every": 100}
            (serial,) = run_children(
                "serial", [{**common, "asks": ns.asks, "label": "serial"}], ask_env, cwd
            )
            print(f"parallel: {ns.procs} x {ns.proc_asks} asks…", file=sys.stderr)
            many = [
                {
                    **common,
                    "asks": ns.proc_asks,
                    "warmup": min(warmup, ns.proc_asks),
                    "label": f"proc {i + 1}",
                }  # fmt: skip
                for i in range(ns.procs)
            ]
            parallel = run_children("parallel", many, ask_env, cwd)
        finally:
            server.terminate()
            server.wait(10)

    env_info = cpu_info()
    env_info["loadavg_before"] = load_before
    env_info["loadavg_after"] = os.getloadavg()
    result: dict[str, Any] = summarise(serial, parallel, warmup)
    result.update(
        environment=env_info,
        warmup=warmup,
        index={"articles": report["added"], "chunks": report["chunks_embedded"]},
        serial_samples=[
            {k: s[k] for k in ("asks", "rss_mb", "fds", "threads")} for s in serial["samples"]
        ],
        bad_input_kinds=bad_input_kinds(),
        questions=list(QUESTIONS),
        answer=ANSWER,
    )
    result["serial"]["error_samples"] = serial["error_samples"]
    table = render(result)
    result["table"] = table
    print(table)
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    ns.out.write_text(json.dumps(result, indent=2, default=float), encoding="utf-8")
    print(f"\nwrote {ns.out}", file=sys.stderr)
    errors = result["serial"]["errors"] + result["parallel"]["errors"]
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
