"""Build the benchmark news corpus (>= 1,000 articles) from the public data in ../shared/bench.

    python bench/corpus.py [OUT_DIR] [--articles N]       (default OUT_DIR: bench/out/corpus)

Nothing here is invented: every sentence comes from the public data sets described in
`../shared/bench/README.md`. The corpus is made of five kinds of item (counts for the full build):

  kind        n     from
  article     100   cnndm-100/src.txt: the full CNN/DailyMail articles, detokenised (see below),
                    split into paragraphs of 2-4 sentences (~450 characters).
  followup    307   the same articles split at paragraph boundaries into sections of ~1,000
                    characters (only articles with >= 2 such sections), each published as its own
                    "part k of n" item, like a live blog's follow-up posts.
  multihop    326   multihop-rag-sample/ground_truth.json: one document per distinct article
                    title, its verbatim evidence facts as paragraphs (438 facts in all), with the
                    article's real title, source, url, published_at, author and category.
  brief       100   cnndm-100/ref.txt: the articles' own highlight bullets (reference summaries).
  digest      200   cnndm-100/bart.txt and pointer_gen_cov.txt: two published systems' summaries
                    (BART, pointer-generator + coverage), labelled as machine digests.

The exact counts and character totals are printed and written to OUT_DIR/.manifest.json (the
full build: 1,033 items, 905,682 characters of article text in 761 files; `--articles N` takes the
first N items of a fixed interleaving of the kinds, so a small run is still a mix).

CNN/DM text is released lowercased and tokenised. Detokenising: drop `<t>` markers; join
clitics (`n't`, `'s`, `'re` ...); attach , . ; : ! ? % ) to the previous word and ( $ to the next;
turn `` and '' into double quotes and pair single-quote tokens; `--` -> em dash. Truecasing: a word
is capitalised as it is most often written mid-sentence in the cased texts of the same data
(the reference and BART summaries of that document first, then of all documents, then the
multihop facts), plus "I"/"I'm", day and month names; sentence starts are capitalised.
Title = the first sentence cut at a word boundary to <= 80 characters. Source = "CNN" when the text
starts with "(CNN)", "Daily Mail" when it names the Daily Mail / MailOnline, else "CNN/DailyMail".
CNN/DM items carry no date (the release has none); multihop items carry their real one.

Formats (deterministic by item index): Markdown with YAML front matter, plain .txt (title line,
blank line, body), single-object .json, .jsonl files holding several records, and a few .html
pages. The output folder is replaced on every run (only if it holds a previous .manifest.json).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_SHARED = BENCH_DIR.parent.parent / "shared" / "bench"
DEFAULT_OUT = BENCH_DIR / "out" / "corpus"

SECTION_CHARS = 1000  # target size of a follow-up section
PARAGRAPH_CHARS = 450  # target size of a paragraph


@dataclass
class Item:
    kind: str  # article | followup | multihop | brief | digest
    slug: str
    title: str
    source: str
    paragraphs: list[str]
    url: str = ""
    published: str = ""
    author: str = ""
    category: str = ""
    fmt: str = "md"  # md | txt | json | jsonl | html
    group: str = ""  # jsonl file name for fmt == "jsonl"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


# --- detokenising and truecasing ---------------------------------------------------------------

_CLITICS = {"n't", "'s", "'re", "'ve", "'ll", "'d", "'m", "’s", "'", "’"}
_ATTACH_LEFT = {",", ".", ";", ":", "!", "?", "%", ")", "]", "...", "''"}
_ATTACH_RIGHT = {"(", "[", "$", "``", "#"}
_ENDERS = {".", "!", "?"}
_ALWAYS = {
    "i": "I", "i'm": "I'm", "i've": "I've", "i'll": "I'll", "i'd": "I'd",
    "monday": "Monday", "tuesday": "Tuesday", "wednesday": "Wednesday", "thursday": "Thursday",
    "friday": "Friday", "saturday": "Saturday", "sunday": "Sunday", "january": "January",
    "february": "February", "april": "April", "june": "June", "july": "July",
    "august": "August", "september": "September", "october": "October", "november": "November",
    "december": "December", "cnn": "CNN", "u.s.": "U.S.", "uk": "UK", "u.k.": "U.K.",
    "nfl": "NFL", "nba": "NBA", "fbi": "FBI", "bbc": "BBC", "uefa": "UEFA", "fifa": "FIFA",
}  # fmt: skip
_WORD = re.compile(r"[A-Za-z][A-Za-z.'’-]*")


def _clean_cased(line: str) -> str:
    return re.sub(r"\s+", " ", line.replace("<t>", " ").replace("</t>", " ")).strip()


_PLACES = """
    afghanistan africa african america american americans argentina argentinian asia australia
    australian belgium brazil brazilian britain british california canada chicago china chinese
    christmas colombia dutch easter egypt england english europe european europeans florida
    france french german germany greece holland india indian iran iraq ireland irish islamic
    israel italian italy japan japanese korea london mexico muslim nepal new york paris portugal
    portuguese russia russian scotland scottish spain spanish syria texas ukraine wales welsh
    washington
