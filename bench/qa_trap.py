"""The trap set of the QA benchmark: labelled questions over bench/trap/articles, asked through the
`bot` command (`ask --json`, `chat --json` for follow-ups) and scored item by item.

bench/trap/articles.json labels each article: its outlet and publication date as a reader would
take them from the file (`--MM-DD` when the dateline gives no year), and the headline, dateline,
byline and captions, which must never be quoted inside an answer sentence.
bench/trap/questions.json labels each question; see bench/QA.md.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa_text import (
    contains,
    contains_any,
    has_date_expression,
    normalise,
    numbers,
    strip_markers,
    value_matches,
)

TRAP_DIR = Path(__file__).resolve().parent / "trap"
ARTICLES_DIR = TRAP_DIR / "articles"
CATEGORIES = (
    "off_topic", "short", "filtered", "conflict", "when", "headline_dateline", "follow_up",
    "control",
)  # fmt: skip
CALL_TIMEOUT_S = 300  # one `bot` process; a cold start takes a few seconds, never minutes
SNIPPET_CHARS = 70


@dataclass(frozen=True)
class TrapItem:
    id: str
    category: str
    question: str
    expect: str  # "answer" | "refuse"
    must_contain: tuple[str, ...] = ()
    conflict: dict[str, Any] | None = None
    source: str | None = None
    since: str | None = None
    until: str | None = None
    follow_up: tuple[str, ...] = ()
    notes: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrapItem:
        values = dict(data)
        values["must_contain"] = tuple(str(v) for v in values.get("must_contain", ()))
        values["follow_up"] = tuple(values.get("follow_up", ()))
        return cls(**values)

    @property
    def filters(self) -> list[str]:
        flags = (("--source", self.source), ("--since", self.since), ("--until", self.until))
        return [part for flag, value in flags if value for part in (flag, value)]


@dataclass(frozen=True)
class ArticleLabels:
    file: str
    outlet: str
    published: str  # YYYY-MM-DD, --MM-DD (no year in the dateline) or "" (none given)
    headline: str
    dateline: str
    byline: str
    captions: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArticleLabels:
        return cls(**{**data, "captions": tuple(data.get("captions", ()))})


def load_items(limit: int | None = None) -> list[TrapItem]:
    """The labelled questions; with `limit`, the first `limit` of each category."""
    raw = json.loads((TRAP_DIR / "questions.json").read_text(encoding="utf-8"))
    items = [TrapItem.from_json(entry) for entry in raw]
    unknown = {item.category for item in items} - set(CATEGORIES)
    if unknown:
        raise SystemExit(f"questions.json: unknown categories {sorted(unknown)}")
    if limit is None:
        return items
    taken: dict[str, int] = {}
    kept = []
    for item in items:
        taken[item.category] = taken.get(item.category, 0) + 1
        if taken[item.category] <= limit:
            kept.append(item)
    return kept


def load_articles() -> list[ArticleLabels]:
    """The article labels, each checked against its file so that labels cannot drift."""
    raw = json.loads((TRAP_DIR / "articles.json").read_text(encoding="utf-8"))
    labels = [ArticleLabels.from_json(entry) for entry in raw]
    on_disk = sorted(p.name for p in ARTICLES_DIR.iterdir() if p.is_file())
    if sorted(label.file for label in labels) != on_disk:
        raise SystemExit("bench/trap/articles.json does not list exactly the files in articles/")
    for label in labels:
        text = html.unescape((ARTICLES_DIR / label.file).read_text(encoding="utf-8"))
        for part in (label.headline, label.dateline, label.byline, *label.captions):
            if part not in text:
                raise SystemExit(f"articles.json: {label.file} does not contain {part!r}")
    return labels


# --- running `bot` ---------------------------------------------------------------------------


@dataclass
class BotRunner:
    """Runs the `bot` command on one data directory, from a folder without a `.env`."""

    bot: Path
    env: dict[str, str]
    cwd: Path
    llm: str

    def run(self, args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bot), *args],
            input=stdin,
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=CALL_TIMEOUT_S,
        )

    def json_output(self, args: list[str]) -> Any:
        proc = self.run(args)
        if proc.returncode != 0:
            raise SystemExit(f"bot {args[0]} failed: {proc.stderr.strip()[-500:]}")
        return json.loads(proc.stdout)

    def ask(self, item: TrapItem) -> dict[str, Any]:
        proc = self.run(["ask", item.question, "--json", "--llm", self.llm, *item.filters])
        if proc.returncode != 0:
            return {"error": _last_line(proc.stderr)}
        return json.loads(proc.stdout)

    def chat(self, item: TrapItem) -> dict[str, Any]:
        """The chat's reply to the item's question, after its earlier questions."""
        lines = [*item.follow_up, item.question]
        proc = self.run(
            ["chat", "--json", "--llm", self.llm, *item.filters], stdin="\n".join(lines) + "\n"
        )
        replies = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        answers = [reply for reply in replies if "asked" in reply]
        if len(answers) < len(lines):
            return {"error": _last_line(proc.stderr) or "the chat gave fewer replies than lines"}
        return answers[-1]

    def reply(self, item: TrapItem) -> dict[str, Any]:
        return self.chat(item) if item.follow_up else self.ask(item)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def bot_env(data_dir: Path, cache_dir: Path, repo: Path) -> dict[str, str]:
    """This environment without BOT_* settings, plus the data and cache dirs; `repo` first on the
    path so that the `bot` processes run this checkout's code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env["BOT_DATA_DIR"] = str(data_dir)
    env["BOT_CACHE_DIR"] = str(cache_dir)
    env["ANONYMIZED_TELEMETRY"] = "False"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), env.get("PYTHONPATH")) if p)
    return env


