"""Web benchmark: `bot update` over 1,000 feed items served on 127.0.0.1, against the embedding
model alone on the same texts, and a repeat `bot update` when nothing changed.

    python bench/web.py [--items N] [--feeds N]

A local server (the standard library's, threaded) serves the first N articles of the benchmark
corpus (bench/corpus.py, built into a temporary folder) as news pages with navigation, promotions
and a footer around the story, and `--feeds` RSS feeds that list them; feeds and pages carry ETags
and answer 304 to a matching If-None-Match. Stages, each in its own child process:
  update    fresh data dir, the feeds followed, `ingest_paths(web=WebIngest(feeds))` timed: the
            whole fetch + extract + chunk + embed + write pipeline (default web settings but
            BOT_WEB_HOST_DELAY=0 and BOT_WEB_PER_HOST=8, since every feed is on one local host).
  raw       `LocalMiniLM.embed` on exactly the chunk texts the update wrote (read back from the
            index), after a warm-up call.
  repeat    the `bot update` command again, as a user runs it (a new process, the default web
            settings), every feed now answering 304: wall time of the process (best and median
            of --repeats runs), and in a child the time of `update_feeds` alone, after its imports.

    python bench/web.py --repeat-only [--feeds 20] [--repeats 9] [--compare TREE ...]

measures only the repeat: each feed lists one small page, one update indexes them, then each
round runs the repeat `bot update` once per tree (this checkout, then each TREE, a checkout of
other code, e.g. `git archive main | tar -x -C TREE`) on the same data, interleaved, with the
load average at each round. Results go to bench/out/web.json (web-repeat.json with --repeat-only).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT_DIR, REPO  # noqa: E402

sys.path.insert(0, str(REPO))
from tests.web_fixtures import STORIES, article_page, rss  # noqa: E402

TARGET_E2E_VS_RAW = 0.85
TARGET_REPEAT_S = 1.0
BENCH_ENV = {"BOT_WEB_HOST_DELAY": "0", "BOT_WEB_PER_HOST": "8"}


# --- the local site -------------------------------------------------------------------------


def build_site(items: int, feeds: int, base: str, corpus: Path) -> dict[str, bytes]:
    """Paths -> bodies: `items` article pages and `feeds` RSS feeds listing them in turn."""
    from bot.sources.files import discover_files
    from bot.sources.formats import load_file

    files, _ = discover_files([corpus])
    articles = [a for f in files for a in load_file(f, max_bytes=50_000_000).articles][:items]
    site: dict[str, bytes] = {"/robots.txt": b"User-agent: *\nDisallow: /private\n"}
    links: list[list[tuple[str, str]]] = [[] for _ in range(feeds)]
    for n, article in enumerate(articles):
        title = article.title.replace("<", " ").replace("&", "and")
        page = article_page(title, article.text.replace("\n", " "), date="2024-03-04")
        site[f"/news/{n}"] = page.encode("utf-8")
        links[n % feeds].append((title, f"{base}/news/{n}"))
    for k, listed in enumerate(links):
        site[f"/feed/{k}.xml"] = rss(listed, title=f"Desk {k}").encode("utf-8")
    return site


def serve(site: dict[str, bytes]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            body = site.get(self.path.split("?")[0])
            if body is None:
                self.send_error(404)
                return
            etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            kind = "application/rss+xml" if self.path.endswith(".xml") else "text/html"
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        # The standard library's backlog of 5 drops connections opened at once, and the
        # client's SYN is resent a second later: a local artefact, not a cost of `bot`.
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# --- child stages ---------------------------------------------------------------------------


def stage_update(args: dict[str, Any]) -> dict[str, Any]:
    from bot.app.feeds import load_feeds
    from bot.app.ingest import ingest_paths
    from bot.app.web_ingest import WebIngest
    from bot.core.settings import Settings

    settings = Settings()
    web = WebIngest(settings, feeds=load_feeds(settings))
    start, cpu0 = time.perf_counter(), time.process_time()
    report = ingest_paths(None, settings, web=web)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "added": report.added,
        "failed": report.failed,
        "chunks_embedded": report.chunks_embedded,
        "errors": report.errors[:5],
    }


def stage_raw(args: dict[str, Any]) -> dict[str, Any]:
    from bot.core.settings import Settings
    from bot.index.embeddings import LocalMiniLM
    from bot.index.store import open_store

    settings = Settings()
    model = LocalMiniLM(batch_size=settings.embed_batch_size)
    texts = [c.text for c in open_store(settings, model).iter_chunks()]
    model.embed(["warm-up: create the session"])
    start = time.perf_counter()
    model.embed(texts)
    return {"wall_s": time.perf_counter() - start, "chunks": len(texts)}


def stage_repeat(args: dict[str, Any]) -> dict[str, Any]:
    """`update_feeds` once its imports are done: the part of a repeat update that is not
    Python starting and importing."""
    start = time.perf_counter()
    from bot.app.web_ingest import update_feeds
    from bot.core.settings import Settings

    imported = time.perf_counter()
    report, feeds = update_feeds(Settings())
    return {
        "import_s": imported - start,
        "wall_s": time.perf_counter() - imported,
        "statuses": sorted({f.status for f in feeds}),
        "chunks_embedded": report.chunks_embedded,
    }


STAGES = {"update": stage_update, "raw": stage_raw, "repeat": stage_repeat}


def _env(data_dir: Path, tree: Path = REPO, web: dict[str, str] = BENCH_ENV) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "OPENAI_"))}
    env.update(web, BOT_DATA_DIR=str(data_dir), ANONYMIZED_TELEMETRY="False")
    env["PYTHONPATH"] = str(tree)
    return env


def run_child(stage: str, data_dir: Path, web: dict[str, str] = BENCH_ENV) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", stage]
    proc = subprocess.run(cmd, env=_env(data_dir, web=web), capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"stage {stage} failed (exit {proc.returncode})")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def run_bot(
    data_dir: Path, *args: str, tree: Path = REPO, web: dict[str, str] = BENCH_ENV
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """`bot ARGS` as a user runs it, from `tree`'s code (run from the data folder, so that
    `python -m` finds no other checkout in the working directory)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bot.ui.cli", *args],
        env=_env(data_dir, tree, web),
        cwd=data_dir,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - start, proc


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_repeats(
    data: Path, trees: list[Path], repeats: int, web: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """The repeat `bot update` of each tree (default web settings, but `web`), interleaved round
    by round after one untimed run each (bytecode compiled, files cached), with the load
    average."""
    times: dict[str, list[float]] = {str(t): [] for t in trees}
    cpu: dict[str, list[float]] = {str(t): [] for t in trees}  # user + system, the load aside
    loads: list[float] = []
    statuses: set[str] = set()
    embedded = 0
    for warm_up in [True] + [False] * repeats:
        for tree in trees:
            before = _children_cpu()
            took, proc = run_bot(data, "update", "--json", tree=tree, web=web or {})
            if proc.returncode not in (0, 2):
                raise SystemExit(f"{tree}: bot update failed: {proc.stderr[-2000:]}")
            repeat = json.loads(proc.stdout)
            statuses.update(f["status"] for f in repeat["feeds"])
            embedded += repeat["chunks_embedded"]
            if not warm_up:
                times[str(tree)].append(took)
                cpu[str(tree)].append(_children_cpu() - before)
        loads.append(os.getloadavg()[0])
    return {
        tree: {
            "best_s": min(ts),
            "median_s": statistics.median(ts),
            "runs": ts,
            "cpu_median_s": statistics.median(cpu[tree]),
            "load_avg": statistics.mean(loads[1:]),
            "statuses": sorted(statuses),
            "chunks_embedded": embedded,
        }
        for tree, ts in times.items()
    }


# --- orchestration --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5, help="repeat updates timed per tree")
    parser.add_argument("--skip-raw", action="store_true", help="skip the raw embedding stage")
    parser.add_argument("--repeat-only", action="store_true", help="time only the repeat update")
    parser.add_argument(
        "--compare", type=Path, action="append", default=[], help="another checkout to time too"
    )
    parser.add_argument(
        "--host-delay", help="BOT_WEB_HOST_DELAY for the timed repeats (default: the setting's)"
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.child:
        print(json.dumps(STAGES[ns.child]({})))
        return 0
    with tempfile.TemporaryDirectory(prefix="bot-web-bench-") as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        site: dict[str, bytes] = {}
        server = serve(site)  # filled below, once its address is known
        base = f"http://127.0.0.1:{server.server_address[1]}"
        if ns.repeat_only:
            site.update(small_site(ns.feeds, base))
            result = measure_repeat(ns, work / "data", base)
        else:
            corpus = work / "corpus"
            subprocess.run(
                [sys.executable, str(REPO / "bench" / "corpus.py"), str(corpus)],
                check=True,
                capture_output=True,
            )
            site.update(build_site(ns.items, ns.feeds, base, corpus))
            result = measure(ns, work / "data", base)
        server.shutdown()
    out = ns.out or OUT_DIR / ("web-repeat.json" if ns.repeat_only else "web.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(render_repeat(result) if ns.repeat_only else render(result))
    return 0


def small_site(feeds: int, base: str) -> dict[str, bytes]:
    """`feeds` RSS feeds of one short page each: enough to index quickly, all 304 after."""
    site: dict[str, bytes] = {"/robots.txt": b"User-agent: *\nDisallow: /private\n"}
    for k in range(feeds):
        title, body = STORIES[k % len(STORIES)]
        site[f"/news/{k}"] = article_page(f"{title} ({k})", body).encode("utf-8")
        listed = [(f"{title} ({k})", f"{base}/news/{k}")]
        site[f"/feed/{k}.xml"] = rss(listed, title=f"Desk {k}").encode("utf-8")
    return site


def follow_feeds(data: Path, base: str, feeds: int) -> None:
    for k in range(feeds):
        _, proc = run_bot(data, "feeds", "add", f"{base}/feed/{k}.xml", "--name", f"desk{k}")
        if proc.returncode:
            raise SystemExit(proc.stderr)


def measure_repeat(ns: argparse.Namespace, data: Path, base: str) -> dict[str, Any]:
    follow_feeds(data, base, ns.feeds)
    _, first = run_bot(data, "update", "--json")
    if first.returncode:
        raise SystemExit(first.stderr[-2000:])
    trees = [REPO, *(t.resolve() for t in ns.compare)]
    web = {"BOT_WEB_HOST_DELAY": ns.host_delay} if ns.host_delay else {}
    timed = time_repeats(data, trees, ns.repeats, web)
    return {"feeds": ns.feeds, "repeats": ns.repeats, "web_env": web, "trees": timed}


def measure(ns: argparse.Namespace, data: Path, base: str) -> dict[str, Any]:
    follow_feeds(data, base, ns.feeds)
    update = run_child("update", data)
    print(f"update: {update['wall_s']:.1f}s", file=sys.stderr)
    raw = {"wall_s": float("nan")} if ns.skip_raw else run_child("raw", data)
    repeat = time_repeats(data, [REPO], ns.repeats)[str(REPO)]
    inproc = [run_child("repeat", data, web={}) for _ in range(ns.repeats)]
    return {
        "repeat_inproc_s": min(r["wall_s"] for r in inproc),
        "repeat_import_s": min(r["import_s"] for r in inproc),
        "items": ns.items,
        "feeds": ns.feeds,
        "update": update,
        "raw": raw,
        "e2e_items_per_s": update["added"] / update["wall_s"],
        "raw_items_per_s": update["added"] / raw["wall_s"],
        "repeat_s": repeat["best_s"],
        "repeat_median_s": repeat["median_s"],
        "repeat_load_avg": repeat["load_avg"],
        "repeat_statuses": repeat["statuses"],
        "repeat_chunks_embedded": repeat["chunks_embedded"],
    }


def render(r: dict[str, Any]) -> str:
    ratio = r["e2e_items_per_s"] / r["raw_items_per_s"]
    lines = [
        f"bot update: {r['items']} items in {r['feeds']} feeds on 127.0.0.1",
        f"{'stage':<34}{'wall s':>9}{'items/s':>10}  target",
        f"{'update (fetch+extract+embed+write)':<34}{r['update']['wall_s']:>9.1f}"
        f"{r['e2e_items_per_s']:>10.1f}  >= {TARGET_E2E_VS_RAW:.0%} of raw: {ratio:.0%}",
        f"{'raw embedding, same chunks':<34}{r['raw']['wall_s']:>9.1f}"
        f"{r['raw_items_per_s']:>10.1f}",
        f"{'repeat `bot update`, all 304':<34}{r['repeat_s']:>9.2f}{'':>10}"
        f"  < {TARGET_REPEAT_S:g} s (best of the runs; median {r['repeat_median_s']:.2f} s;"
        f" load average {r['repeat_load_avg']:.1f})",
        f"{'  of which update_feeds itself':<34}{r['repeat_inproc_s']:>9.2f}"
        f"{'':>10}  (imports {r['repeat_import_s']:.2f} s)",
        f"repeat statuses: {', '.join(r['repeat_statuses'])};"
        f" {r['repeat_chunks_embedded']} chunks embedded",
        f"added {r['update']['added']}, failed {r['update']['failed']}, "
        f"chunks {r['update']['chunks_embedded']}",
    ]
    return "\n".join(lines)


def _settings_line(web: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in web.items()) or "default web settings"


def render_repeat(r: dict[str, Any]) -> str:
    trees = r["trees"]
    mine = trees[str(REPO)]
    lines = [
        f"repeat `bot update`, {r['feeds']} feeds on 127.0.0.1 all answering 304,"
        f" {_settings_line(r['web_env'])}; {r['repeats']} runs per tree, interleaved"
        f" (target < {TARGET_REPEAT_S:g} s)",
        f"{'tree':<40}{'best s':>8}{'median s':>10}{'vs this':>9}{'cpu s':>8}{'vs this':>9}"
        f"{'load avg':>10}",
    ]
    for tree, t in trees.items():
        ratio = t["median_s"] / mine["median_s"]
        cpu_ratio = t["cpu_median_s"] / mine["cpu_median_s"]
        lines.append(
            f"{tree:<40}{t['best_s']:>8.2f}{t['median_s']:>10.2f}{ratio:>8.2f}x"
            f"{t['cpu_median_s']:>8.2f}{cpu_ratio:>8.2f}x{t['load_avg']:>10.1f}"
        )
    lines.append(
        f"statuses: {', '.join(mine['statuses'])}; {mine['chunks_embedded']} chunks embedded"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
