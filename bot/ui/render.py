"""Terminal output (rich) and JSON for answers and sources.

Every piece of article- or model-derived text goes through `sanitize` before it reaches the
terminal, and is handed to rich as `Text` (never as a markup string). Model answers are rendered as
markdown after `defuse_markdown`: links become `text (url)`, images their alt text and URL, raw
HTML and entities are shown as typed, and no hyperlink escape codes are emitted. rich is
imported inside the functions: `import bot.ui.render` stays cheap for `bot --help`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from bot.core.dates import shown_date
from bot.core.markers import MARKER_RE
from bot.core.secrets import redact
from bot.core.text import clip, one_line, sanitize
from bot.core.types import (
    NO_ANSWER,
    AnswerResult,
    CheckedSentence,
    Disagreement,
    Passage,
    SummaryResult,
)

if TYPE_CHECKING:
    from rich.console import Console

QUOTE_CHARS = 300
UNSUPPORTED_FLAG = "⚠ unsupported"

_JSON_UNSAFE_RE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]")
_WS_RE = re.compile(r"\s+")

_DEEP_NESTING_RE = re.compile(r"[ \t]*(?:(?:[>*+-]|\d{1,9}[.)])[ \t]*){6,}")
_FENCE_RE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
_CODE_SPAN_RE = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)")
_LINK_RE = re.compile(
    r"(?P<bang>!?)\[(?P<text>[^\[\]\n]*)\]\(\s*<?(?P<url>[^\s()<>]*(?:\([^\s()<>]*\)[^\s()<>]*)*)>?"
    r"(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'|\([^)\n]*\)))?\s*\)"
)
_AUTOLINK_RE = re.compile(r"<((?:https?|ftp|mailto|file):[^\s<>]*)>", re.IGNORECASE)
_MD_SPECIAL = str.maketrans({"\\": "\\\\", "[": "\\[", "]": "\\]", "<": "\\<", "&": "\\&"})
# Sentinels that cannot survive sanitize, so they only mark our own insertions.
_FLAG_SENTINEL = "\x00"
_ESCAPE_NEXT = "\x01"
# Anything markdown could read as syntax: emphasis, code, headings, quotes, HTML, entities,
# escapes, tables, links, list markers, setext underlines, indented code, hard line breaks.
_MARKDOWN_SYNTAX_RE = re.compile(
    r"[*_`#<>&\\|~]|\]\(|!\[|^[ \t]*(?:[-+]|\d{1,9}[.)])(?:[ \t]|$)|^[ \t]*[-=]{2,}[ \t]*$"
    r"|^(?: {4}|\t)|  +$",
    re.MULTILINE,
)
_PARAGRAPH_BREAK_RE = re.compile(r"\n[ \t]*\n")
_AFTER_SENTENCE_RE = re.compile(r"(?:\s*\[\d+\])*[\"'”’)]*[.!?…]*[\"'”’)]*(?:\s*\[\d+\])*")


# --- markdown -------------------------------------------------------------------------------------


def _defuse_inline(text: str) -> str:
    """Outside code: links and images to plain text, then markdown/HTML specials escaped."""

    def link(match: re.Match[str]) -> str:
        label, url = match.group("text").strip(), match.group("url")
        if match.group("bang"):
            return f"[image: {label}] ({url})" if label else f"[image] ({url})"
        if not url or label == url:
            return label or url
        return f"{label} ({url})" if label else url

    def plain(part: str) -> str:
        return _AUTOLINK_RE.sub(r"\1", _LINK_RE.sub(link, part)).translate(_MD_SPECIAL)

    pieces: list[str] = []
    cursor = 0
    for match in _CODE_SPAN_RE.finditer(text):
        pieces.append(plain(text[cursor : match.start()]))
        pieces.append(match.group(0))  # code spans show their content literally anyway
        cursor = match.end()
    pieces.append(plain(text[cursor:]))
    return "".join(pieces)


def defuse_markdown(text: str) -> str:
    """Sanitized markdown in which links, images, raw HTML, entities and reference definitions are
    plain text; emphasis, lists, headings and code keep working."""
    return _defuse(sanitize(text))


def _defuse(text: str) -> str:
    out: list[str] = []
    fence: str | None = None
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            out.append(_defuse_inline("\n".join(paragraph)))
            paragraph.clear()

    for line in text.split("\n"):
        match = _FENCE_RE.match(line)
        if fence is None and match:
            flush()
            fence = match.group(1)[0] * len(match.group(1))
            out.append(line)
        elif fence is not None:
            out.append(line)
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
        elif _DEEP_NESTING_RE.match(line):
            # rich drops content nested too deep: escape the first marker, the line becomes text
            paragraph.append(_ESCAPE_NEXT + line.lstrip())
        else:
            paragraph.append(line)
    flush()
    return "\n".join(out).replace(_ESCAPE_NEXT, "\\")


def _mark_unsupported(text: str, sentences: Sequence[CheckedSentence]) -> tuple[str, list[str]]:
    """`text` with a sentinel after each unsupported sentence, and those it could not find."""
    cursor = 0
    inserts: list[int] = []
    missing: list[str] = []
    for sentence in sentences:
        body = sanitize(sentence.text).strip().rstrip(".!?…").strip()
        found = text.find(body, cursor) if body else -1
        if found < 0:
            if not sentence.supported and body:
                missing.append(one_line(sentence.text))
            continue
        end = found + len(body)
        tail = _AFTER_SENTENCE_RE.match(text, end)
        cursor = tail.end() if tail else end
        if not sentence.supported:
            inserts.append(cursor)
    for position in reversed(inserts):
        text = text[:position] + _FLAG_SENTINEL + text[position:]
    return text, missing


def _plain_paragraphs(text: str) -> list[str] | None:
    """The paragraphs of `text` as markdown would show them (lines joined), or None when markdown
    could read any of it as syntax. Citation markers like [3] are plain text to markdown."""
    if _MARKDOWN_SYNTAX_RE.search(text):
        return None
    uncited = MARKER_RE.sub("", text)
    if "[" in uncited or "]" in uncited:
        return None
    paragraphs = (
        " ".join(line.strip() for line in block.split("\n") if line.strip())
        for block in _PARAGRAPH_BREAK_RE.split(text)
    )
    return [p for p in paragraphs if p]


def render_answer_text(
    text: str, console: Console, *, sentences: Sequence[CheckedSentence] = ()
) -> None:
    """The answer as defused markdown, unsupported sentences flagged. Also usable while streaming
    (call again with the text so far, e.g. inside rich.live.Live).

    Most answers are plain sentences with citations: those are printed as rich Text, which looks
    the same and spares importing rich.markdown on every `bot ask`."""
    from rich.text import Text

    clean = sanitize(text)
    marked, missing = _mark_unsupported(clean, sentences)
    paragraphs = _plain_paragraphs(marked)
    if paragraphs is not None:
        out = Text()
        for index, paragraph in enumerate(paragraphs):
            if index:
                out.append("\n\n")
            for position, piece in enumerate(paragraph.split(_FLAG_SENTINEL)):
                if position:
                    out.append(" ")
                    out.append(UNSUPPORTED_FLAG, style="italic")
                out.append(piece)
        console.print(out)
    else:
        _render_markdown(marked, console)
    for sentence in missing:
        console.print(Text.assemble((f"{UNSUPPORTED_FLAG}: ", "yellow"), sentence))


def _render_markdown(marked: str, console: Console) -> None:
    from rich.markdown import Markdown
    from rich.segment import Segments
    from rich.text import Text

    markdown = _defuse(marked).replace(_FLAG_SENTINEL, f" *{UNSUPPORTED_FLAG}*")
    try:
        segments = list(console.render(Markdown(markdown, hyperlinks=False), console.options))
        console.print(Segments(segments))
    except Exception:  # noqa: BLE001 - e.g. pathological nesting; plain text is always safe
        console.print(Text(marked.replace(_FLAG_SENTINEL, f" ({UNSUPPORTED_FLAG})")))


# --- streaming ------------------------------------------------------------------------------------


class AnswerCancelled(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """Raised inside a cancelled answer's callbacks. A BaseException, so that provider code that
    maps `Exception`s to BotErrors lets it through and the answer simply stops."""


class StreamPane:
    """The answer as it streams, dim, in a live area of the terminal (nothing when the console is
    not a terminal), until the checked answer replaces it: `stop()` or the end of a `with`.
    After `cancel()` nothing is drawn any more and every callback raises AnswerCancelled.
    `redirect`: other output to stdout/stderr meanwhile is printed above the live area."""

    def __init__(self, console: Console, enabled: bool, *, redirect: bool = True) -> None:
        import threading

        self.console = console
        self.enabled = enabled and console.is_terminal
        self.redirect = redirect
        self.text = ""
        self._live: Any = None
        self._lock = threading.Lock()
        self._cancelled = threading.Event()

    def __enter__(self) -> StreamPane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def check(self) -> None:
        if self._cancelled.is_set():
            raise AnswerCancelled

    def on_delta(self, delta: str) -> None:
        self.check()
        if not self.enabled:
            return
        from rich.live import Live
        from rich.text import Text

        with self._lock:
            self.check()
            self.text += delta
            view = Text(sanitize(redact(self.text)), style="dim")
            if self._live is None:
                self._live = Live(
                    view,
                    console=self.console,
                    transient=True,
                    refresh_per_second=12,
                    redirect_stdout=self.redirect,
                    redirect_stderr=self.redirect,
                )
                self._live.start()
            else:
                self._live.update(view)

    def print(self, renderable: Any) -> None:
        """Print (from any thread), unless cancelled."""
        with self._lock:
            self.check()
            (self._live.console if self._live is not None else self.console).print(renderable)

    def stop(self) -> None:
        with self._lock:
            if self._live is not None:
                self._live.stop()
                self._live = None

    def cancel(self) -> None:
        self._cancelled.set()
        self.stop()


# --- sources --------------------------------------------------------------------------------------


def render_sources(
    passages: Iterable[Passage], console: Console, *, heading: str = "Sources"
) -> None:
    """Numbered sources: title, outlet, date, `path:start-end`, URL and the quoted passage."""
    from rich.padding import Padding
    from rich.text import Text

    passages = list(passages)
    if not passages:
        return
    console.print(Text(heading, style="bold"))
    for passage in passages:
        meta = [
            one_line(passage.source),
            one_line(passage.author),
            shown_date(one_line(passage.published)) if passage.published else "date unknown",
        ]
        line = Text.assemble(
            (f"[{passage.n}] ", "bold cyan"),
            (one_line(passage.title) or "(untitled)", "bold"),
            " — " + " — ".join(m for m in meta if m),
        )
        console.print(line)
        where = f"{one_line(passage.path)}:{passage.start}-{passage.end}"
        url = one_line(passage.url)
        console.print(Padding(Text(where + (f"  {url}" if url else ""), style="dim"), (0, 0, 0, 4)))
        console.print(
            Padding(Text(f"“{clip(passage.text, QUOTE_CHARS)}”", style="italic"), (0, 0, 0, 4))
        )


def render_sources_table(rows: Sequence[dict[str, Any]], console: Console) -> None:
    """`bot sources`: the indexed articles (dicts from ingest.list_sources)."""
    from rich.table import Table
    from rich.text import Text

    if not rows:
        console.print(Text("No articles indexed yet. Run `bot ingest PATH`.", style="yellow"))
        return
    table = Table(show_lines=False, header_style="bold")
    for column in ("Published", "Outlet", "Author", "Title", "Chunks", "Path"):
        table.add_column(column, overflow="fold")
    for row in rows:
        title = one_line(row.get("title") or "") or "(untitled)"
        published = shown_date(row.get("published") or "")
        cells = [published, row.get("source"), row.get("author"), title]
        cells += [str(row.get("chunks", "")), row.get("path")]
        table.add_row(*(Text(one_line(cell or "")) for cell in cells))
    console.print(table)
    console.print(Text(f"{len(rows)} article(s)", style="dim"))


# --- the whole answer -----------------------------------------------------------------------------


def _footer(result: AnswerResult) -> str:
    parts = [f"{one_line(result.provider)}/{one_line(result.model)}".strip("/")]
    timings = dict(result.timings_ms or {})
    if timings:
        shown = [
            f"{one_line(k)} {v:.0f} ms" for k, v in timings.items() if isinstance(v, int | float)
        ]
        if "total" not in timings:
            total = sum(v for v in timings.values() if isinstance(v, int | float))
            shown.append(f"total {total:.0f} ms")
        parts.append(", ".join(shown))
    if result.usage:
        parts.append(", ".join(f"{one_line(k)} {v}" for k, v in result.usage.items()))
    return " · ".join(p for p in parts if p)


def disagreement_line(disagreement: Disagreement) -> str:
    """One line: the articles disagree about “X”: 16 [3] (2024-03-15); 14 [2] (2024-03-14)."""
    sides = "; ".join(
        f"{v.value} {''.join(f'[{n}]' for n in v.citations)}"
        + (f" ({shown_date(v.published)})" if v.published else "")
        for v in disagreement.values
    )
    return f"the articles disagree about “{disagreement.about}”: {sides}"


def render_answer(
    result: AnswerResult,
    console: Console,
    *,
    show_passages: bool = True,
    all_sources: bool = False,
    more_hint: str = "--all-sources lists them",
) -> None:
    """The checked answer, warnings, then the numbered sources and a footer. Sources are the
    passages the answer cites (all of them with `all_sources`); a refusal shows the closest
    passages. `more_hint` says how to see the passages left out."""
    from rich.text import Text

    no_answer = NO_ANSWER
    answer = sanitize(result.answer).strip()
    if result.refused or not answer:
        console.print(Text(no_answer, style="bold yellow"))
        if answer and answer.rstrip(".") != no_answer.rstrip("."):
            render_answer_text(answer, console)
    else:
        render_answer_text(answer, console, sentences=result.sentences)
        if any(not s.supported for s in result.sentences):
            console.print(
                Text(
                    f"{UNSUPPORTED_FLAG}: no cited passage clearly states this sentence; "
                    "check it against the sources.",
                    style="dim yellow",
                )
            )
        for sentence in result.sentences:
            part = one_line(sentence.unsupported_part or "") if not sentence.supported else ""
            if part:
                console.print(Text.assemble(("  no passage states: ", "dim yellow"), f"“{part}”"))
        if result.answer_date:
            console.print(Text.assemble(("Date: ", "bold"), date_line(result.answer_date)))

    warnings = [one_line(w) for w in result.warnings or [] if one_line(w)]
    dropped = sorted({n for n in result.dropped_citations or [] if isinstance(n, int)})
    if dropped and not any("removed citations" in w for w in warnings):
        shown = ", ".join(f"[{n}]" for n in dropped)
        warnings.insert(0, f"removed citations to passages that were not given: {shown}")
    for warning in warnings:
        console.print(Text.assemble(("warning: ", "bold yellow"), warning))
    for disagreement in result.disagreements or []:
        note = one_line(disagreement_line(disagreement))
        console.print(Text.assemble(("disagreement: ", "bold magenta"), note))

    if show_passages:
        console.print()
        if result.refused or not answer:
            if result.passages:
                render_sources(result.passages, console, heading="Closest passages:")
            else:
                console.print(Text("No passages matched.", style="dim"))
        else:
            _render_answer_sources(result.passages, console, all_sources, more_hint)
    footer = _footer(result)
    if footer:
        console.print(Text(footer, style="dim"))


def date_line(answer_date: dict[str, Any]) -> str:
    """Where a "when" answer's date comes from, in one line: "April 15 (stated in the text [2])"."""
    value = one_line(str(answer_date.get("value") or ""))
    n = answer_date.get("citation")
    cite = f" [{n}]" if isinstance(n, int) else ""
    said = one_line(str(answer_date.get("text") or ""))
    if answer_date.get("source") == "text":
        return f"{value} (stated in the text{cite})"
    if said:
        return f"{value} (“{said}”, counted from the article's publication date{cite})"
    return f"{value} (the article's publication date{cite}; the text gives no date)"


