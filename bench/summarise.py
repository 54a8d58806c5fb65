"""Summary benchmark: ROUGE on CNN/DailyMail, and map-reduce orchestration at 10 to 1,000 articles.

    python bench/summarise.py [--parts rouge,scale] [--limit N] [--skip-local] [--local-limit N]
                              [--sizes 10,100,1000] [--skip-extractive-scale]

Parts (results merged into bench/out/summarise.json, so parts can run separately):
  rouge   ../shared/bench/cnndm-100: the 100 CNN/DailyMail test articles of REALSumm with their
          reference highlights. The articles are indexed as bench/corpus.py writes them
          (bench/out/corpus/article: detokenised and truecased, one file per article), and each one
          is summarised alone, `bot summarise PATH --length short`, with the extractive provider
          (3 sentences) and the local one (bundled SmolLM2-135M-Instruct in-process, map + merge
          calls). ROUGE-1/2/Lsum F1 (rouge-score, Porter stemmer; Lsum = summary-level LCS over
          sentences, the variant the CNN/DM literature reports as ROUGE-L) against the references,
          [n] markers and bullets removed. Lead-3 = the first three sentences of the released
          (tokenised) article. BART and pointer-generator+coverage = their released summaries of the
          same 100 articles, scored by the same scorer next to REALSumm's published figures, which
          checks the scorer.
  scale   Corpora of 10, 100 and 1,033 articles built by bench/corpus.py (CNN/DM articles,
          follow-ups, MultiHop-RAG articles, briefs, digests). Each is indexed once (cached under
          bench/out/summarise-index). `bot summarise` of the whole index runs through the openai
          provider against a local OpenAI-compatible server on 127.0.0.1 without a model
          (`InstantServer` below: notes = the first sentence of each passage it is shown, cited
          with the passage's id; merges = the first notes that fit max_tokens). It answers at
          once (latency 0), and again after waiting 0.1 s per call (--latencies), which shows the
          bounded concurrency at work. This measures the orchestration, not a model: wall time
          per stage, LLM calls, map calls, merge levels, prompt/completion tokens (estimated by
          the server at 3.5 characters per token, like
          bot.answer.providers.estimate_tokens), the most
          calls the server saw at once, and the size of the checked summary. Plus the extractive
          provider on the same index (no LLM).
Indexes and corpora are cached in bench/out/ (git-ignored); delete them to start over.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT_DIR, SHARED, load_results, peak_rss_mb  # noqa: E402

CNNDM = SHARED / "cnndm-100"
INDEX_DIR = OUT_DIR / "summarise-index"
FULL_CORPUS = OUT_DIR / "corpus"
PUBLISHED = {  # ../shared/bench/README.md: REALSumm's scores on these 100 documents
    "BART": (47.56, 23.23, 43.99),
    "pointer-generator+coverage": (39.55, 16.29, 27.12),
    "Lead-3 (full CNN/DM test set)": (40.4, 17.6, 36.7),
}
_MARKERS = re.compile(r"\s*\[\d+\]")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,3}[.)])\s+", re.M)


# --- shared helpers ------------------------------------------------------------------------------


def _settings(data_dir: Path, **values: Any) -> Any:
    from bot.core.settings import Settings

    return Settings(_env_file=None, BOT_DATA_DIR=str(data_dir), **values)


def _indexed(corpus: Path, name: str) -> tuple[Any, Any, float]:
    """A store holding `corpus`, ingested once and cached; (settings, store, ingest seconds)."""
    from bot.app.ingest import ingest_paths
    from bot.index.store import open_store

    data_dir = INDEX_DIR / name
    settings = _settings(data_dir)
    stamp = data_dir / "stamp.json"
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and not p.name.startswith("."))
    want = {
        "corpus": str(corpus),
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
    }
    if stamp.exists() and json.loads(stamp.read_text(encoding="utf-8")) == want:
        return settings, open_store(settings), 0.0
    print(f"  indexing {len(files)} files of {corpus} …", flush=True)
    t0 = time.perf_counter()
    report = ingest_paths([corpus], settings, rebuild=True)
    seconds = time.perf_counter() - t0
    if report.failed:
        raise SystemExit(f"ingest of {corpus} failed: {report.errors[:3]}")
    stamp.write_text(json.dumps(want), encoding="utf-8")
    print(f"  indexed in {seconds:.0f} s", flush=True)
    return settings, open_store(settings), seconds


def _full_corpus() -> Path:
    if not (FULL_CORPUS / ".manifest.json").exists():
        import corpus as corpus_builder

        corpus_builder.build(FULL_CORPUS)
    return FULL_CORPUS


# --- part rouge ----------------------------------------------------------------------------------


def _lines(name: str) -> list[str]:
    return (CNNDM / name).read_text(encoding="utf-8").split("\n")[:100]


def _ref_sentences(line: str) -> list[str]:
    return [s.strip() for s in re.findall(r"<t>(.*?)</t>", line.replace("<t> <t>", "<t>")) if s]


def lead3(src_line: str) -> list[str]:
    """The first three sentences of a released (tokenised) CNN/DM article."""
    text = re.sub(r"</?t>", " ", src_line)
    text = re.sub(r"^\s*\( cnn \)\s*", "", text)
    sentences = re.split(r"(?<=\s[.!?])\s+(?!['\"`])", " " + text.strip())
    return [s.strip() for s in sentences if s.strip()][:3]


def summary_sentences(answer: str) -> list[str]:
    """A summary's sentences without [n] markers and bullets, for ROUGE."""
    from bot.sources.chunking import split_sentences

    text = _MARKERS.sub("", _BULLET.sub("", answer))
    out = []
    for line in text.split("\n"):
        out.extend(line[s:e].strip() for s, e in split_sentences(line) if line[s:e].strip())
    return out