def ask_all(
    items: list[TrapItem], ask: Callable[[TrapItem], dict[str, Any]], jobs: int
) -> list[dict[str, Any]]:
    """Every item's reply, in item order, `jobs` processes at a time."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(ask, items))


# --- scoring ---------------------------------------------------------------------------------


@dataclass
class Furniture:
    """Text that is about an article rather than from its story."""

    headlines: list[str]  # normalised (case-insensitive)
    datelines: list[str]  # spaces collapsed, case kept: "EASTFIELD —" must not match "Eastfield"
    other: list[str]  # bylines and caption bodies, normalised

    @classmethod
    def from_labels(cls, labels: Iterable[ArticleLabels]) -> Furniture:
        headlines, datelines, other = [], [], []
        for label in labels:
            headlines.append(normalise(label.headline))
            if label.dateline:
                datelines.append(" ".join(label.dateline.split()))
            if label.byline:
                other.append(normalise(label.byline))
            other.extend(normalise(_caption_body(c)) for c in label.captions)
        return cls(headlines, datelines, other)

    def in_sentence(self, sentence: str) -> tuple[bool, bool]:
        """(a headline or dateline is inside `sentence`, a byline or caption is)."""
        plain = strip_markers(sentence)
        lowered, spaced = normalise(plain), " ".join(plain.split())
        headline = any(h in lowered for h in self.headlines)
        dateline = any(d in spaced for d in self.datelines)
        return headline or dateline, any(o in lowered for o in self.other)


def _caption_body(caption: str) -> str:
    """ "Photo: Divers inspect the pier. (Northwire/J. Okafor)" -> "Divers inspect the pier."."""
    body = caption.split(":", 1)[1] if caption.lower().startswith("photo:") else caption
    return body.rsplit("(", 1)[0].strip()


@dataclass
class ItemScore:
    id: str
    category: str
    expect: str
    outcome: str  # answered | refused | error
    correct: bool
    headline_dateline: int = 0  # answer sentences with a headline or dateline inside
    byline_caption: int = 0  # answer sentences with a byline or caption inside
    number_mismatches: int = 0  # citations whose passage lacks a number the sentence states
    flagged: bool | None = None  # conflict items: a disagreement covers the conflict's values
    values_retrieved: int = 0  # conflict items: labelled values found in the retrieved passages
    dated: bool | None = None  # when items: answered with a date
    cited_flags: bool | None = None  # answered items: every passage has a right `cited` flag
    question: str = ""
    answer: str = ""
    error: str = ""
    sentences: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _outcome(reply: dict[str, Any]) -> str:
    if "error" in reply:
        return "error"
    return "refused" if reply.get("refused") else "answered"


def _answer_text(reply: dict[str, Any]) -> str:
    """The answer as the reader gets it: its text plus the date it gives, if any."""
    date = reply.get("answer_date") or {}
    return " ".join(part for part in (reply.get("answer", ""), str(date.get("value", ""))) if part)


def number_mismatches(sentences: list[dict[str, Any]], passages: list[dict[str, Any]]) -> int:
    """Citations whose cited passage does not state every number its sentence states."""
    by_n = {p.get("n"): str(p.get("text", "")) for p in passages}
    count = 0
    for sentence in sentences:
        stated = numbers(strip_markers(sentence.get("text", "")))
        for n in sentence.get("citations", []):
            count += bool(stated - numbers(by_n.get(n, "")))
    return count


def conflict_flagged(reply: dict[str, Any], conflict: dict[str, Any]) -> bool:
    """True when one `disagreements` entry reports every value of the labelled conflict."""
    for entry in reply.get("disagreements") or []:
        values = [str(v.get("value", "")) for v in entry.get("values") or []]
        if all(any(value_matches(str(w), got) for got in values) for w in conflict["values"]):
            return True
    return False


def values_retrieved(reply: dict[str, Any], conflict: dict[str, Any]) -> int:
    """How many of the conflict's values the retrieved passages state: a disagreement can only
    report the values it was given."""
    texts = [str(p.get("text", "")) for p in reply.get("passages", [])]
    return sum(any(contains(text, str(v)) for text in texts) for v in conflict["values"])


def cited_flags_right(reply: dict[str, Any]) -> bool:
    cited = {n for s in reply.get("sentences", []) for n in s.get("citations", [])}
    return all(
        isinstance(p.get("cited"), bool) and p["cited"] == (p.get("n") in cited)
        for p in reply.get("passages", [])
    )


def score_item(item: TrapItem, reply: dict[str, Any], furniture: Furniture) -> ItemScore:
    outcome = _outcome(reply)
    answered = outcome == "answered"
    sentences = reply.get("sentences", []) if answered else []
    texts = [str(s.get("text", "")) for s in sentences]
    if item.expect == "refuse":
        correct = outcome == "refused"
    else:
        correct = answered and contains_any(_answer_text(reply), list(item.must_contain))
    score = ItemScore(
        id=item.id,
        category=item.category,
        expect=item.expect,
        outcome=outcome,
        correct=correct,
        question=item.question,
        answer=str(reply.get("answer", "")),
        error=str(reply.get("error", "")),
        sentences=texts,
    )
    for text in texts:
        head_or_date, other = furniture.in_sentence(text)
        score.headline_dateline += head_or_date
        score.byline_caption += other
    score.number_mismatches = number_mismatches(sentences, reply.get("passages", []))
    if item.conflict:
        score.flagged = answered and conflict_flagged(reply, item.conflict)
        score.values_retrieved = values_retrieved(reply, item.conflict)
    if item.category == "when":
        dated = reply.get("answer_date") is not None or any(map(has_date_expression, texts))
        score.dated = answered and dated
    if answered:
        score.cited_flags = cited_flags_right(reply)
    return score


def category_totals(scores: list[ItemScore]) -> dict[str, Any]:
    """Counts over one category's items (or all of them)."""
    answered = [s for s in scores if s.outcome == "answered"]
    conflicts = [s for s in scores if s.flagged is not None]
    whens = [s for s in scores if s.dated is not None]
    return {
        "n": len(scores),
        "correct": sum(s.correct for s in scores),
        "answered": len(answered),
        "refused": sum(s.outcome == "refused" for s in scores),
        "errors": sum(s.outcome == "error" for s in scores),
        "wrong_answers": sum(s.expect == "refuse" and s.outcome == "answered" for s in scores),
        "wrong_refusals": sum(s.expect == "answer" and s.outcome == "refused" for s in scores),
        "headline_dateline": sum(s.headline_dateline for s in scores),
        "byline_caption": sum(s.byline_caption for s in scores),
        "number_mismatches": sum(s.number_mismatches for s in scores),
        "conflicts": len(conflicts),
        "flagged": sum(bool(s.flagged) for s in conflicts),
        "whens": len(whens),
        "dated": sum(bool(s.dated) for s in whens),
        "dated_correct": sum(bool(s.dated) and s.correct for s in whens),
        "cited_flags": sum(bool(s.cited_flags) for s in answered),
    }


# --- article metadata ------------------------------------------------------------------------


def metadata_rows(labels: list[ArticleLabels], indexed: list[dict[str, Any]]) -> list[dict]:
    """Per article: the outlet and date `bot sources` shows against the labelled ones."""
    by_file = {Path(str(row.get("path", ""))).name: row for row in indexed}
    rows = []
    for label in labels:
        row = by_file.get(label.file, {})
        got_outlet, got_date = str(row.get("source") or ""), str(row.get("published") or "")
        rows.append(
            {
                "file": label.file,
                "format": Path(label.file).suffix.lstrip("."),
                "outlet": label.outlet,
                "outlet_got": got_outlet,
                "outlet_ok": got_outlet.casefold() == label.outlet.casefold()
                if label.outlet
                else None,
                "published": label.published,
                "published_got": got_date,
                "published_ok": _same_day(label.published, got_date) if label.published else None,
            }
        )
    return rows


def _same_day(labelled: str, got: str) -> bool:
    """`got` (ISO) is the labelled day; a `--MM-DD` label checks month and day only."""
    if labelled.startswith("--"):
        return got[4:10] == labelled[1:]
    return got[:10] == labelled