""".split()  # noqa: SIM905
_ALWAYS.update({w: w.capitalize() for w in _PLACES if w != "york" and w != "new"})


class Truecaser:
    """Capitalisation learnt from cased texts of the same data: phrases first, then single words.

    Evidence is the runs of capitalised words inside sentences ("Real Madrid", "Anuradha Koirala").
    A multi-word run is applied wherever the same words follow each other in the article. A single
    word is capitalised only if it is never written in lower case mid-sentence in the cased texts
    and is capitalised in this document's own summaries, or at least twice in all of them.
    """

    MAX_PHRASE = 5

    def __init__(self) -> None:
        self.phrases: dict[tuple[str, ...], Counter[tuple[str, ...]]] = defaultdict(Counter)
        self.caps: Counter[str] = Counter()  # lower -> times seen capitalised mid-sentence
        self.lower: Counter[str] = Counter()  # lower -> times seen in lower case mid-sentence

    @staticmethod
    def _runs(text: str) -> tuple[list[list[str]], list[str], list[str]]:
        """(capitalised runs, sentence-initial capitalised words, lower-case words) of a text."""
        runs: list[list[str]] = []
        initials: list[str] = []
        lowers: list[str] = []
        run: list[str] = []
        run_initial = False
        start = True

        def close() -> None:
            if run_initial:
                initials.append(run[0])
            rest = run[1:] if run_initial else run
            if rest:
                runs.append(list(rest))

        for tok in text.split():
            word = tok.strip("\"'`‘’“”()[],.;:!?")
            if word and word[0].isupper() and _WORD.fullmatch(word) and not word.isupper():
                if not run:
                    run_initial = start
                run.append(word)
            else:
                if run:
                    close()
                    run = []
                if word and word[0].islower() and not start:
                    lowers.append(word)
            start = tok in _ENDERS or tok.endswith((".", "!", "?")) and len(tok) > 1
        if run:
            close()
        return runs, initials, lowers

    def learn(self, text: str, *, singles: bool = True) -> dict[str, int]:
        runs, initials, lowers = self._runs(text)
        local: Counter[str] = Counter()
        if singles:  # weak evidence: only ever used for this document
            local.update(w.lower() for w in initials)
        for run in runs:
            if len(run) >= 2:
                self.phrases[tuple(w.lower() for w in run)][tuple(run)] += 1
            if singles:
                for w in run:
                    self.caps[w.lower()] += 1
                    local[w.lower()] += 1
        for w in lowers:
            self.lower[w.lower()] += 1
        return local

    def single(self, key: str, local: Counter[str]) -> bool:
        if self.lower.get(key, 0):
            return False
        return local.get(key, 0) >= 1 or self.caps.get(key, 0) >= 2

    def apply(self, tokens: list[str], local: Counter[str]) -> list[str]:
        """Case a lower-cased token list in place of phrases and single words."""
        out = list(tokens)
        i = 0
        while i < len(out):
            low = out[i].lower()
            done = False
            for n in range(self.MAX_PHRASE, 1, -1):
                key = tuple(t.lower() for t in out[i : i + n])
                if len(key) == n and key in self.phrases:
                    out[i : i + n] = self.phrases[key].most_common(1)[0][0]
                    i += n
                    done = True
                    break
            if done:
                continue
            if low in _ALWAYS:
                out[i] = _ALWAYS[low]
            elif low == "may" and i + 1 < len(out) and out[i + 1][:1].isdigit():
                out[i] = "May"
            elif len(low) > 1 and low.isalpha() and self.single(low, local):
                out[i] = low.capitalize()
            elif "-" in low:
                parts = low.split("-")
                out[i] = "-".join(
                    _ALWAYS.get(p, p.capitalize() if self.single(p, local) else p) for p in parts
                )
            i += 1
        return out


def _cap_first(text: str) -> str:
    for i, ch in enumerate(text):
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1 :]
        if ch.isdigit():
            return text
    return text


def detokenise(line: str, caser: Truecaser, local: Counter[str]) -> list[str]:
    """Tokenised CNN/DM text -> list of sentences in natural spelling and capitalisation."""
    line = line.replace("<t>", " ").replace("</t>", " ")
    # pointer-gen output glues sentences: "kathmandu .the"
    line = re.sub(r" \.(?=[a-z])", " . ", line)
    tokens = caser.apply(line.split(), local)
    sentences: list[str] = []
    current: list[str] = []  # pieces of the sentence being built
    glue_next = False
    single_open = False
    for i, tok in enumerate(tokens):
        low = tok.lower()
        if low == "--":
            piece, left, right = "—", False, False
        elif low == "``":
            piece, left, right = '"', False, True
        elif low == "''":
            piece, left, right = '"', True, False
        elif low == "'" and not single_open and i and tokens[i - 1].lower().endswith("s"):
            piece, left, right = "'", True, False  # plural possessive: "the wings ' coach"
        elif low == "'":
            single_open = not single_open
            piece, left, right = "'", not single_open, single_open
        elif low in _CLITICS or low in _ATTACH_LEFT:
            piece, left, right = tok, True, False
        elif low in _ATTACH_RIGHT:
            piece, left, right = tok, False, True
        else:
            piece, left, right = tok, False, False
        if current and not left and not glue_next:
            current.append(" ")
        current.append(piece)
        glue_next = right
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if low in _ENDERS and nxt not in ("''", ")") or low == "''" and tokens[i - 1] in _ENDERS:
            sentences.append(_cap_first("".join(current).strip()))
            current, glue_next, single_open = [], False, False
    if current:
        sentences.append(_cap_first("".join(current).strip()))
    return [s for s in sentences if any(c.isalnum() for c in s)]


def paragraphs_of(sentences: list[str], target: int = PARAGRAPH_CHARS) -> list[str]:
    """2-4 sentences per paragraph, closing one once it reaches `target` characters."""
    paras: list[str] = []
    cur: list[str] = []
    for sentence in sentences:
        cur.append(sentence)
        size = sum(len(s) + 1 for s in cur)
        if len(cur) >= 4 or (len(cur) >= 2 and size >= target) or size >= 2 * target:
            paras.append(" ".join(cur))
            cur = []
    if cur:
        if paras and len(cur) == 1 and len(cur[0]) < 120:
            paras[-1] += " " + cur[0]
        else:
            paras.append(" ".join(cur))
    return paras


_DANGLING = set(
    """
    a an the of to and or but in on at for with after before from by as her his its their that
    who which when while was were is are has have had be been into over under than
    """.split()  # noqa: SIM905
)


def headline(sentence: str, limit: int = 80) -> str:
    """A headline from a first sentence: at most `limit` characters, no dangling small word."""
    text = re.sub(r"^\(CNN\)\s*—?\s*", "", sentence).strip().rstrip(".!?:;,")
    text = text.replace('"', "")
    if len(text) > limit:
        words = text[:limit].rsplit(" ", 1)[0].split()
        while len(words) > 3 and (words[-1].lower().strip(",;:") in _DANGLING or words[-1] in "—-"):
            words.pop()
        text = " ".join(words).rstrip(",;:—- ")
    return _cap_first(text)


def outlet(raw: str) -> str:
    low = raw.lower()
    if low.lstrip("<t> ").startswith("( cnn )"):
        return "CNN"
    if "daily mail" in low or "mailonline" in low or "dailymail" in low:
        return "Daily Mail"
    return "CNN/DailyMail"


# --- building -----------------------------------------------------------------------------------


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def build_items(shared: Path = DEFAULT_SHARED) -> list[Item]:
    """All items of the full corpus, in a fixed interleaved order."""
    cnn = shared / "cnndm-100"
    src, ref = _lines(cnn / "src.txt"), _lines(cnn / "ref.txt")
    bart, pgc = _lines(cnn / "bart.txt"), _lines(cnn / "pointer_gen_cov.txt")
    ground = json.loads((shared / "multihop-rag-sample" / "ground_truth.json").read_text("utf-8"))

    caser = Truecaser()
    local_counts: list[Counter[str]] = []
    for i in range(len(src)):
        local: Counter[str] = Counter()
        for text in (_clean_cased(ref[i]), _clean_cased(bart[i])):
            local.update(caser.learn(text))
        local_counts.append(local)

    # multihop: one document per title, facts in order of first appearance
    facts: dict[str, list[str]] = {}
    meta: dict[str, dict[str, str]] = {}
    for qid in sorted(ground):
        for ev in ground[qid]["evidence_list"]:
            title = ev["title"].strip()
            facts.setdefault(title, [])
            if ev["fact"].strip() not in facts[title]:
                facts[title].append(ev["fact"].strip())
            meta.setdefault(title, ev)
    for fs in facts.values():  # these texts are cased English news: more truecasing evidence
        for fact in fs:
            caser.learn(re.sub(r"([,.;:!?])", r" \1", fact), singles=False)

    articles: list[Item] = []
    followups: list[Item] = []
    briefs: list[Item] = []
    digests: list[Item] = []
    for i, raw in enumerate(src):
        source = outlet(raw)
        body = re.sub(r"^\s*(<t>)?\s*\( cnn \)\s*", " ", raw)
        sentences = detokenise(body, caser, local_counts[i])
        title = headline(sentences[0])
        if source == "CNN":
            sentences[0] = "(CNN) — " + sentences[0]
        paras = paragraphs_of(sentences)
        n = i + 1
        fmt = "html" if n % 10 == 0 else "txt" if n % 3 == 0 else "md"
        articles.append(
            Item("article", f"cnndm-{n:03d}", title, source, paras, fmt=fmt,
                 extra={"dataset": "cnndm-100", "line": str(n)})
        )  # fmt: skip
        # follow-up sections at paragraph boundaries
        sections: list[list[str]] = []
        cur: list[str] = []
        for p in paras:
            cur.append(p)
            if sum(len(x) for x in cur) >= SECTION_CHARS:
                sections.append(cur)
                cur = []
        if cur:
            if sections and sum(len(x) for x in cur) < SECTION_CHARS // 2:
                sections[-1].extend(cur)
            else:
                sections.append(cur)
        if len(sections) >= 2:
            for k, sec in enumerate(sections, 1):
                followups.append(
                    Item("followup", f"cnndm-{n:03d}-part{k}",
                         f"{title} (part {k} of {len(sections)})", source, sec,
                         fmt="md" if k % 2 else "txt",
                         extra={"dataset": "cnndm-100", "line": str(n), "part": str(k)})
                )  # fmt: skip
        ref_sents = detokenise(ref[i], caser, local_counts[i])
        briefs.append(
            Item("brief", f"cnndm-{n:03d}-brief", f"In brief: {title}", source,
                 [" ".join(ref_sents)], fmt="jsonl", group="briefs-cnndm-highlights",
                 extra={"dataset": "cnndm-100", "line": str(n), "summary": "reference"})
        )  # fmt: skip
        for system, lines, label in (("bart", bart, "BART"), ("pgc", pgc, "pointer-generator")):
            sents = detokenise(lines[i], caser, local_counts[i])
            digests.append(
                Item("digest", f"cnndm-{n:03d}-digest-{system}", f"Digest: {title}",
                     f"News digest ({label})", [" ".join(sents)],
                     fmt="json" if system == "bart" else "jsonl", group=f"digests-{system}",
                     extra={"dataset": "cnndm-100", "line": str(n), "summary": system})
            )  # fmt: skip

    multihop: list[Item] = []
    for j, (title, fs) in enumerate(facts.items()):
        ev = meta[title]
        n = j + 1
        fmt = "html" if n % 25 == 0 else ("json", "md", "jsonl", "md")[n % 4]
        category = (ev.get("category") or "news").strip().lower() or "news"
        multihop.append(
            Item("multihop", f"mh-{n:03d}", title, ev.get("source", "").strip(), list(fs),
                 url=ev.get("url", "").strip(), published=ev.get("published_at", "").strip(),
                 author=(ev.get("author") or "").strip(), category=category, fmt=fmt,
                 group=f"multihop-{re.sub(r'[^a-z0-9]+', '-', category).strip('-')}",
                 extra={"dataset": "multihop-rag-sample"})
        )  # fmt: skip

    # Fixed interleaving so that the first N items are a mix of every kind.
    queues = [articles, multihop, followups, briefs, digests]
    weights = [1, 3, 3, 1, 2]
    out: list[Item] = []
    pos = [0] * len(queues)
    while any(p < len(q) for p, q in zip(pos, queues, strict=True)):
        for qi, (q, w) in enumerate(zip(queues, weights, strict=True)):
            for _ in range(w):
                if pos[qi] < len(q):
                    out.append(q[pos[qi]])
                    pos[qi] += 1
    return out


# --- writing ------------------------------------------------------------------------------------


def _yaml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid YAML scalar


def _record(item: Item) -> dict[str, str]:
    rec = {"title": item.title, "source": item.source, "url": item.url}
    rec["published"] = item.published
    if item.author:
        rec["author"] = item.author
    if item.category:
        rec["category"] = item.category
    rec["text"] = item.text
    return rec


def _html(item: Item) -> str:
    meta = ['<meta charset="utf-8">', f"<title>{html.escape(item.title)}</title>"]
    if item.source:
        meta.append(f'<meta property="og:site_name" content="{html.escape(item.source)}">')
    if item.url:
        meta.append(f'<link rel="canonical" href="{html.escape(item.url)}">')
    if item.published:
        meta.append(
            f'<meta property="article:published_time" content="{html.escape(item.published)}">'
        )
    if item.author:
        meta.append(f'<meta name="author" content="{html.escape(item.author)}">')
    paras = "\n".join(f"    <p>{html.escape(p)}</p>" for p in item.paragraphs)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n  '
        + "\n  ".join(meta)
        + '\n</head>\n<body>\n  <nav><a href="/">Home</a> | <a href="/news">News</a></nav>\n'
        f"  <article>\n    <h1>{html.escape(item.title)}</h1>\n{paras}\n  </article>\n"
        "  <footer>Shared for research under the data set's licence.</footer>\n</body>\n</html>\n"
    )


def write_corpus(items: list[Item], out_dir: Path) -> dict[str, object]:
    """Write `items` under `out_dir` (replaced), return the manifest (also in .manifest.json)."""
    if out_dir.exists():
        if not (out_dir / ".manifest.json").exists() and any(out_dir.iterdir()):
            raise SystemExit(f"{out_dir} is not empty and not a corpus built by this script")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    groups: dict[str, list[Item]] = defaultdict(list)
    files: Counter[str] = Counter()
    for item in items:
        sub = out_dir / item.kind
        sub.mkdir(exist_ok=True)
        if item.fmt == "jsonl":
            groups[item.group].append(item)
            continue
        path = sub / f"{item.slug}.{item.fmt}"
        if item.fmt == "md":
            front = ["---", f"title: {_yaml_str(item.title)}", f"source: {_yaml_str(item.source)}"]
            if item.url:
                front.append(f"url: {_yaml_str(item.url)}")
            if item.published:
                front.append(f"published: {_yaml_str(item.published)}")
            if item.author:
                front.append(f"author: {_yaml_str(item.author)}")
            front.append("---")
            body = "\n".join(front) + f"\n\n# {item.title}\n\n" + item.text + "\n"
        elif item.fmt == "txt":
            body = f"{item.title}\n\n{item.text}\n"
        elif item.fmt == "json":
            body = json.dumps(_record(item), ensure_ascii=False, indent=2) + "\n"
        else:
            body = _html(item)
        path.write_text(body, encoding="utf-8")
        files[item.fmt] += 1
    for group, members in sorted(groups.items()):
        path = out_dir / members[0].kind / f"{group}.jsonl"
        lines = [json.dumps(_record(m), ensure_ascii=False) for m in members]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        files["jsonl"] += 1
    kinds = Counter(i.kind for i in items)
    manifest: dict[str, object] = {
        "articles": len(items),
        "characters": sum(len(i.text) for i in items),
        "by_kind": dict(sorted(kinds.items())),
        "chars_by_kind": {k: sum(len(i.text) for i in items if i.kind == k) for k in sorted(kinds)},
        "records_by_format": dict(sorted(Counter(i.fmt for i in items).items())),
        "files_by_format": dict(sorted(files.items())),
        "files": sum(files.values()),
        "sources": len({i.source for i in items}),
    }
    (out_dir / ".manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def build(out_dir: Path = DEFAULT_OUT, articles: int | None = None,
          shared: Path = DEFAULT_SHARED) -> dict[str, object]:  # fmt: skip
    items = build_items(shared)
    if articles is not None:
        items = items[:articles]
    return write_corpus(items, out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--articles", type=int, default=None, help="first N items only")
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    args = parser.parse_args(argv)
    manifest = build(args.out, args.articles, args.shared)
    print(json.dumps(manifest, indent=2))
    print(f"wrote {manifest['articles']} articles to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