class Rouge:
    def __init__(self) -> None:
        from rouge_score import rouge_scorer

        self.scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True)

    def score(self, predictions: list[list[str]], references: list[list[str]]) -> dict[str, float]:
        totals = {"rouge1": [], "rouge2": [], "rougeLsum": []}
        for pred, ref in zip(predictions, references, strict=True):
            scores = self.scorer.score("\n".join(ref), "\n".join(pred))
            for key in totals:
                totals[key].append(scores[key].fmeasure)
        return {k: 100 * statistics.fmean(v) if v else 0.0 for k, v in totals.items()}


def _summarise_docs(
    provider_name: str, paths: list[Path], settings: Any, store: Any
) -> tuple[list[list[str]], dict[str, Any]]:
    from bot.answer.providers import get_provider
    from bot.app.summarise import SummariseOptions, summarise

    provider = get_provider(settings, provider_name)
    outputs: list[list[str]] = []
    seconds: list[float] = []
    calls = refused = unsupported = sentences = 0
    tokens = {"prompt_tokens": 0, "completion_tokens": 0}
    for i, path in enumerate(paths, start=1):
        t0 = time.perf_counter()
        result = summarise(
            SummariseOptions(target=str(path), length="short"),
            settings=settings,
            provider=provider,
            store=store,
        )
        seconds.append(time.perf_counter() - t0)
        outputs.append([] if result.refused else summary_sentences(result.answer))
        calls += result.llm_calls
        refused += result.refused
        sentences += len(result.sentences)
        unsupported += sum(not s.supported for s in result.sentences)
        for key in tokens:
            tokens[key] += result.usage.get(key, 0)
        if provider_name == "local" and (i % 5 == 0 or i == len(paths)):
            print(f"    local {i}/{len(paths)} ({sum(seconds):.0f} s)", flush=True)
    return outputs, {
        "docs": len(paths),
        "seconds_total": sum(seconds),
        "seconds_per_doc_p50": statistics.median(seconds) if seconds else 0.0,
        "llm_calls": calls,
        "refused": refused,
        "sentences": sentences,
        "unsupported_sentences": unsupported,
        "usage": tokens,
        "model": provider.model,
    }


