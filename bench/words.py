"""Word-rule speed: BM25 tokenising, content words and the embedder's vector memo.

    python bench/words.py [--rounds 9] [--out words.json]

Times whichever `bot` comes first on the path, so the same script compares two trees
(`PYTHONPATH=<other checkout> python bench/words.py --out words-other.json`); it uses only
`tokenize`, `content_words` and `VectorMemo`, which every tree has.

  tokenize       the BM25 build's tokenising: the MultiHop-RAG corpus as bench/ask.py ingests it
                 (title and facts of each article), and CNN/DM-100's sources ten times over (a
                 corpus of a few thousand chunks)
  content_words  the checker's and the extractive answerer's words, over CNN/DM-100's sentences
  VectorMemo     put and get (hits) of 384-float vectors, 10,000 texts through a 4,096-text memo

"first" is the first pass in the process (empty caches, as in a new process building its BM25
index); "best" the fastest of the --rounds passes after it. The one-off import of the word
lists is done before timing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT_DIR, SHARED, cpu_info  # noqa: E402

MEMO_TEXTS = 10_000
MEMO_CAPACITY = 4096


def _multihop_docs() -> list[str]:
    truth = json.loads((SHARED / "multihop-rag-sample" / "ground_truth.json").read_text("utf-8"))
    facts: dict[str, list[str]] = {}
    for entry in truth.values():
        for ev in entry.get("evidence_list") or []:
            seen = facts.setdefault(ev["title"], [])
            if ev["fact"] not in seen:
                seen.append(ev["fact"])
    return [f"{title}\n" + "\n\n".join(found) for title, found in facts.items()]


def _cnndm_docs() -> list[str]:
    lines = (SHARED / "cnndm-100" / "src.txt").read_text(encoding="utf-8").split("\n")
    return [" ".join(line.split()) for line in lines if line.strip()]


def _passes(work: Callable[[], object], rounds: int) -> dict[str, float]:
    times = []
    for _ in range(rounds + 1):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return {"first_ms": times[0], "best_ms": min(times[1:])}


def _memo(rounds: int) -> dict[str, float]:
    import numpy as np

    from bot.index.embeddings import VectorMemo

    texts = [f"Sentence {i} of a passage." for i in range(MEMO_TEXTS)]
    vector = np.ones(384, dtype=np.float32)
    memo = VectorMemo(MEMO_CAPACITY)
    put = _passes(lambda: [memo.put(t, vector) for t in texts], rounds)
    recent = texts[-MEMO_CAPACITY:]
    get = _passes(lambda: [memo.get(t) for t in recent], rounds)
    return {
        "put_us": 1000 * put["best_ms"] / len(texts),
        "get_us": 1000 * get["best_ms"] / len(recent),
        "size": len(memo),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--out", default="words.json")
    args = parser.parse_args()

    import bot.core.words as words

    words.tokenize("warm up")  # the word lists' one-off import
    words.content_words("warm up")
    multihop, cnndm = _multihop_docs(), _cnndm_docs() * 10
    sentences = [s for doc in _cnndm_docs() for s in re.split(r"(?<=[.!?]) ", doc) if len(s) > 30]
    n_words = {
        "multihop": sum(len(d.split()) for d in multihop),
        "cnndm_x10": sum(len(d.split()) for d in cnndm),
    }
    results: dict[str, Any] = {"machine": cpu_info(), "words_module": words.__file__}
    results["tokenize_multihop"] = _passes(
        lambda: [words.tokenize(d) for d in multihop], args.rounds
    )
    results["tokenize_cnndm_x10"] = _passes(
        lambda: [words.tokenize(d) for d in cnndm], max(1, args.rounds // 3)
    )
    results["content_words"] = _passes(
        lambda: [words.content_words(s) for s in sentences], args.rounds
    )
    results["memo"] = _memo(args.rounds)

    print(f"\nWord rules of {words.__file__}")
    print(f"  {'work':<44}{'first ms':>10}{'best ms':>10}")
    rows = (
        (f"tokenize MultiHop ({len(multihop)} docs, {n_words['multihop']:,} words)", "multihop"),
        (f"tokenize CNN/DM x10 ({len(cnndm)} docs, {n_words['cnndm_x10']:,} words)", "cnndm_x10"),
    )
    for label, key in rows:
        row = results[f"tokenize_{key}"]
        print(f"  {label:<44}{row['first_ms']:>10.1f}{row['best_ms']:>10.1f}")
    row = results["content_words"]
    print(f"  {f'content_words ({len(sentences):,} sentences)':<44}", end="")
    print(f"{row['first_ms']:>10.1f}{row['best_ms']:>10.1f}")
    memo = results["memo"]
    print(f"  VectorMemo: put {memo['put_us']:.2f} us, get {memo['get_us']:.2f} us (best pass)")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / args.out).write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"\nwrote {OUT_DIR / args.out}")


if __name__ == "__main__":
    main()
