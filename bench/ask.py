"""Ask benchmark: MultiHop-RAG retrieval quality, retrieval latency at scale, cold `bot ask` time.

    python bench/ask.py [--parts quality,latency,cold,retrieval-procs,answer]
                        [--sizes 10000,100000] [--queries 100] [--answer-sample N]
                        [--answer-asks 30] [--answer-before main]

Parts (results merged into bench/out/ask.json, so parts can run separately):
  quality  Corpus from ../shared/bench/multihop-rag-sample: one .json record per article title (its
           evidence facts joined as paragraphs; title/source/url/published from the evidence),
           ingested
           with default settings into a temp BOT_DATA_DIR. For the 429 answerable queries: Hits@4,
           Hits@10, MRR@10 (MultiHop-RAG definition: a retrieved chunk is a hit when a gold fact is
           a
           whitespace-normalised substring of it; Hits@k = share of queries with a hit in the top k;
           MRR@10 = mean 1/rank of the first hit) for dense, bm25, hybrid+MMR (default lambda) and
           hybrid without MMR (lambda 1.0), all k=10. Refusal: `answer_question(q,
           AskOptions(llm="extractive"))` at default settings on the 71 null queries and on the
           answerable ones (all, or a fixed sample with --answer-sample), plus the share each
           min_relevance threshold would refuse, from Retrieval.best_dense of hybrid retrieval.
  latency  Indexes of N chunks: the multihop corpus ingested normally, plus filler chunks written
           straight into the chunk collection (see `build_filler`), with matching article manifest
           entries, then a new generation. Warm p50/p95 of retrieve_passages (hybrid, k=BOT_TOP_K,
           default MMR) and of each timings_ms stage. Sizes grow in place (10k, then up to 100k).
  cold     `bot ask "what did Zelensky announce?" --timings` as a fresh process, 5 runs per cell
           after one discarded run, for each provider (extractive; openai against a 127.0.0.1
           fake server that answers at once; local SmolLM2 unless --skip-local) on two indexes
           (the seeds; the seeds plus filler up to 10,000 chunks). bot's own modules are
           byte-compiled first, as they are on a user's machine after the first run (this
           sandbox sets PYTHONDONTWRITEBYTECODE). Stages, from `--timings`: start+exit (the
           interpreter, typer, and the exit after the output), cli, setup, prepare, imports,
           open_index, retrieval, llm_load (making the provider: loading the GGUF for local),
           llm, checking, render. "outside llm" = wall - llm_load - llm. Plus a -X importtime
           breakdown.
  retrieval-procs
           Each configuration of the question model (index model; fast int8 copy with its
           onnxruntime threads spinning or not, one or two intra-op threads; main's and this
           tree's defaults) in its own process, as users run them, on the MultiHop-RAG index and
           one grown with filler to the first --sizes (plus --extra-index ones): warm p50/p95 of
           retrieve_passages and its stages, CPU ms per question, and each total p50 as a ratio
           to the index model's in the same round; rounds interleaved (--rounds).
  answer   The answer stage of a warm ask (extractive, k=6) stage by stage on bench/serve.py's
           10,000-chunk index, this tree against --answer-before (a git ref) in the same run:
           see bench/ask_answer.py.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT_DIR, REPO, SHARED, load_results  # noqa: E402
from ask_answer import part_answer  # noqa: E402

MULTIHOP = SHARED / "multihop-rag-sample"
CNNDM = SHARED / "cnndm-100" / "src.txt"
BOT = REPO / ".venv" / "bin" / "bot"
PY = REPO / ".venv" / "bin" / "python"

TARGET_P50_MS_100K = 20.0
TARGET_COLD_S = 1.5
THRESHOLDS = (0.2, 0.3, 0.4, 0.5)
MODES = (
    ("dense", "dense", None),
    ("bm25", "bm25", None),
    ("hybrid (MMR default)", "hybrid", "default"),
    ("hybrid (no MMR, l=1.0)", "hybrid", 1.0),
)


# --- helpers ---


def _settings(data_dir: Path, **env: str) -> Any:
    os.environ["BOT_DATA_DIR"] = str(data_dir)
    for key, value in env.items():
        os.environ[key] = value
    from bot.core.settings import Settings, get_settings

    get_settings.cache_clear()
    return Settings()


def _norm(text: str) -> str:
    return " ".join(text.split())


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[idx]


def _load_multihop() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    queries = json.loads((MULTIHOP / "queries.json").read_text(encoding="utf-8"))["queries"]
    truth = json.loads((MULTIHOP / "ground_truth.json").read_text(encoding="utf-8"))
    return queries, truth


def _is_null(query: dict[str, Any]) -> bool:
    return "null" in query["question_type"]


def write_multihop_corpus(folder: Path) -> int:
    """One .json record per article title; its distinct facts in first-seen order as paragraphs."""
    _, truth = _load_multihop()
    articles: dict[str, dict[str, Any]] = {}
    for entry in truth.values():
        for ev in entry.get("evidence_list") or []:
            art = articles.setdefault(
                ev["title"],
                {
                    "title": ev["title"],
                    "source": ev.get("source", ""),
                    "url": ev.get("url", ""),
                    "published": ev.get("published_at", ""),
                    "facts": [],
                },
            )
            if ev["fact"] not in art["facts"]:
                art["facts"].append(ev["fact"])
    folder.mkdir(parents=True, exist_ok=True)
    for n, art in enumerate(articles.values()):
        record = {k: art[k] for k in ("title", "source", "url", "published")}
        record["text"] = "\n\n".join(art["facts"])
        (folder / f"{n:04d}.json").write_text(json.dumps(record, ensure_ascii=False), "utf-8")
    return len(articles)


def _ingest_multihop(data_dir: Path) -> tuple[Any, Any, dict[str, Any]]:
    from bot.app.ingest import ingest_paths
    from bot.index.store import open_store

    settings = _settings(data_dir)
    corpus = data_dir.parent / "multihop-corpus"
    n_articles = write_multihop_corpus(corpus)
    t0 = time.perf_counter()
    report = ingest_paths([corpus], settings)
    seconds = time.perf_counter() - t0
    store = open_store(settings)
    info = {
        "articles_written": n_articles,
        "ingest_seconds": round(seconds, 1),
        "articles": store.article_count(),
        "chunks": store.chunk_count(),
        "errors": len(report.errors),
    }
    return settings, store, info


# --- part 1: quality ---


def part_quality(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from bot.app.ask import AskOptions, answer_question
    from bot.index.search import retrieve_passages
    from bot.index.store import open_reader

    queries, truth = _load_multihop()
    settings, _, info = _ingest_multihop(work / "quality")
    store = open_reader(settings)  # what `bot ask` reads: the snapshot when it is current
    print(
        f"\nmultihop corpus: {info['articles']} articles, {info['chunks']} chunks, "
        f"ingested in {info['ingest_seconds']} s; read from {type(store).__name__}"
    )
    answerable = [q for q in queries if not _is_null(q)]
    nulls = [q for q in queries if _is_null(q)]

    modes: dict[str, dict[str, float]] = {}
    best_dense: dict[str, float] = {}
    for label, mode, lam in MODES:
        hits4 = hits10 = 0
        rr = 0.0
        recall10 = 0.0
        t0 = time.perf_counter()
        for q in answerable:
            gold = [_norm(ev["fact"]) for ev in truth[q["id"]]["evidence_list"]]
            lam_value = settings.mmr_lambda if lam == "default" else (lam or 1.0)
            found = retrieve_passages(q["question"], store, k=10, mode=mode, mmr_lambda=lam_value)
            if label.startswith("hybrid (MMR"):
                best_dense[q["id"]] = found.best_dense
            texts = [_norm(p.text) for p in found.passages[:10]]
            first = next((i for i, t in enumerate(texts) if any(g in t for g in gold)), None)
            if first is not None:
                hits10 += 1
                hits4 += first < 4
                rr += 1.0 / (first + 1)
            recall10 += sum(any(g in t for t in texts) for g in gold) / max(1, len(gold))
        n = len(answerable)
        modes[label] = {
            "hits@4": hits4 / n,
            "hits@10": hits10 / n,
            "mrr@10": rr / n,
            "evidence_recall@10": recall10 / n,
            "seconds": time.perf_counter() - t0,
        }
    for q in nulls:
        found = retrieve_passages(q["question"], store, k=10, mmr_lambda=settings.mmr_lambda)
        best_dense[q["id"]] = found.best_dense

    print(f"\nRetrieval quality, {len(answerable)} answerable MultiHop-RAG queries, k=10")
    print("  (published, full 609-article corpus: bge-large Hits@4 0.522 Hits@10 0.672 MRR 0.430)")
    print(f"  {'mode':<24}{'Hits@4':>8}{'Hits@10':>9}{'MRR@10':>8}{'EvRec@10':>10}{'s':>7}")
    for label, m in modes.items():
        print(
            f"  {label:<24}{m['hits@4']:>8.3f}{m['hits@10']:>9.3f}{m['mrr@10']:>8.3f}"
            f"{m['evidence_recall@10']:>10.3f}{m['seconds']:>7.1f}"
        )

    # Refusal by answer_question at default settings.
    rng = random.Random(7)
    sample = answerable
    if args.answer_sample and args.answer_sample < len(answerable):
        sample = sorted(rng.sample(answerable, args.answer_sample), key=lambda q: int(q["id"]))
    t0 = time.perf_counter()
    refused_null = sum(
        answer_question(
            q["question"], AskOptions(llm="extractive"), settings=settings, store=store
        ).refused
        for q in nulls
    )
    refused_ans = sum(
        answer_question(
            q["question"], AskOptions(llm="extractive"), settings=settings, store=store
        ).refused
        for q in sample
    )
    ask_seconds = time.perf_counter() - t0
    refusal = {
        "min_relevance": settings.min_relevance,
        "null_refused": refused_null / len(nulls),
        "answerable_refused": refused_ans / len(sample),
        "n_null": len(nulls),
        "n_answerable": len(sample),
        "seconds": ask_seconds,
    }
    sweep = {}
    for th in THRESHOLDS:
        sweep[str(th)] = {
            "null_refused": sum(best_dense[q["id"]] < th for q in nulls) / len(nulls),
            "answerable_refused": sum(best_dense[q["id"]] < th for q in answerable)
            / len(answerable),
        }
    dist = {
        kind: {
            "p10": _pct([best_dense[q["id"]] for q in group], 10),
            "p50": _pct([best_dense[q["id"]] for q in group], 50),
            "p90": _pct([best_dense[q["id"]] for q in group], 90),
        }
        for kind, group in (("null", nulls), ("answerable", answerable))
    }
    print(
        f"\nRefusal, answer_question(llm=extractive), BOT_MIN_RELEVANCE={settings.min_relevance} "
        f"(want: null high, answerable low)"
    )
    print(f"  null queries refused        {refusal['null_refused']:6.1%}  (n={len(nulls)})")
    sample_note = "all" if len(sample) == len(answerable) else "fixed random sample"
    print(
        f"  answerable wrongly refused  {refusal['answerable_refused']:6.1%}  "
        f"(n={len(sample)}, {sample_note})"
    )
    print("\nRefusal share by min_relevance threshold (best_dense of hybrid retrieval < threshold)")
    print(f"  {'threshold':<10}{'null refused':>14}{'answerable refused':>20}")
    for th, row in sweep.items():
        print(f"  {th:<10}{row['null_refused']:>14.1%}{row['answerable_refused']:>20.1%}")
    for kind, d in dist.items():
        print(f"  best_dense {kind:<11} p10 {d['p10']:.3f}  p50 {d['p50']:.3f}  p90 {d['p90']:.3f}")
    return {
        "corpus": info,
        "retrieval": modes,
        "refusal": refusal,
        "threshold_sweep": sweep,
        "best_dense": dist,
    }


# --- part 2: latency ---


def _real_sentences(limit: int) -> list[str]:
    """Real news sentences: CNN/DM sources (lowercased as released) and the multihop facts."""
    out: list[str] = []
    _, truth = _load_multihop()
    for entry in truth.values():
        for ev in entry.get("evidence_list") or []:
            out.append(_norm(ev["fact"]))
    for line in CNNDM.read_text(encoding="utf-8").splitlines():
        line = re.sub(r"</?t>", " ", line)
        for sent in re.split(r"(?<=[.!?])\s+(?=\S)", _norm(line)):
            if 40 <= len(sent) <= 400:
                out.append(sent)
    out = list(dict.fromkeys(out))
    random.Random(1).shuffle(out)
    return out[:limit]


def build_filler(
    store: Any, n_chunks: int, start_article: int, pool: tuple[list[str], Any], rng: Any
) -> float:
    """Write `n_chunks` filler chunks (4 per article) straight into the store; return seconds.

    Text: 4-8 real sentences drawn at random from the pool (~600-1000 chars, like a real chunk).
    Vector: mean of those sentences' real MiniLM vectors + gaussian noise (sigma 0.02 per dim),
    renormalised, so the vector matches its text approximately and no two are identical.
    Records: a StoredChunk per chunk, as ingest writes them; one ArticleEntry per 4 chunks,
    upserted after its chunks.
    """
    import numpy as np

    from bot.index.records import ArticleEntry, StoredChunk

    sentences, vectors = pool
    sources = ["Reuters", "BBC News", "The Verge", "TechCrunch", "CNN", "The Guardian", "Wired"]
    t0 = time.perf_counter()
    per_article = 4
    batch = 4000
    done = 0
    while done < n_chunks:
        m = min(batch, n_chunks - done)
        chunks, vecs, entries = [], [], []
        for j in range(m):
            g = done + j
            art_no = start_article + g // per_article
            idx = g % per_article
            aid = f"f{art_no:015d}"
            picks = rng.integers(0, len(sentences), size=int(rng.integers(4, 9)))
            text = " ".join(sentences[i] for i in picks)[:1000]
            vec = vectors[picks].mean(axis=0) + rng.normal(0, 0.02, vectors.shape[1])
            vecs.append(vec / np.linalg.norm(vec))
            day = 1 + art_no % 28
            month = 1 + (art_no // 28) % 12
            published = f"2023-{month:02d}-{day:02d}T12:00:00+00:00"
            source = sources[art_no % len(sources)]
            chunks.append(
                StoredChunk(
                    chunk_id=f"{aid}:{idx:05d}",
                    article_id=aid,
                    chunk_index=idx,
                    start=idx * 850,
                    end=idx * 850 + len(text),
                    title=f"Filler article {art_no}",
                    source=source,
                    url=f"https://example.com/filler/{art_no}",
                    published=published,
                    published_ts=int(time.mktime(time.strptime(published[:10], "%Y-%m-%d"))),
                    path=f"/synthetic/filler-{art_no // 1000}.jsonl#{art_no % 1000 + 1}",
                    text=text,
                )
            )
            if idx == per_article - 1 or g == n_chunks - 1:
                entries.append(
                    ArticleEntry(
                        article_id=aid,
                        title=f"Filler article {art_no}",
                        source=source,
                        url=f"https://example.com/filler/{art_no}",
                        published=published,
                        content_hash=aid,
                        n_chunks=idx + 1,
                        chars=idx * 850 + len(text),
                        paths=[chunks[-1].path],
                    )
                )
        store.upsert_chunks(chunks, np.asarray(vecs, dtype=np.float32))
        store.upsert_articles(entries)
        done += m
        print(f"    filler {done}/{n_chunks} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return time.perf_counter() - t0


def _measure(store: Any, settings: Any, questions: list[str], warmup: int = 5) -> dict[str, Any]:
    from bot.index.search import retrieve_passages

    memo = getattr(store.embedder, "memo", None)
    if memo is not None:  # every question is new to a real user: never answer from the memo
        memo.capacity = 0
        memo.clear()

    t0 = time.perf_counter()
    retrieve_passages(questions[0], store, k=settings.top_k, mmr_lambda=settings.mmr_lambda)
    first_ms = (time.perf_counter() - t0) * 1000  # includes the BM25 build for the new generation
    for q in questions[1 : 1 + warmup]:
        retrieve_passages(q, store, k=settings.top_k, mmr_lambda=settings.mmr_lambda)
    totals: list[float] = []
    searches: list[float] = []  # everything after embedding the question
    stages: dict[str, list[float]] = {}
    for q in questions:
        t = time.perf_counter()
        found = retrieve_passages(q, store, k=settings.top_k, mmr_lambda=settings.mmr_lambda)
        totals.append((time.perf_counter() - t) * 1000)
        searches.append(totals[-1] - found.timings_ms.get("embed_question", 0.0))
        for key, value in found.timings_ms.items():
            stages.setdefault(key, []).append(value)
    tokens = (
        store.embedder.token_counts(questions) if hasattr(store.embedder, "token_counts") else []
    )
    out = {
        "first_call_ms": first_ms,
        "n_queries": len(questions),
        "question_tokens_p50": _pct([float(t) for t in tokens], 50) if tokens else None,
        "total": {"p50": _pct(totals, 50), "p95": _pct(totals, 95)},
        "search": {"p50": _pct(searches, 50), "p95": _pct(searches, 95)},
    }
    for key, values in stages.items():
        out[key] = {"p50": _pct(values, 50), "p95": _pct(values, 95)}
    return out


def part_latency(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import numpy as np

    from bot.index.snapshot import publish_snapshot
    from bot.index.store import open_reader

    queries, _ = _load_multihop()
    settings, store, info = _ingest_multihop(work / "latency")
    base_chunks = info["chunks"]
    t0 = time.perf_counter()
    sentences = _real_sentences(args.sentences)
    vectors = np.asarray(store.embedder.embed(sentences), dtype=np.float32)
    embed_s = time.perf_counter() - t0
    print(f"\n  embedded {len(sentences)} real sentences for filler vectors in {embed_s:.0f} s")
    rng = np.random.default_rng(3)
    questions = [q["question"] for q in random.Random(5).sample(queries, args.queries)]
    results: dict[str, Any] = {
        "method": (
            f"multihop corpus ingested normally ({base_chunks} chunks), then filler chunks "
            f"upserted "
            f"directly via store.upsert_chunks: text = 4-8 random real sentences (pool of "
            f"{len(sentences)} from CNN/DM-100 sources + multihop facts, cut at 1000 chars), "
            f"vector = mean of those sentences' real MiniLM vectors + N(0, 0.02) noise, "
            f"renormalised; "
            f"4 chunks per synthetic article with an ArticleEntry each; then "
            f"set_state(dirty=False, new_generation=True). Sizes grow in place."
        ),
        "sizes": {},
    }
    current = base_chunks
    article_no = 0
    for size in args.sizes:
        add = size - current
        build_s = 0.0
        if add > 0:
            print(f"  building {size} chunks: +{add} filler", flush=True)
            build_s = build_filler(store, add, article_no, (sentences, vectors), rng)
            article_no += (add + 3) // 4 + 1
            store.set_state(dirty=False, new_generation=True)
            current = size
        n = store.chunk_count()
        row = _measure(store, settings, questions)
        row["chunks"] = n
        row["build_seconds"] = build_s
        if publish_snapshot(store):  # as `bot ingest` leaves it: `bot ask` reads the snapshot
            row["snapshot"] = _measure(open_reader(settings, store.embedder), settings, questions)
        results["sizes"][str(size)] = row
        print(
            f"  {n} chunks: built in {build_s:.0f} s, first call {row['first_call_ms']:.0f} ms, "
            f"p50 {row['total']['p50']:.1f} ms",
            flush=True,
        )
        if build_s > args.max_build_s and size != args.sizes[-1]:
            print(f"  build exceeded {args.max_build_s} s; stopping here")
            results["stopped_early"] = True
            break

    print(f"\nRetrieval latency, hybrid k={settings.top_k}, warm, {args.queries} queries (ms)")
    print("  how built: " + results["method"])
    keys = ["total", "embed_question", "search", "dense", "bm25", "fuse_mmr"]
    print(f"  {'chunks':>8}  " + "".join(f"{k + ' p50/p95':>24}" for k in keys) + "   target")
    for size, row in results["sizes"].items():
        cells = "".join(
            f"{row[k]['p50']:>12.1f}/{row[k]['p95']:<11.1f}" if k in row else f"{'-':>24}"
            for k in keys
        )
        target = f"p50<={TARGET_P50_MS_100K:.0f} @100k" if int(size) >= 100000 else ""
        if target:
            verdicts = [
                f"{key} {'OK' if row[key]['p50'] <= TARGET_P50_MS_100K else 'MISS'}"
                for key in ("total", "search")
                if key in row
            ]
            target += ": " + ", ".join(verdicts)
        print(f"  {row['chunks']:>8}  {cells}   {target}")
        if "snapshot" in row:
            snap = row["snapshot"]
            cells = "".join(
                f"{snap[k]['p50']:>12.1f}/{snap[k]['p95']:<11.1f}" if k in snap else f"{'-':>24}"
                for k in keys
            )
            print(f"  {'snapshot':>8}  {cells}")
    print(
        "  total = retrieve_passages end to end; search = total - embed_question (the index work "
        "after the MiniLM forward pass on the question); rows by chunk count read Chroma, "
        "'snapshot' rows the read snapshot of the same index (sizes up to its chunk limit)"
    )
    for row in results["sizes"].values():
        print(
            f"  {row['chunks']:>8} chunks: build {row['build_seconds']:.0f} s, first (cold BM25) "
            f"call {row['first_call_ms']:.0f} ms, question tokens p50 "
            f"{row.get('question_tokens_p50') or '-'}"
        )
    return results


# --- part 3: cold ask ---


def _importtime(stderr: str) -> list[tuple[str, float]]:
    """Top-level packages by cumulative import time (us -> ms), from -X importtime output."""
    totals: dict[str, float] = {}
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)", line)
        if not m:
            continue
        indent = len(m.group(3)) - 1
        if indent == 0:  # a top-level import: its cumulative time is not nested in another
            pkg = m.group(4).split(".")[0]
            totals[pkg] = totals.get(pkg, 0.0) + int(m.group(2)) / 1000
    return sorted(totals.items(), key=lambda kv: -kv[1])


COLD_QUESTION = "what did Zelensky announce?"
COLD_ANSWER = (
    "Zelensky announced that prisoners with combat experience would be released to fight [1]. "
    "He also addressed Russian soldiers directly [2]."
)


def _cold_indexes(args: argparse.Namespace, work: Path, env: dict[str, str]) -> dict[str, Path]:
    """Two data dirs: the seeds alone, and the seeds plus filler up to 10,000 chunks."""
    import numpy as np

    from bot.core.settings import Settings
    from bot.index.store import open_store

    dirs = {"seeds": work / "cold-seeds", "10k": work / "cold-10k"}
    for data in dirs.values():
        run_env = {**env, "BOT_DATA_DIR": str(data)}
        ing = subprocess.run(
            [str(BOT), "ingest", "--json"], env=run_env, capture_output=True, text=True, cwd=work
        )
        if ing.returncode != 0:
            raise SystemExit(f"bot ingest failed: {ing.stderr[-500:]}")
    settings = Settings(data_dir=dirs["10k"])
    store = open_store(settings)
    have = store.chunk_count()
    sentences = _real_sentences(min(args.sentences, 1000))
    vectors = np.asarray(store.embedder.embed(sentences), dtype=np.float32)
    build_filler(store, 10_000 - have, 0, (sentences, vectors), np.random.default_rng(11))
    store.set_state(dirty=False, new_generation=True)
    from bot.index.snapshot import publish_snapshot

    publish_snapshot(store)  # as `bot ingest` does at its end (with the BM25 index)
    print(f"  cold indexes: seeds ({have} chunks) and {store.chunk_count()} chunks", flush=True)
    return dirs


def _cold_runs(cmd: list[str], env: dict[str, str], cwd: Path, runs: int) -> list[dict[str, Any]]:
    out = []
    for attempt in range(runs + 1):  # the first run only warms the page cache
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=cwd)
        wall_ms = (time.perf_counter() - t0) * 1000
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:3])} failed: {proc.stderr[-500:]}")
        line = [x for x in proc.stderr.splitlines() if x.startswith('{"timings_ms"')][-1]
        stages = json.loads(line)["timings_ms"]
        # Before bot.ui.cli's clock starts (interpreter, site, typer) and after it stops (exit).
        stages["start_exit"] = wall_ms - stages.pop("total")
        stages["wall"] = wall_ms
        stages["outside_llm"] = wall_ms - stages.get("llm", 0.0) - stages.get("llm_load", 0.0)
        if attempt:
            out.append(stages)
    return out


COLD_STAGES = [
    "start_exit", "cli", "setup", "prepare", "imports", "open_index", "retrieval", "llm_load",
    "llm", "checking", "render", "outside_llm", "wall",
]  # fmt: skip


def part_cold(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Cold `bot ask` per provider on two indexes: one process per ask, stage by stage."""
    sys.path.insert(0, str(REPO))
    from tests.llm_server import FakeOpenAIServer, Reply

    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "OPENAI_"))}
    env.update({"ANONYMIZED_TELEMETRY": "False"})
    dirs = _cold_indexes(args, work, env)
    subprocess.run([str(PY), "-m", "compileall", "-q", str(REPO / "bot")], check=True)
    providers = ["extractive", "openai"]
    if not args.skip_local:
        providers.append("local")
    results: dict[str, Any] = {"runs_per_cell": args.cold_runs, "cells": {}}
    with FakeOpenAIServer(Reply(text=COLD_ANSWER), record=False) as server:
        for index_name, data in dirs.items():
            for provider in providers:
                run_env = {**env, "BOT_DATA_DIR": str(data), "BOT_LLM": provider}
                if provider == "openai":  # a local OpenAI-compatible server that answers at once
                    run_env["OPENAI_BASE_URL"] = server.url
                    run_env["BOT_OPENAI_MODEL"] = "fake-model"
                cmd = [str(BOT), "ask", COLD_QUESTION, "--timings"]
                runs = _cold_runs(cmd, run_env, work, args.cold_runs)
                med = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in COLD_STAGES}
                results["cells"][f"{index_name}/{provider}"] = {"runs": runs, "median_ms": med}
                print(f"  cold {index_name}/{provider}: outside llm {med['outside_llm']:.0f} ms")

    print(f"\nCold `bot ask \"{COLD_QUESTION}\" --timings` (text output), median of "
          f"{args.cold_runs} processes per cell, ms")  # fmt: skip
    print("  start_exit = interpreter + typer before bot.ui.cli's clock, and the exit after it;")
    print("  cli = to the command; setup = bot.app.ask, consoles; prepare = bot modules, numpy;")
    print("  imports = chromadb, with the embedding model loading and the question embedded in a")
    print("  thread meanwhile; llm_load = making the provider (local: loading the GGUF);")
    print("  llm = the answer (openai: a 127.0.0.1 fake server; incl. importing langchain_openai)")
    print("  outside_llm = wall - llm_load - llm")
    widths = {k: max(len(k) + 2, 9) for k in COLD_STAGES}
    header = "".join(f"{k:>{widths[k]}}" for k in COLD_STAGES)
    print(f"  {'index/provider':<20}{header}   target")
    for cell, data in results["cells"].items():
        med = data["median_ms"]
        verdict = "OK" if med["outside_llm"] <= TARGET_COLD_S * 1000 else "MISS"
        print(
            f"  {cell:<20}"
            + "".join(f"{med[k]:>{widths[k]}.0f}" for k in COLD_STAGES)
            + f"   <= {TARGET_COLD_S * 1000:.0f}: {verdict}"
        )

    seeds_env = {**env, "BOT_DATA_DIR": str(dirs["seeds"]), "BOT_LLM": "extractive"}
    imp = subprocess.run(
        [str(PY), "-X", "importtime", str(BOT), "ask", COLD_QUESTION],
        env=seeds_env,
        capture_output=True,
        text=True,
        cwd=work,
    )
    top = _importtime(imp.stderr)[:12]
    import_total = sum(v for _, v in _importtime(imp.stderr))
    print(f"\n  -X importtime, one run: {import_total:.0f} ms of imports in total; top packages")
    for name, ms in top:
        print(f"    {name:<24}{ms:>8.0f} ms")
    results["import_total_ms"] = import_total
    results["import_top_ms"] = dict(top)
    return results


