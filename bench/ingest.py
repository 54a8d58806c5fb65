"""Ingest benchmark: end-to-end `bot ingest` vs the raw embedding model vs Chroma's stock function.

    python bench/ingest.py [--articles N] [--short N] [--corpus DIR] [--profile]
    python bench/ingest.py --memory [--memory-chunks N] [--memory-rounds N] [--corpus DIR]

Stages (each in its own child process, so every stage has its own peak-RSS figure):
  ingest    fresh `bot.app.ingest.ingest_paths([corpus], Settings(BOT_DATA_DIR=<temp>))`, default
            settings (chunk 1000 chars, overlap 150): wall time, articles/s, chunks/s.
  reingest  the same call again on the unchanged corpus (a new process, like a second `bot ingest`).
  raw       `LocalMiniLM.embed` on exactly the chunk texts ingest produces (articles loaded with
            bot.sources.formats, de-duplicated by article id, chunked with
            bot.sources.chunking.chunk_text).
  stock     Chroma's stock `ONNXMiniLM_L6_V2` on the same chunks. It cannot download its model
            here, so its DOWNLOAD_PATH/onnx folder is filled with the SAME int8 model.onnx and
            tokenizer.json we use (plus the side files it checks for): the stock code path (pad
            every text to 256 tokens, batches of 32 in input order) runs on identical weights.
  short_*   ours vs stock on short texts (single sentences of the corpus, ~20-60 tokens).
  memory    (--memory, alone) onnxruntime's CPU memory arena and memory patterns on and off, each
            in its own process on the same chunks: CPU user/system s, page faults, peak RSS,
            chunks/s (bench/ingest_memory.py); bench/out/ingest-memory.json.
Index size = du of the data dir after the fresh ingest. Results go to bench/out/ingest.json.
The corpus is built by bench/corpus.py (bench/out/corpus, or bench/out/corpus-N for --articles).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT_DIR, REPO, cpu_info, du_bytes, peak_rss_mb, stock_chroma_onnx  # noqa: E402
from ingest_memory import compare, render_memory, stage_memory  # noqa: E402

TARGET_E2E_VS_RAW = 0.85
TARGET_REINGEST_S = 3.0


# --- child stages ---------------------------------------------------------------------------------


def _settings(data_dir: str) -> Any:
    from bot.core.settings import Settings

    return Settings(BOT_DATA_DIR=data_dir)


def stage_chunks(args: dict[str, Any]) -> dict[str, Any]:
    """The chunk texts fresh ingest will embed, and short single-sentence texts."""
    from bot.core.sentences import split_sentences
    from bot.index.embeddings import LocalMiniLM
    from bot.sources.chunking import chunk_text
    from bot.sources.files import discover_files
    from bot.sources.formats import load_file

    settings = _settings(args["data_dir"])
    files, _ = discover_files([Path(args["corpus"])])
    seen: set[str] = set()
    chunks: list[str] = []
    articles = records = 0
    short: list[str] = []
    for f in files:
        for art in load_file(f, max_bytes=int(settings.max_file_mb * 1024 * 1024)).articles:
            records += 1
            if art.article_id in seen:
                continue
            seen.add(art.article_id)
            articles += 1
            chunks.extend(
                c.text for c in chunk_text(art.text, settings.chunk_size, settings.chunk_overlap)
            )
            for s, e in split_sentences(art.text):
                if 80 <= e - s <= 260:
                    short.append(art.text[s:e])
    short = sorted(set(short))
    step = max(1, len(short) // args["short"])
    short = short[::step][: args["short"]]
    counter = LocalMiniLM()
    tokens = counter.token_counts(chunks)
    short_tokens = counter.token_counts(short)
    Path(args["chunks_file"]).write_text(json.dumps({"chunks": chunks, "short": short}))
    return {
        "files": len(files),
        "records": records,
        "articles": articles,
        "chunks": len(chunks),
        "chunk_chars_mean": sum(map(len, chunks)) / max(1, len(chunks)),
        "chunk_tokens_mean": sum(tokens) / max(1, len(tokens)),
        "chunks_truncated": sum(t >= LocalMiniLM.max_tokens for t in tokens),
        "short_texts": len(short),
        "short_tokens_mean": sum(short_tokens) / max(1, len(short_tokens)),
        "settings": {
            "chunk_size": settings.chunk_size,
            "chunk_overlap": settings.chunk_overlap,
            "embed_batch_size": settings.embed_batch_size,
            "embedding": settings.embedding,
        },
    }


def stage_ingest(args: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    from bot.app.ingest import ingest_paths

    import_s = time.perf_counter() - t0
    settings = _settings(args["data_dir"])
    profiler = None
    if args.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start, cpu0 = time.perf_counter(), time.process_time()
    report = ingest_paths([Path(args["corpus"])], settings)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    out: dict[str, Any] = {
        "wall_s": wall,
        "cpu_s": cpu,
        "import_s": import_s,
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "removed": report.removed,
        "failed": report.failed,
        "chunks_embedded": report.chunks_embedded,
        "errors": report.errors[:5],
    }
    if profiler is not None:
        import io
        import pstats

        profiler.disable()
        prof_path = Path(args["profile"])
        profiler.dump_stats(str(prof_path))
        buf = io.StringIO()
        stats = pstats.Stats(profiler, stream=buf)
        stats.sort_stats("tottime").print_stats(18)
        out["profile_top"] = buf.getvalue()
    return out


def _texts(args: dict[str, Any]) -> list[str]:
    data = json.loads(Path(args["chunks_file"]).read_text())
    return data["short" if args.get("short_texts") else "chunks"]


def stage_raw(args: dict[str, Any]) -> dict[str, Any]:
    from bot.core.settings import Settings
    from bot.index.embeddings import LocalMiniLM

    texts = _texts(args)
    model = LocalMiniLM(batch_size=Settings(BOT_DATA_DIR=args["data_dir"]).embed_batch_size)
    t0 = time.perf_counter()
    model.embed(["warm-up: create the session"])
    load_s = time.perf_counter() - t0
    start, cpu0 = time.perf_counter(), time.process_time()
    vectors = model.embed(texts)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    import numpy as np

    np.save(args["vectors_file"], vectors)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "load_s": load_s,
        "n": len(texts),
        "per_s": len(texts) / wall,
        "per_cpu_s": len(texts) / cpu,
    }


def stage_stock(args: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    texts = _texts(args)
    ef = stock_chroma_onnx(Path(args["stock_dir"]))
    t0 = time.perf_counter()
    ef(["warm-up: create the session"])
    load_s = time.perf_counter() - t0
    start, cpu0 = time.perf_counter(), time.process_time()
    vectors = np.asarray(ef(texts), dtype=np.float32)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    ours = np.load(args["vectors_file"])
    diff = float(np.abs(ours - vectors).max()) if ours.shape == vectors.shape else float("nan")
    cos = float((ours * vectors).sum(axis=1).min()) if ours.shape == vectors.shape else float("nan")
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "load_s": load_s,
        "n": len(texts),
        "per_s": len(texts) / wall,
        "per_cpu_s": len(texts) / cpu,
        "max_abs_diff_vs_ours": diff,
        "min_cosine_vs_ours": cos,
    }


STAGES = {
    "chunks": stage_chunks,
    "ingest": stage_ingest,
    "raw": stage_raw,
    "stock": stage_stock,
    "memory": stage_memory,
}


def run_child(stage: str, args: dict[str, Any], cwd: Path) -> dict[str, Any]:
    """Run one stage in a fresh interpreter with a clean BOT_* environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "OPENAI_"))}
    env["ANONYMIZED_TELEMETRY"] = "False"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", stage, json.dumps(args)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"stage {stage} failed (exit {proc.returncode})")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = elapsed
    return result