def part_rouge(args: argparse.Namespace) -> dict[str, Any]:
    corpus = _full_corpus() / "article"
    settings, store, ingest_s = _indexed(corpus, "cnndm-articles")
    src, ref = _lines("src.txt"), _lines("ref.txt")
    bart, pgc = _lines("bart.txt"), _lines("pointer_gen_cov.txt")
    n = min(args.limit or 100, 100)
    paths = []
    for i in range(1, n + 1):
        found = sorted(corpus.glob(f"cnndm-{i:03d}.*"))
        if not found:
            raise SystemExit(f"missing cnndm-{i:03d} in {corpus}")
        paths.append(found[0])
    references = [_ref_sentences(line) for line in ref[:n]]
    rouge = Rouge()
    rows: dict[str, dict[str, Any]] = {}

    def add(name: str, predictions: list[list[str]], **extra: Any) -> None:
        rows[name] = {**rouge.score(predictions, references[: len(predictions)]), **extra}

    leads = [lead3(line) for line in src[:n]]
    add("Lead-3 (computed)", leads)
    add("BART (released outputs)", [_ref_sentences(line) for line in bart[:n]])
    add("pointer-gen+cov (released)", [_ref_sentences(line) for line in pgc[:n]])
    print(f"  extractive on {n} articles …", flush=True)
    extractive, stats = _summarise_docs("extractive", paths, settings, store)
    add("bot extractive", extractive, **stats)
    if not args.skip_local:
        m = min(n, args.local_limit or n)
        print(f"  local (SmolLM2) on {m} articles …", flush=True)
        outputs, stats = _summarise_docs("local", paths[:m], settings, store)
        add("bot local (SmolLM2-135M)", outputs, **stats)
        if m < n:  # the same subset for the others, so the rows compare
            add(f"Lead-3 (computed), first {m}", leads[:m])
            add(f"bot extractive, first {m}", extractive[:m])

    print(f"\nROUGE F1 on cnndm-100 ({n} articles; `bot summarise PATH --length short`)")
    print(f"  {'system':<34}{'R-1':>7}{'R-2':>7}{'R-Lsum':>8}{'s/doc':>8}{'calls':>7}  note")
    for name, row in rows.items():
        per_doc = f"{row['seconds_per_doc_p50']:.2f}" if "seconds_per_doc_p50" in row else ""
        calls = str(row.get("llm_calls", "")) if "llm_calls" in row else ""
        note = ""
        if "docs" in row:
            note = (
                f"{row['docs']} docs, {row['refused']} refused, "
                f"{row['unsupported_sentences']}/{row['sentences']} sentences unsupported"
            )
        print(
            f"  {name:<34}{row['rouge1']:>7.2f}{row['rouge2']:>7.2f}{row['rougeLsum']:>8.2f}"
            f"{per_doc:>8}{calls:>7}  {note}"
        )
    for name, (r1, r2, rl) in PUBLISHED.items():
        print(f"  {'published: ' + name:<34}{r1:>7.2f}{r2:>7.2f}{rl:>8.2f}")
    return {"articles": n, "ingest_s": ingest_s, "systems": rows, "published": PUBLISHED}


# --- part scale ----------------------------------------------------------------------------------