# --- part 4: retrieval in separate processes ---

# (label, tree, fast question model, intra-op threads (0: one per core), spin): "tree" None is
# this checkout; "before" is the --before-tree checkout (main), at its own defaults.
PROC_CONFIGS: list[tuple[str, str | None, str, int, bool]] = [
    ("before: main auto", "before", "auto", 0, False),
    ("after: this tree auto", None, "auto", 0, False),
    ("index model, 2 thr", None, "false", 2, False),
    ("index model, 1 thr", None, "false", 1, False),
    ("q8, 2 thr, spin", None, "true", 2, True),
    ("q8, 2 thr, no spin", None, "true", 2, False),
    ("q8, 1 thr", None, "true", 1, False),
]


PROC_REF = "index model, 2 thr"  # the ratios' reference: no question model


def _proc_indexes(args: argparse.Namespace, work: Path) -> dict[str, Path]:
    """The MultiHop-RAG index and one grown with filler to the largest --sizes (both with their
    read snapshot when small enough, as `bot ingest` leaves them), reused from --keep-dir."""
    import numpy as np

    from bot.index.snapshot import publish_snapshot

    base = Path(args.keep_dir) if args.keep_dir else work
    size = args.sizes[0]
    dirs = {"multihop": base / "procs-multihop" / "data", f"{size}": base / "procs-big" / "data"}
    if not (dirs["multihop"] / ".built").exists():
        _ingest_multihop(dirs["multihop"])
        (dirs["multihop"] / ".built").write_text("ok")
    if not (dirs[f"{size}"] / ".built").exists():
        _, store, info = _ingest_multihop(dirs[f"{size}"])
        sentences = _real_sentences(args.sentences)
        vectors = np.asarray(store.embedder.embed(sentences), dtype=np.float32)
        rng = np.random.default_rng(3)
        build_filler(store, size - info["chunks"], 0, (sentences, vectors), rng)
        store.set_state(dirty=False, new_generation=True)
        publish_snapshot(store)
        (dirs[f"{size}"] / ".built").write_text("ok")
    for extra in args.extra_index:  # NAME=DATA_DIR, an index built elsewhere (e.g. 100k chunks)
        name, _, folder = extra.partition("=")
        dirs[name] = Path(folder)
    return dirs