def child_main(stage: str, raw_args: str) -> int:
    args = json.loads(raw_args)
    result = STAGES[stage](args)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))
    return 0


# --- orchestration --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=None, help="first N corpus items only")
    parser.add_argument("--short", type=int, default=400, help="number of short texts")
    parser.add_argument("--corpus", type=Path, default=None, help="use this corpus folder")
    parser.add_argument("--profile", action="store_true", help="cProfile the fresh ingest")
    parser.add_argument("--skip-stock", action="store_true", help="skip the stock-function stages")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "ingest.json")
    parser.add_argument("--memory", action="store_true", help="only compare ORT memory options")
    parser.add_argument("--memory-chunks", type=int, default=600, help="chunks for --memory")
    parser.add_argument("--memory-rounds", type=int, default=2, help="rounds for --memory")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.child:
        return child_main(*ns.child)
    if ns.memory:
        return memory_main(ns)

    load_before = os.getloadavg()
    if ns.corpus is None:
        import corpus as corpus_mod

        folder = OUT_DIR / ("corpus" if ns.articles is None else f"corpus-{ns.articles}")
        manifest = corpus_mod.build(folder, ns.articles)
        ns.corpus = folder
    else:
        manifest_path = ns.corpus / ".manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    corpus_dir = str(ns.corpus.resolve())

    with tempfile.TemporaryDirectory(prefix="bot-bench-") as tmp_name:
        tmp = Path(tmp_name)
        cwd = tmp / "cwd"
        cwd.mkdir()
        common = {
            "corpus": corpus_dir,
            "data_dir": str(tmp / "data"),
            "chunks_file": str(tmp / "chunks.json"),
            "vectors_file": str(tmp / "ours.npy"),
            "short_vectors_file": str(tmp / "ours-short.npy"),
            "stock_dir": str(tmp / "stock-onnx"),
            "short": ns.short,
        }
        stages: dict[str, dict[str, Any]] = {}
        print(f"corpus: {corpus_dir}", file=sys.stderr)
        stages["chunks"] = run_child("chunks", {**common, "data_dir": str(tmp / "d0")}, cwd)
        print(f"  {stages['chunks']['chunks']} chunks; fresh ingest…", file=sys.stderr)
        prof = str(OUT_DIR / "ingest.prof") if ns.profile else None
        stages["ingest"] = run_child("ingest", {**common, "profile": prof}, cwd)
        index_bytes = du_bytes(tmp / "data")
        print("  re-ingest…", file=sys.stderr)
        stages["reingest"] = run_child("ingest", common, cwd)  # same call, unchanged corpus
        print("  raw model…", file=sys.stderr)
        stages["raw"] = run_child("raw", common, cwd)
        short_args = {**common, "short_texts": True, "vectors_file": common["short_vectors_file"]}
        stages["short_ours"] = run_child("raw", short_args, cwd)
        if not ns.skip_stock:
            print("  stock function…", file=sys.stderr)
            stages["stock"] = run_child("stock", common, cwd)
            stages["short_stock"] = run_child("stock", short_args, cwd)

    load_after = os.getloadavg()
    result = build_result(ns, manifest, stages, index_bytes, load_before, load_after)
    table = render(result)
    print(table)
    if stages["ingest"].get("profile_top"):
        print("\ncProfile of the fresh ingest (top by own time):")
        print(stages["ingest"]["profile_top"])
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    result["table"] = table
    ns.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {ns.out}", file=sys.stderr)
    return 0


