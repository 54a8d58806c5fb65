"""QA benchmark: does `bot` refuse what the articles do not answer, and answer the rest correctly?

    python bench/qa.py [--parts multihop,trap] [--llm extractive] [--limit N] [--jobs 2]
                       [--out bench/out/qa.json]

Parts (results merged into the output JSON, so parts can run separately):
  multihop  ../shared/bench/multihop-rag-sample, indexed as bench/ask.py does (one document per
            article title, its evidence facts as paragraphs), asked in process with
            `answer_question(q, AskOptions(llm=...))`: the share of the 71 null queries refused,
            the share of answerable queries wrongly refused, and, for queries whose gold answer is
            a name or a number (not Yes/No or a judgement) found in their evidence facts, the
            share of answers that contain it (case-insensitive, "1,200" = "1200").
  trap      bench/trap: 27 articles of our own, ingested with `bot ingest` into a temp
            BOT_DATA_DIR, and 100 labelled questions asked with `bot ask --json` (follow-ups with
            `bot chat --json`, earlier questions first). One table per category, then the
            outlet and date `bot sources --json` shows for each article against its dateline.
Then a summary with the targets of "Answers you can trust by default" and OK/MISS.

--limit N keeps the first N queries of each MultiHop question type and the first N items of each
trap category. BOT_CACHE_DIR (default /tmp/bot-bench-cache) keeps derived models between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT_DIR, REPO, load_results  # noqa: E402
from ask import BOT, MULTIHOP, _ingest_multihop, _is_null, _load_multihop  # noqa: E402
from qa_text import contains, normalise  # noqa: E402
from qa_trap import (  # noqa: E402
    ARTICLES_DIR,
    CATEGORIES,
    SNIPPET_CHARS,
    BotRunner,
    Furniture,
    ItemScore,
    ask_all,
    bot_env,
    category_totals,
    load_articles,
    load_items,
    metadata_rows,
    score_item,
)

DEFAULT_CACHE = Path("/tmp/bot-bench-cache")
# Answers that are a verdict about the question, not a name or a number to find in the answer.
JUDGEMENTS = frozenset(
    {"yes", "no", "true", "false", "consistent", "inconsistent", "agree", "disagree", "similar"}
    | {"different", "same", "before", "after", "change", "insufficient information"}
)
TARGET_NULL_REFUSED = 0.95
TARGET_ANSWERABLE_REFUSED = 0.02
TARGET_GOLD_CONTAINED = 0.8

Row = list[Any]


# --- tables ----------------------------------------------------------------------------------


def print_table(title: str, headers: Sequence[Any], rows: Sequence[Sequence[Any]]) -> None:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    print(f"\n{title}")
    for row in cells:
        first = f"  {row[0]:<{widths[0]}}"
        rest = "".join(f"  {v:>{w}}" for v, w in zip(row[1:-1], widths[1:-1], strict=True))
        last = f"  {row[-1]}" if len(row) > 1 else ""
        print(first + rest + last)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1%}"
    return str(value)


def share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.1%})" if whole else "-"


# --- MultiHop-RAG ----------------------------------------------------------------------------


def gold_name_or_number(entry: dict[str, Any]) -> str | None:
    """The gold answer when it is a name or a number stated in the evidence facts, else None."""
    answer = str(entry.get("answer", "")).strip().rstrip(".").strip()
    if not answer or normalise(answer) in JUDGEMENTS:
        return None
    facts = " ".join(str(ev.get("fact", "")) for ev in entry.get("evidence_list") or [])
    return answer if contains(facts, answer) else None


def limit_per_type(queries: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    if limit is None:
        return queries
    taken: dict[str, int] = {}
    kept = []
    for query in queries:
        taken[query["question_type"]] = taken.get(query["question_type"], 0) + 1
        if taken[query["question_type"]] <= limit:
            kept.append(query)
    return kept


def ask_multihop(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every (limited) MultiHop query answered in process: refused, answer, gold containment."""
    from bot.app.ask import AskOptions, answer_question

    queries, truth = _load_multihop()
    queries = limit_per_type(queries, args.limit)
    settings, store, info = _ingest_multihop(work / "multihop")
    print(f"multihop corpus: {info['articles']} articles, {info['chunks']} chunks", flush=True)
    rows = []
    for query in queries:
        result = answer_question(
            query["question"], AskOptions(llm=args.llm), settings=settings, store=store
        )
        gold = gold_name_or_number(truth[query["id"]])
        rows.append(
            {
                "id": query["id"],
                "type": query["question_type"],
                "null": _is_null(query),
                "refused": bool(result.refused),
                "gold": gold,
                "contained": None if gold is None else contains(result.answer, gold),
                "answer": result.answer,
            }
        )
    return {"corpus": info, "queries": rows}