def _child_retrieval(spec: dict[str, Any]) -> dict[str, Any]:
    """One configuration in this process, as a user's process runs it: open the index, warm up,
    then time `retrieve_passages` on the questions; CPU seconds of the timed loop too."""
    from bot.index.search import retrieve_passages
    from bot.index.store import open_reader

    settings = _settings(Path(spec["data_dir"]), BOT_FAST_QUESTIONS=spec["fast"])
    embedder = None
    if spec["tree"] is None:  # this checkout: thread settings by argument
        from bot.index.embeddings import LocalMiniLM, SessionThreads, get_embedder

        default = get_embedder(settings)
        threads = SessionThreads(spec["threads"] or None, spec["spin"])
        embedder = LocalMiniLM(
            threads=spec["threads"] or None,
            question_cache=default.question_cache if spec["fast"] != "false" else None,  # type: ignore[attr-defined]
            question_threads=threads,
        )
        if spec["fast"] == "auto":
            embedder = default
    store = open_reader(settings, embedder)
    questions = spec["questions"]
    for q in questions[: spec["warmup"]]:
        retrieve_passages(q, store, k=settings.top_k, mmr_lambda=settings.mmr_lambda)
    store.embedder.memo.capacity = 0  # type: ignore[attr-defined]  # every question is new
    store.embedder.memo.clear()  # type: ignore[attr-defined]
    totals, embeds, searches = [], [], []
    stages: dict[str, list[float]] = {}
    cpu0 = os.times()
    for q in questions:
        t = time.perf_counter()
        found = retrieve_passages(q, store, k=settings.top_k, mmr_lambda=settings.mmr_lambda)
        totals.append((time.perf_counter() - t) * 1000)
        embeds.append(found.timings_ms.get("embed_question", 0.0))
        searches.append(totals[-1] - embeds[-1])
        for key in ("dense", "bm25", "fuse_mmr"):
            stages.setdefault(key, []).append(found.timings_ms.get(key, 0.0))
    cpu1 = os.times()
    cpu_ms = (cpu1.user - cpu0.user + cpu1.system - cpu0.system) * 1000 / len(questions)
    return {
        "reader": type(store).__name__,
        "question_model": store.embedder.question_name,
        "total": [_pct(totals, 50), _pct(totals, 95)],
        "embed": [_pct(embeds, 50), _pct(embeds, 95)],
        **{key: [_pct(v, 50), _pct(v, 95)] for key, v in stages.items()},
        "search": [_pct(searches, 50), _pct(searches, 95)],
        "cpu_ms_per_q": cpu_ms,
    }