def memory_main(ns: argparse.Namespace) -> int:
    """`--memory`: the memory options compared (bench/ingest_memory.py), as a table and JSON."""
    with tempfile.TemporaryDirectory(prefix="bot-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "cwd").mkdir()
        opts = {"chunks": ns.memory_chunks, "rounds": ns.memory_rounds}
        result = compare(run_child, tmp, tmp / "cwd", ns.corpus, **opts)
    result["environment"] = cpu_info()
    result["table"] = render_memory(result)
    print(result["table"])
    out = ns.out.with_name("ingest-memory.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


def build_result(
    ns: argparse.Namespace,
    manifest: dict[str, Any],
    stages: dict[str, dict[str, Any]],
    index_bytes: int,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> dict[str, Any]:
    ing, raw = stages["ingest"], stages["raw"]
    chunks = stages["chunks"]
    e2e_chunks_s = ing["chunks_embedded"] / ing["wall_s"] if ing["wall_s"] else 0.0
    out: dict[str, Any] = {
        "corpus": {"path": str(ns.corpus), **manifest},
        "chunks": chunks,
        "stages": stages,
        "index_bytes": index_bytes,
        "e2e_chunks_per_s": e2e_chunks_s,
        "e2e_articles_per_s": (ing["added"] + ing["updated"]) / ing["wall_s"],
        "raw_chunks_per_s": raw["per_s"],
        "e2e_vs_raw": e2e_chunks_s / raw["per_s"] if raw["per_s"] else 0.0,
        "environment": {
            **cpu_info(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
    }
    if "stock" in stages:
        out["stock_chunks_per_s"] = stages["stock"]["per_s"]
        out["e2e_vs_stock"] = e2e_chunks_s / stages["stock"]["per_s"]
    return out


def render(r: dict[str, Any]) -> str:
    st = r["stages"]
    ing, re_, raw = st["ingest"], st["reingest"], st["raw"]
    ch = r["chunks"]
    env = r["environment"]
    lines: list[str] = []
    add = lines.append
    add(
        f"bot ingest benchmark: {env['cpus']} CPUs, python {env['python']}, onnxruntime "
        f"{env.get('onnxruntime', '?')}, chromadb {env.get('chromadb', '?')}; load average "
        f"{env['loadavg_before'][0]:.1f} before, {env['loadavg_after'][0]:.1f} after"
    )
    corpus = r["corpus"]
    formats = ", ".join(f"{k} {v}" for k, v in corpus.get("files_by_format", {}).items())
    add(
        f"corpus: {corpus.get('articles', '?')} articles, {corpus.get('characters', 0):,} chars, "
        f"{ch['files']} files ({formats})"
    )
    add(
        f"        {ch['articles']} distinct texts -> {ch['chunks']} chunks (mean "
        f"{ch['chunk_chars_mean']:.0f} chars, {ch['chunk_tokens_mean']:.0f} tokens; "
        f"{ch['chunks_truncated']} truncated at 256)"
    )
    s = ch["settings"]
    add(
        f"settings: chunk_size {s['chunk_size']}, overlap {s['chunk_overlap']}, "
        f"embedding {s['embedding']}, batch {s['embed_batch_size']}"
    )
    add("")
    w = [40, 9, 8, 10, 13, 12, 9, 32]
    header = ["stage", "wall s", "CPU s", "chunks/s", "chunks/CPU-s", "articles/s", "peak MB",
              "target"]  # fmt: skip
    add(
        "".join(
            h.ljust(n) if i == 0 else h.rjust(n)
            for i, (h, n) in enumerate(zip(header, w, strict=True))
        )
    )  # noqa: E501
    add("-" * sum(w))

    def num(x: float | None, fmt: str = ",.1f") -> str:
        return "-" if x is None else format(x, fmt)

    def row(name: str, d: dict[str, Any], n: int | None, aps: float | None, tgt: str) -> None:
        cps = n / d["wall_s"] if n is not None else None
        cpc = n / d["cpu_s"] if n is not None and d.get("cpu_s") else None
        cells = [name, num(d["wall_s"], ",.2f"), num(d.get("cpu_s"), ",.1f"), num(cps),
                 num(cpc), num(aps), num(d["peak_rss_mb"], ",.0f"), tgt]  # fmt: skip
        add(
            "".join(
                c.ljust(k) if i == 0 else c.rjust(k)
                for i, (c, k) in enumerate(zip(cells, w, strict=True))
            )
        )  # noqa: E501

    n_ing = ing["chunks_embedded"]
    ratio = r["e2e_vs_raw"]
    ratio_cpu = (n_ing / ing["cpu_s"]) / raw["per_cpu_s"]
    verdict = "OK" if ratio >= TARGET_E2E_VS_RAW else "MISS"
    row(f"1 fresh ingest ({n_ing} chunks)", ing, n_ing, r["e2e_articles_per_s"],
        f">=85% raw: {ratio:.0%} {verdict}")  # fmt: skip
    row("2 raw LocalMiniLM.embed, same chunks", raw, raw["n"], None,
        f"(per CPU-s: e2e {ratio_cpu:.0%} of raw)")  # fmt: skip
    if "stock" in st:
        sk = st["stock"]
        vs = r["e2e_vs_stock"]
        row("3 Chroma stock ONNX fn, same chunks", sk, sk["n"], None,
            f"e2e >= stock: {vs:.2f}x " + ("OK" if vs >= 1 else "MISS"))  # fmt: skip
    ok = re_["wall_s"] < TARGET_REINGEST_S
    row("4 re-ingest, unchanged corpus", re_, None, None,
        f"< {TARGET_REINGEST_S:.0f} s: " + ("OK" if ok else "MISS"))  # fmt: skip
    so = st["short_ours"]
    add(f"short texts: {so['n']} single sentences, mean {ch['short_tokens_mean']:.0f} tokens")
    row("  ours (LocalMiniLM)", so, so["n"], None, "")
    if "short_stock" in st:
        ss = st["short_stock"]
        row("  Chroma stock ONNX fn", ss, ss["n"], None,
            f"ours {so['per_s'] / ss['per_s']:.1f}x faster")  # fmt: skip
    add("-" * sum(w))
    add(
        "5 index size on disk (du of BOT_DATA_DIR after fresh ingest): "
        f"{r['index_bytes'] / 1e6:,.1f} MB"
    )
    add(
        "6 peak MB = ru_maxrss (RSS high-water mark) of each stage's own child process. "
        "CPU s = process CPU time (all threads) of the timed region."
    )
    add(
        f"fresh ingest: added {ing['added']}, updated {ing['updated']}, failed {ing['failed']}; "
        f"process incl. start-up {ing['process_s']:.1f} s. Re-ingest: unchanged "
        f"{re_['unchanged']}, added {re_['added']}, chunks embedded {re_['chunks_embedded']}; "
        f"process incl. start-up {re_['process_s']:.1f} s."
    )
    add(
        "1 and 4 time the ingest_paths() call (model load included); 2 and 3 time the embed "
        f"call only (session load excluded: ours {raw['load_s']:.2f} s"
        + (f", stock {st['stock']['load_s']:.2f} s)." if "stock" in st else ").")
    )
    if "stock" in st:
        sk = st["stock"]
        add(
            "3 = chromadb's own ONNXMiniLM_L6_V2 code (pads every text to 256 tokens, batches of "
            "32 in input order), run offline on the SAME int8 model.onnx + tokenizer.json as "
            "ours (its DOWNLOAD_PATH/onnx folder filled locally, no download);"
        )
        add(
            f"  vectors vs ours on the same chunks: max |diff| {sk['max_abs_diff_vs_ours']:.1e}, "
            f"min cosine {sk['min_cosine_vs_ours']:.6f}."
        )
    if env["loadavg_before"][0] > (env["cpus"] or 1) * 0.75:
        add(
            "NOTE: the machine was shared (load average above the CPU count); wall-clock rates "
            "are noisy, per-CPU-second rates are the fairer comparison."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