def multihop_totals(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Counts per question type and for all queries."""
    totals: dict[str, dict[str, int]] = {}
    for row in sorted(rows, key=lambda r: r["type"]):
        for key in (row["type"], "all"):
            t = totals.setdefault(key, {"n": 0, "refused": 0, "gold": 0, "contained": 0})
            t["n"] += 1
            t["refused"] += row["refused"]
            t["gold"] += row["gold"] is not None
            t["contained"] += bool(row["contained"])
    return totals


def multihop_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    nulls = [r for r in rows if r["null"]]
    answerable = [r for r in rows if not r["null"]]
    gold = [r for r in rows if r["gold"] is not None]
    return {
        "null_refused": [sum(r["refused"] for r in nulls), len(nulls)],
        "answerable_refused": [sum(r["refused"] for r in answerable), len(answerable)],
        "gold_contained": [sum(bool(r["contained"]) for r in gold), len(gold)],
    }


def print_multihop(result: dict[str, Any]) -> None:
    totals = multihop_totals(result["queries"])
    totals["all"] = totals.pop("all")
    rows = [
        [kind, t["n"], share(t["refused"], t["n"]), t["gold"], share(t["contained"], t["gold"])]
        for kind, t in totals.items()
    ]
    print_table(
        f"MultiHop-RAG sample, llm={result['llm']}, by question type",
        ["type", "n", "refused", "gold name/number", "gold in answer"],
        rows,
    )


def part_multihop(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    if not MULTIHOP.exists():
        print(f"\nmultihop: {MULTIHOP} is missing (../shared beside the checkout); part skipped")
        return {"skipped": True}
    result = ask_multihop(args, work)
    result["llm"] = args.llm
    result["metrics"] = multihop_metrics(result["queries"])
    print_multihop(result)
    return result


# --- trap set --------------------------------------------------------------------------------


def item_row(score: ItemScore) -> Row:
    extra = ""
    if score.flagged is not None:
        flagged = "flagged" if score.flagged else "not flagged"
        extra = f"{flagged} ({score.values_retrieved} in passages)"
    if score.dated is not None:
        extra = "dated" if score.dated else "no date"
    text = score.error or (score.answer if score.outcome == "answered" else score.question)
    snippet = " ".join(text.split())[:SNIPPET_CHARS]
    return [
        score.id,
        score.expect,
        score.outcome,
        "OK" if score.correct else "x",
        score.headline_dateline,
        score.byline_caption,
        score.number_mismatches,
        extra,
        snippet,
    ]


def print_trap(scores: list[ItemScore], metadata: list[dict[str, Any]], llm: str) -> None:
    headers = ["id", "expect", "got", "ok", "hd", "cap", "num", "extra", "answer / question"]
    for category in CATEGORIES:
        mine = [s for s in scores if s.category == category]
        if not mine:
            continue
        t = category_totals(mine)
        print_table(
            f"Trap: {category}, llm={llm}: correct {share(t['correct'], t['n'])}",
            headers,
            [item_row(s) for s in mine],
        )
    print("  hd = answer sentences holding a headline or dateline; cap = a byline or caption;")
    print("  num = citations of a passage lacking a number the sentence states;")
    print("  flagged (N in passages): N of the conflict's values are in the retrieved passages")
    overview = []
    for category in (*CATEGORIES, "all"):
        mine = [s for s in scores if category in ("all", s.category)]
        if mine:
            t = category_totals(mine)
            overview.append(
                [
                    category, t["n"], share(t["correct"], t["n"]), t["refused"], t["errors"],
                    t["wrong_answers"], t["wrong_refusals"], t["headline_dateline"],
                    t["number_mismatches"], f"{t['flagged']}/{t['conflicts']}",
                    f"{t['dated']}/{t['whens']}",
                ]
            )  # fmt: skip
    print_table(
        f"Trap set by category, llm={llm}",
        ["category", "n", "correct", "refused", "errors", "wrong ans", "wrong ref", "hd",
         "num", "flagged", "dated"],
        overview,
    )  # fmt: skip
    print_metadata(metadata)


def print_metadata(metadata: list[dict[str, Any]]) -> None:
    rows = []
    for fmt in sorted({m["format"] for m in metadata}):
        mine = [m for m in metadata if m["format"] == fmt]
        outlets = [m["outlet_ok"] for m in mine if m["outlet_ok"] is not None]
        dates = [m["published_ok"] for m in mine if m["published_ok"] is not None]
        outlet_share, date_share = share(sum(outlets), len(outlets)), share(sum(dates), len(dates))
        rows.append([fmt, len(mine), outlet_share, date_share])
    print_table(
        "Trap articles: outlet and date `bot sources` shows, against the labels",
        ["format", "articles", "outlet right", "date right"],
        rows,
    )


def part_trap(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    labels = load_articles()
    items = load_items(args.limit)
    env = bot_env(work / "trap-data", Path(os.environ.get("BOT_CACHE_DIR", DEFAULT_CACHE)), REPO)
    runner = BotRunner(bot=BOT, env=env, cwd=work, llm=args.llm)
    ingest = runner.json_output(["ingest", str(ARTICLES_DIR), "--json"])
    print(f"\ntrap corpus: {ingest['added']} articles ingested; asking {len(items)} questions")
    replies = ask_all(items, runner.reply, args.jobs)
    furniture = Furniture.from_labels(labels)
    pairs = zip(items, replies, strict=True)
    scores = [score_item(item, reply, furniture) for item, reply in pairs]
    metadata = metadata_rows(labels, runner.json_output(["sources", "--json"]))
    print_trap(scores, metadata, args.llm)
    categories = {c: category_totals([s for s in scores if s.category == c]) for c in CATEGORIES}
    return {
        "llm": args.llm,
        "articles": len(labels),
        "totals": category_totals(scores),
        "categories": categories,
        "items": [s.to_json() for s in scores],
        "replies": replies,
        "metadata": metadata,
    }


# --- summary ---------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "OK" if ok else "MISS"


def multihop_summary(metrics: dict[str, list[int]]) -> list[Row]:
    rows = []
    checks: list[tuple[str, str, str, Callable[[float], bool]]] = [
        ("null_refused", "MultiHop: null queries refused", ">= 95%",
         lambda r: r >= TARGET_NULL_REFUSED),
        ("answerable_refused", "MultiHop: answerable queries wrongly refused", "<= 2%",
         lambda r: r <= TARGET_ANSWERABLE_REFUSED),
        ("gold_contained", "MultiHop: gold name/number in the answer", ">= 80%",
         lambda r: r >= TARGET_GOLD_CONTAINED),
    ]  # fmt: skip
    for key, label, target, passes in checks:
        part, whole = metrics[key]
        met = bool(whole) and passes(part / whole)
        rows.append([label, share(part, whole), target, _verdict(met)])
    return rows


def trap_summary(trap: dict[str, Any]) -> list[Row]:
    off, tot = trap["categories"]["off_topic"], trap["totals"]
    txt = [m for m in trap["metadata"] if m["format"] == "txt"]
    outlets = [m["outlet_ok"] for m in txt if m["outlet_ok"] is not None]
    dates = [m["published_ok"] for m in txt if m["published_ok"] is not None]
    return [
        ["Trap: off-topic questions answered", share(off["answered"], off["n"]), "0",
         _verdict(off["answered"] == 0)],
        ["Trap: answer sentences with a headline or dateline", tot["headline_dateline"], "0",
         _verdict(tot["headline_dateline"] == 0)],
        ["Trap: conflict items flagged as a disagreement", share(tot["flagged"], tot["conflicts"]),
         "all", _verdict(tot["flagged"] == tot["conflicts"])],
        ["Trap: citations of a passage whose numbers differ", tot["number_mismatches"], "0",
         _verdict(tot["number_mismatches"] == 0)],
        ["Trap: when items answered with a date", share(tot["dated"], tot["whens"]), "all",
         _verdict(tot["dated"] == tot["whens"])],
        ["Trap: when items answered with a date and correctly",
         share(tot["dated_correct"], tot["whens"]), "", ""],
        ["Trap: items answered correctly", share(tot["correct"], tot["n"]), "", ""],
        ["Trap: answers whose passages carry right `cited` flags",
         share(tot["cited_flags"], tot["answered"]), "", ""],
        [".txt articles: outlet from the dateline", share(sum(outlets), len(outlets)), "", ""],
        [".txt articles: date from the dateline", share(sum(dates), len(dates)), "", ""],
    ]  # fmt: skip


def print_summary(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    metrics = results.get("multihop", {}).get("metrics")
    if metrics:
        rows += multihop_summary(metrics)
    if "totals" in results.get("trap", {}):
        rows += trap_summary(results["trap"])
    print_table("Summary against the targets", ["measure", "measured", "target", ""], rows)
    return rows


# --- main ------------------------------------------------------------------------------------

PARTS: dict[str, Callable[[argparse.Namespace, Path], dict[str, Any]]] = {
    "multihop": part_multihop,
    "trap": part_trap,
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--parts", default="multihop,trap", help="comma-separated: multihop,trap")
    parser.add_argument("--llm", default="extractive", help="auto | openai | local | extractive")
    parser.add_argument("--limit", type=int, default=None, help="first N per category/type")
    parser.add_argument("--jobs", type=int, default=2, help="trap: `bot` processes at a time")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "qa.json")
    args = parser.parse_args()
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {sorted(PARTS)}")
    args.out = args.out.resolve()
    return args


def main() -> None:
    args = parse_args()
    os.environ.setdefault("BOT_CACHE_DIR", str(DEFAULT_CACHE))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = load_results(args.out)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-qa-") as tmp:
        os.chdir(tmp)  # no `.env` of the caller's shapes the settings
        for part in args.parts:
            t0 = time.perf_counter()
            results[part] = PARTS[part](args, Path(tmp))
            results[part]["seconds"] = round(time.perf_counter() - t0, 1)
            args.out.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
        os.chdir(REPO)
    results["summary"] = print_summary(results)
    seconds = time.perf_counter() - started
    results["seconds"] = round(seconds, 1)
    args.out.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    parts = ", ".join(f"{p} {results[p]['seconds']:.0f} s" for p in args.parts)
    print(f"\nran in {seconds:.0f} s ({parts}); wrote {args.out}")


if __name__ == "__main__":
    main()