def _run_child(spec: dict[str, Any], before_tree: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "OPENAI_"))}
    env.update({"ANONYMIZED_TELEMETRY": "False", "PYTHONPATH": str(REPO)})
    if spec["tree"] == "before":
        env["PYTHONPATH"] = before_tree
    cmd = [str(PY), str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"child failed: {proc.stderr[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _med(runs: list[dict[str, Any]], key: str, i: int) -> float:
    return statistics.median(r[key][i] for r in runs)


def _procs_table(rows: dict[str, dict[str, list[dict[str, Any]]]], ref: str) -> None:
    """Per index and configuration: medians over rounds of each process's p50/p95, and the
    ratio of its total p50 to `ref`'s in the same round (median over rounds)."""
    print(f"  {'index':<9}{'configuration':<24}{'model':<28}{'total p50/p95':>15}"
          f"{'embed':>7}{'search':>7}{'dense':>7}{'bm25':>6}{'mmr':>6}{'cpu ms/q':>9}"
          f"{'x ' + ref[:14]:>18}")  # fmt: skip
    for index, configs in rows.items():
        for label, runs in configs.items():
            ratio = statistics.median(
                r["total"][0] / ref_run["total"][0]
                for r, ref_run in zip(runs, configs[ref], strict=True)
            )
            cpu = statistics.median(r["cpu_ms_per_q"] for r in runs)
            print(
                f"  {index:<9}{label:<24}{runs[0]['question_model'][-24:]:<28}"
                f"{_med(runs, 'total', 0):>7.1f}/{_med(runs, 'total', 1):<7.1f}"
                f"{_med(runs, 'embed', 0):>7.1f}{_med(runs, 'search', 0):>7.1f}"
                f"{_med(runs, 'dense', 0):>7.1f}{_med(runs, 'bm25', 0):>6.1f}"
                f"{_med(runs, 'fuse_mmr', 0):>6.1f}{cpu:>9.1f}{ratio:>18.2f}"
            )


def part_retrieval_procs(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Each configuration in its own process, rounds interleaved, on two indexes."""
    queries, _ = _load_multihop()
    questions = [q["question"] for q in random.Random(5).sample(queries, args.queries)]
    dirs = _proc_indexes(args, work)
    wanted = [c.strip() for c in args.configs.split(";") if c.strip()]
    configs = [c for c in PROC_CONFIGS if (c[1] is None or args.before_tree)]
    configs = [c for c in configs if not wanted or c[0] in wanted or c[0] == PROC_REF]
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {i: {} for i in dirs}
    load = [os.getloadavg()]
    for round_no in range(args.rounds):
        order = configs[round_no % len(configs) :] + configs[: round_no % len(configs)]
        for index, data in dirs.items():
            for label, tree, fast, threads, spin in order:
                spec = {"data_dir": str(data), "tree": tree, "fast": fast, "threads": threads,
                        "spin": spin, "questions": questions, "warmup": 10}  # fmt: skip
                result = _run_child(spec, args.before_tree)
                rows[index].setdefault(label, []).append(result)
        load.append(os.getloadavg())
        print(f"  round {round_no + 1}/{args.rounds} done, load {load[-1][0]:.2f}", flush=True)
    ref = PROC_REF
    print(f"\nRetrieval in separate processes, hybrid k=6 + MMR, warm, {args.queries} questions, "
          f"{args.rounds} interleaved rounds; ms, medians over rounds")  # fmt: skip
    print(f"  readers: { {i: next(iter(c.values()))[0]['reader'] for i, c in rows.items()} }")
    _procs_table(rows, ref)
    print(f"  load average (1 min) per round: {', '.join(f'{x[0]:.2f}' for x in load)}")
    print(f"  ratio = this configuration's total p50 / '{ref}' in the same round")
    return {"rows": rows, "load": load, "questions": args.queries, "rounds": args.rounds}


# --- main ---


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="quality,latency,cold")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--sentences", type=int, default=3000)
    parser.add_argument("--answer-sample", type=int, default=0, help="0 = all answerable")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--skip-local", action="store_true", help="cold part: no local LLM")
    parser.add_argument("--max-build-s", type=float, default=480.0)
    parser.add_argument("--rounds", type=int, default=3, help="retrieval-procs: rounds")
    parser.add_argument("--before-tree", default="", help="retrieval-procs: main's checkout")
    parser.add_argument("--keep-dir", default="", help="retrieval-procs: reuse indexes here")
    parser.add_argument(
        "--extra-index", action="append", default=[], help="retrieval-procs: NAME=DATA_DIR"
    )
    parser.add_argument("--configs", default="", help="retrieval-procs: labels, ';'-separated")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--answer-asks", type=int, default=30, help="answer part: per round")
    parser.add_argument("--answer-before", default="main", help="answer part: the git ref")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child_retrieval(json.loads(args.child))))
        return
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out_file = OUT_DIR / os.environ.get("ASK_BENCH_OUT", "ask.json")
    results = load_results(out_file)
    with tempfile.TemporaryDirectory(prefix="bench-ask-") as tmp:
        work = Path(tmp)
        for part in parts:
            fn = {
                "quality": part_quality,
                "latency": part_latency,
                "cold": part_cold,
                "retrieval-procs": part_retrieval_procs,
                "answer": part_answer,
            }[part]
            t0 = time.perf_counter()
            results[part] = fn(args, work)
            results[part]["part_seconds"] = time.perf_counter() - t0
            out_file.write_text(json.dumps(results, indent=2, default=float), encoding="utf-8")
    print(f"\nwrote {out_file}")


if __name__ == "__main__":
    main()