def _render_answer_sources(
    passages: Sequence[Passage], console: Console, all_sources: bool, more_hint: str
) -> None:
    """The cited passages (all with `all_sources`), and a dim line counting those left out."""
    from rich.text import Text

    shown = list(passages) if all_sources else [p for p in passages if p.cited]
    render_sources(shown, console)
    left_out = len(passages) - len(shown)
    if left_out:
        what = "passage was" if left_out == 1 else "passages were"
        note = f"{left_out} more {what} retrieved but not cited; {more_hint}."
        console.print(Text(note, style="dim"))


def summary_heading(result: SummaryResult) -> str:
    """One line on what a summary covers: scope or topic, articles, passages and LLM calls."""
    topic = one_line(result.topic or "")
    scope = one_line(result.scope)
    head = f"Summary of {scope}" if scope else "Summary"
    if topic:
        head += f", on: {topic}"
    parts = [head]
    articles, passages = result.articles, result.passages_considered
    if articles or passages:
        parts.append(
            f"{articles} article{'s' if articles != 1 else ''}, "
            f"{passages} passage{'s' if passages != 1 else ''} read"
        )
    calls = result.llm_calls
    if calls:
        parts.append(f"{calls} LLM call{'s' if calls != 1 else ''}")
    return " · ".join(parts)


def render_summary(result: SummaryResult, console: Console) -> None:
    """A summary: a dim heading saying what it covers, then the same layout as an answer."""
    from rich.text import Text

    console.print(Text(summary_heading(result), style="dim"))
    render_answer(result, console)


def to_json(result: AnswerResult) -> str:
    """`result.to_json()` as indented JSON, non-ASCII kept, but C1 controls, bidi controls, line
    separators and lone surrogates written as \\u escapes so the raw output is terminal-safe and
    encodable (json.loads gives back the exact strings)."""
    return _safe_json(result.to_json(), indent=2)


def to_json_text(data: Any) -> str:
    """JSON-able `data` (ingest reports, source lists), indented, terminal-safe like `to_json`."""
    return _safe_json(data, indent=2)


def to_json_line(data: Any) -> str:
    """`data` as one line of JSON (for JSON-lines output), terminal-safe like `to_json`."""
    return _safe_json(data, indent=None)


def _safe_json(data: Any, *, indent: int | None) -> str:
    text = redact(json.dumps(data, ensure_ascii=False, indent=indent))
    return _JSON_UNSAFE_RE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