_PASSAGE_RE = re.compile(r'<passage id="(\d+)"[^>]*>\n(.*?)\n</passage>', re.S)
_NOTES_RE = re.compile(r"<notes>\n(.*?)\n</notes>", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _tokens(text: str) -> int:
    return math.ceil(len(text) / 3.5)


class InstantServer:
    """An OpenAI-compatible /v1/chat/completions on 127.0.0.1 that answers at once (no model)."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency  # seconds each answer waits, to make calls overlap visibly
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with server._lock:
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                try:
                    if server.latency:
                        time.sleep(server.latency)
                    data = server.answer(body)
                finally:
                    with server._lock:
                        server.active -= 1
                raw = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> InstantServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def answer(self, body: dict) -> dict:
        prompt = body["messages"][-1]["content"]
        limit = int(body.get("max_tokens") or body.get("max_completion_tokens") or 400)
        passages = _PASSAGE_RE.findall(prompt)
        if passages:
            lines = []
            for n, text in passages:
                first = _SENTENCE_END.split(" ".join(text.split()), maxsplit=1)[0]
                lines.append(f"- {' '.join(first.split()[:30]).rstrip('.')} [{n}].")
        else:
            match = _NOTES_RE.search(prompt)
            notes = [ln for ln in (match.group(1).split("\n") if match else []) if ln.strip()]
            lines = notes[::2] if "condensed notes" in prompt else notes
        kept, used = [], 0
        for line in lines:
            cost = _tokens(line) + 1
            if used + cost > limit:
                break
            kept.append(line)
            used += cost
        text = "\n".join(kept)
        prompt_tokens = sum(_tokens(m["content"]) for m in body["messages"])
        completion_tokens = _tokens(text)
        with self._lock:
            self.calls += 1
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
        return {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1,
            "model": body.get("model", "instant"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _cold_memo(store: Any) -> None:
    """Load the embedding model, then forget remembered vectors: every run embeds for real."""
    from bot.index.embeddings import VectorMemo

    store.embedder.embed(["warm up"])
    if hasattr(store.embedder, "memo"):
        store.embedder.memo = VectorMemo()


def _scale_corpus(size: int) -> Path:
    if size >= 1000:
        return _full_corpus()
    folder = OUT_DIR / f"summarise-corpus-{size}"
    if not (folder / ".manifest.json").exists():
        import corpus as corpus_builder

        corpus_builder.build(folder, articles=size)
    return folder


def part_scale(args: argparse.Namespace) -> dict[str, Any]:
    from bot.app.summarise import SummariseOptions, summarise

    rows = []
    for size, latency in [(size, lat) for size in args.sizes for lat in args.latencies]:
        corpus = _scale_corpus(size)
        settings, store, ingest_s = _indexed(corpus, f"scale-{size}")
        articles = store.article_count()
        _cold_memo(store)
        with InstantServer(latency) as server:
            llm_settings = _settings(
                settings.data_dir,
                OPENAI_BASE_URL=server.url,
                BOT_OPENAI_MODEL="instant",
                BOT_LLM="openai",
            )
            rss0 = peak_rss_mb()
            t0 = time.perf_counter()
            result = summarise(SummariseOptions(llm="openai"), settings=llm_settings, store=store)
            wall = time.perf_counter() - t0
            row = {
                "size": size,
                "articles": articles,
                "chunks": store.chunk_count(),
                "ingest_s": ingest_s,
                "provider": "openai (127.0.0.1 server answering without a model)",
                "server_latency_s": latency,
                "wall_s": wall,
                "timings_ms": result.timings_ms,
                "passages": result.passages_considered,
                "llm_calls": result.llm_calls,
                "server_calls": server.calls,
                "map_calls": result.map_calls,
                "merge_levels": result.merge_levels,
                "prompt_tokens": server.prompt_tokens,
                "completion_tokens": server.completion_tokens,
                "max_in_flight": server.max_active,
                "concurrency_setting": llm_settings.summary_concurrency,
                "sentences": len(result.sentences),
                "supported": sum(s.supported for s in result.sentences),
                "cited_passages": len(result.passages),
                "dropped_citations": len(result.dropped_citations),
                "refused": result.refused,
                "peak_rss_mb": max(rss0, peak_rss_mb()),
            }
        if not args.skip_extractive_scale and latency == args.latencies[0]:
            _cold_memo(store)
            t0 = time.perf_counter()
            extractive = summarise(
                SummariseOptions(llm="extractive"), settings=settings, store=store
            )
            row["extractive_wall_s"] = time.perf_counter() - t0
            row["extractive_timings_ms"] = extractive.timings_ms
            row["extractive_sentences"] = len(extractive.sentences)
        rows.append(row)
        print(
            f"  {articles} articles, server latency {latency:g} s: {wall:.1f} s, "
            f"{result.llm_calls} calls "
            f"({result.map_calls} map, {result.merge_levels} merge levels)",
            flush=True,
        )

    print("\nOrchestration: `bot summarise` of the whole index, openai provider, instant server")
    print(
        f"  {'articles':>8}{'latency':>8}{'passages':>9}{'wall s':>8}{'map s':>7}{'merge s':>8}"
        f"{'check s':>8}"
        f"{'calls':>7}{'map':>5}{'levels':>7}{'prompt tok':>11}{'compl tok':>10}{'in flight':>10}"
        f"{'sent.':>6}{'extr. s':>8}"
    )
    for r in rows:
        t = r["timings_ms"]
        print(
            f"  {r['articles']:>8}{r['server_latency_s']:>8g}{r['passages']:>9}{r['wall_s']:>8.1f}"
            f"{t.get('map', 0) / 1000:>7.1f}"
            f"{t.get('merge', 0) / 1000:>8.1f}{t.get('checking', 0) / 1000:>8.1f}"
            f"{r['llm_calls']:>7}{r['map_calls']:>5}{r['merge_levels']:>7}"
            f"{r['prompt_tokens']:>11,}{r['completion_tokens']:>10,}"
            f"{r['max_in_flight']:>6}/{r['concurrency_setting']:<3}{r['sentences']:>6}"
            f"{r.get('extractive_wall_s', float('nan')):>8.1f}"
        )
    print(
        "  latency = seconds the server waits before each answer; levels = merge levels (1 = one"
        " final merge, 2+ = notes condensed first);\n  in flight = most calls the server saw at"
        " once / BOT_SUMMARY_CONCURRENCY; extr. s = the extractive provider on the same index"
    )
    return {"rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="rouge,scale")
    parser.add_argument("--limit", type=int, default=0, help="rouge: first N articles (0 = 100)")
    parser.add_argument("--skip-local", action="store_true", help="rouge: no local SmolLM2 run")
    parser.add_argument(
        "--local-limit", type=int, default=0, help="rouge: local on the first N only (0 = all)"
    )
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument(
        "--latencies",
        default="0,0.1",
        help="scale: seconds the server waits per call (0 = answers at once)",
    )
    parser.add_argument("--skip-extractive-scale", action="store_true")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.latencies = [float(s) for s in args.latencies.split(",") if s]
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    INDEX_DIR.mkdir(parents=True, exist_ok=True)
    out_file = OUT_DIR / "summarise.json"
    results = load_results(out_file)
    for part in parts:
        fn = {"rouge": part_rouge, "scale": part_scale}[part]
        t0 = time.perf_counter()
        results[part] = fn(args)
        results[part]["part_seconds"] = time.perf_counter() - t0
        out_file.write_text(json.dumps(results, indent=2, default=float), encoding="utf-8")
    print(f"\nwrote {out_file}")


if __name__ == "__main__":
    main()
