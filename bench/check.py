"""Citation-checking benchmark: how often the checker passes what is supported and flags the rest.

    python bench/check.py [--docs 100]

Data: ../shared/bench/cnndm-100 (100 CNN/DailyMail articles with their reference highlights and
BART's summaries). Each article is chunked with bot's chunker at the default settings, and its
chunks are the passages [1..m]. Each test sentence is checked alone, as a one-sentence answer
citing the passage that shares the most content words with it (as a model cites the passage it
used), with the bundled MiniLM as the embedder and the default threshold.

Kinds of sentence:
  ref             a reference highlight of the article (written by CNN/DM's editors; mostly
                  supported, though some highlights carry facts the article body lacks)
  bart            a sentence of BART's summary of the article (a real abstractive model; mostly
                  faithful)
  ref+clause      a reference highlight with a clause from another article's highlight appended
                  (", and <its first 8 words>"): the unsupported trailing clause
  foreign         another article's highlight, cited to this article's passage

For ref and bart the table shows the share marked supported (higher is better, 100% is not
expected); for ref+clause and foreign the share flagged unsupported (higher is better). Both
checker modes run: sentence-level (every clause judged with the sentence) and clause-level (the
default). Results go to bench/out/check.json.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT_DIR, SHARED, cpu_info  # noqa: E402

CNNDM = SHARED / "cnndm-100"
MULTIHOP = SHARED / "multihop-rag-sample"
CLAUSE_WORDS = 8
OTHER_DOC_STEP = 37  # the appended clause comes from article (i + 37) mod n


def _lines(name: str, docs: int) -> list[str]:
    return (CNNDM / name).read_text(encoding="utf-8").split("\n")[:docs]


def detok(text: str) -> str:
    """Undo the release's tokenisation enough for a checker that reads ordinary text."""
    text = re.sub(r"</?t>", " ", text)
    text = re.sub(r"^\s*\( cnn \)\s*", "", text)
    text = text.replace("``", '"').replace("''", '"')
    text = re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)\b", r"\1", text)
    text = re.sub(r"\s+([,.;:!?%)])", r"\1", text)
    text = re.sub(r"(?<=\w) - (?=\w)", "-", text)  # "runner - up": a hyphen, not a dash
    text = re.sub(r"([($])\s+", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def sentences_of(line: str) -> list[str]:
    line = line.replace("<t> <t>", "<t>").replace("</t> </t>", "</t>")
    found = (detok(s) for s in re.findall(r"<t>(.*?)</t>", line))
    return [s for s in found if re.search(r"[^\W\d_]{2}", s)]


def with_clause(sentence: str, other: str, joint: str = ", and ") -> str:
    """`sentence` with the first CLAUSE_WORDS words of `other` appended after `joint`."""
    words = other.rstrip(" .").split()[:CLAUSE_WORDS]
    clause = " ".join(words).rstrip(",;:")
    if clause[:1].isupper() and not clause[1:2].isupper():
        clause = clause[0].lower() + clause[1:]
    return f"{sentence.rstrip(' .')}{joint}{clause}."


def topic_cases(settings: Any, limit: int) -> list[dict[str, Any]]:
    """MultiHop-RAG questions whose evidence comes from two articles on one story: article A's
    fact with a clause of article B's fact appended, checked against A's text only."""
    ground = json.loads((MULTIHOP / "ground_truth.json").read_text(encoding="utf-8"))
    facts: dict[str, list[str]] = {}
    for item in ground.values():
        for ev in item["evidence_list"]:
            title_facts = facts.setdefault(ev["title"], [])
            if ev["fact"] not in title_facts:
                title_facts.append(ev["fact"])
    cases: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for item in ground.values():
        evidence = item["evidence_list"]
        if len({ev["title"] for ev in evidence}) < 2:
            continue
        a = evidence[0]
        b = next(ev for ev in evidence if ev["title"] != a["title"])
        if (a["title"], b["title"]) in seen:
            continue
        seen.add((a["title"], b["title"]))
        passages = _passages("\n\n".join(facts[a["title"]]), len(seen), settings)
        sentence = with_clause(a["fact"], b["fact"])
        cases.append(
            {
                "kind": "topic+clause",
                "doc": a["title"],
                "sentence": sentence,
                "passages": passages,
                "cite": _best_passage(a["fact"], passages),
            }
        )
        if len(cases) >= limit:
            break
    return cases


def _passages(article: str, doc: int, settings: Any) -> list[Any]:
    from bot.core.types import Passage
    from bot.sources.chunking import chunk_text

    return [
        Passage(
            n=n,
            chunk_id=f"d{doc}:{n}",
            article_id=f"d{doc}",
            title=f"doc {doc}",
            source="cnn",
            url="",
            published="",
            path=f"d{doc}.txt",
            start=c.start,
            end=c.end,
            text=article[c.start : c.end],
        )
        for n, c in enumerate(chunk_text(article, settings.chunk_size, settings.chunk_overlap), 1)
    ]


def _best_passage(sentence: str, passages: list[Any]) -> int:
    from bot.core.words import content_words

    words = set(content_words(sentence))
    return max(passages, key=lambda p: len(words & set(content_words(p.text)))).n


def build_cases(docs: int, settings: Any) -> list[dict[str, Any]]:
    src, ref, bart = (_lines(n, docs) for n in ("src.txt", "ref.txt", "bart.txt"))
    n_docs = len(src)
    refs = [sentences_of(line) for line in ref]
    cases: list[dict[str, Any]] = []
    for i in range(n_docs):
        passages = _passages(detok(src[i]), i, settings)
        other = refs[(i + OTHER_DOC_STEP) % n_docs]
        if not passages or not other:
            continue
        # (kind, sentence, the sentence whose best passage it cites): an appended clause keeps
        # the citation of the highlight it was appended to, as the model used that passage.
        rows = [("ref", s, s) for s in refs[i]]
        rows += [("bart", s, s) for s in sentences_of(bart[i])]
        for j, s in enumerate(refs[i]):
            rows.append(("ref+clause", with_clause(s, other[j % len(other)]), s))
            rows.append(("ref+and", with_clause(s, other[j % len(other)], " and "), s))
        rows += [("foreign", s, s) for s in other]
        for kind, sentence, base in rows:
            cases.append(
                {
                    "kind": kind,
                    "doc": i,
                    "sentence": sentence,
                    "passages": passages,
                    "cite": _best_passage(base, passages),
                }
            )
    return cases + topic_cases(settings, limit=len(refs) * 4)


def run(cases: list[dict[str, Any]], embedder: Any, min_support: float, clauses: bool) -> dict:
    from bot.answer.checking import check_answer

    out: dict[str, dict[str, Any]] = {}
    examples: dict[str, list[str]] = {}
    t0 = time.perf_counter()
    for case in cases:
        result = check_answer(
            f"{case['sentence']} [{case['cite']}]",
            case["passages"],
            embedder=embedder,
            min_support=min_support,
            clauses=clauses,
        )
        supported = bool(result.sentences) and all(s.supported for s in result.sentences)
        row = out.setdefault(case["kind"], {"n": 0, "supported": 0})
        row["n"] += 1
        row["supported"] += supported
        wrong = not supported if case["kind"] in ("ref", "bart") else supported
        if wrong and len(examples.setdefault(case["kind"], [])) < 5:
            examples[case["kind"]].append(case["sentence"])
    seconds = time.perf_counter() - t0
    for row in out.values():
        row["supported_share"] = row["supported"] / row["n"] if row["n"] else 0.0
    return {
        "kinds": out,
        "seconds": seconds,
        "ms_per_sentence": 1000 * seconds / len(cases),
        "wrong_examples": examples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=100)
    args = parser.parse_args()

    from bot.core.settings import Settings
    from bot.index.embeddings import LocalMiniLM

    settings = Settings()
    embedder = LocalMiniLM()
    cases = build_cases(args.docs, settings)
    results: dict[str, Any] = {
        "cpu": cpu_info(),
        "docs": args.docs,
        "min_support": settings.min_support,
        "modes": {},
    }
    for mode, clauses in (("sentence", False), ("clause", True)):
        embedder.memo.clear()
        results["modes"][mode] = run(cases, embedder, settings.min_support, clauses)

    kinds = ("ref", "bart", "ref+clause", "ref+and", "topic+clause", "foreign")
    print(
        f"\nCitation checking on cnndm-100 ({args.docs} articles), threshold {settings.min_support}"
    )
    print(f"  {'mode':<10}" + "".join(f"{k:>14}" for k in kinds) + f"{'ms/sentence':>14}")
    print(
        f"  {'':<10}"
        + "".join(f"{'supported' if k in ('ref', 'bart') else 'flagged':>14}" for k in kinds)
    )
    for mode, res in results["modes"].items():
        cells = []
        for k in kinds:
            row = res["kinds"].get(k, {"n": 0, "supported_share": 0.0})
            share = row["supported_share"] if k in ("ref", "bart") else 1 - row["supported_share"]
            cells.append(f"{100 * share:>8.1f}% {row['n']:>4}")
        print(
            f"  {mode:<10}"
            + "".join(f"{c:>14}" for c in cells)
            + f"{res['ms_per_sentence']:>14.1f}"
        )
    print("  (share, then the number of sentences)")
    for mode, res in results["modes"].items():
        for kind, sentences in res["wrong_examples"].items():
            for s in sentences[:3]:
                print(f"  {mode} {kind} wrong: {s[:150]}")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "check.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"\nwrote {OUT_DIR / 'check.json'}")


if __name__ == "__main__":
    main()
