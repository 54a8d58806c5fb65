"""The `bot` command: parse arguments, call one library function, print its result.

Errors: every `BotError` becomes one line on stderr and exit code 1, in `main()` and nowhere else;
every `BotWarning` becomes one `warning:` line on stderr, also set up there.
Heavy libraries (Chroma, onnxruntime, langchain, openai) are imported inside the commands, so that
`bot --help` stays fast; tests/test_cli_startup.py checks it.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.core.errors import BotError, BotNotice, BotWarning
from bot.core.secrets import install_log_redaction, redact

_STARTED = time.perf_counter()  # `ask --timings` reports the time since this point, stage by stage

app = typer.Typer(
    name="bot",
    help="Cited answers and summaries from a folder of news articles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _stdout_console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


class _BarProgress:
    """The `Progress` of ingest and summarise: a rich progress bar on stderr when it is a terminal;
    one-line notes otherwise."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self.console = _stderr_console()
        self._bar: Any = None
        self._task: Any = None
        self._total = 0

    def start(self, total: int) -> None:
        self._total = total
        if not self.enabled or total == 0:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(self.label, total=total)

    def more(self, n: int) -> None:
        if self._bar is None:
            self.start(self._total + n)
        else:
            self._total += n
            self._bar.update(self._task, total=self._total)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def note(self, message: str) -> None:
        self.console.print(message, markup=False)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _print_json(data: Any) -> None:
    from bot.ui.render import to_json_text

    sys.stdout.write(to_json_text(data) + "\n")


@app.command()
def ingest(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files, folders (recursively), or http(s) URLs of pages or feeds. "
            "Default: the bundled seed articles."
        ),
    ] = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Delete the index and build it again from PATHS.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Index articles (.txt .md .html .json .jsonl, web pages, feeds), in step with their files."""
    from bot.app.ingest import ingest_paths
    from bot.sources.web.urls import looks_like_url

    urls = [p for p in paths or [] if looks_like_url(p)]
    files = [Path(p) for p in paths or [] if not looks_like_url(p)]
    web = None
    if urls:
        from bot.app.web_ingest import WebIngest
        from bot.core.settings import get_settings

        web = WebIngest(get_settings(), urls=urls)
    progress = _BarProgress("Indexing", enabled=not as_json)
    report = ingest_paths(files or None, rebuild=rebuild, progress=progress, web=web)
    _show_report(report, as_json)


def _show_report(report: Any, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """An ingest report as JSON, or as one line per problem and a count line; exit 2 on a
    failure."""
    from bot.core.text import one_line, safe_path

    if as_json:
        _print_json({**report.to_json(), **(extra or {})})
    else:
        err = _stderr_console()
        for item in report.warnings:
            err.print(
                f"warning: {safe_path(item['path'])}: {one_line(item['warning'])}",
                markup=False,
                soft_wrap=True,  # one line per problem, however long: greppable, not re-wrapped
            )
        for item in report.errors:
            err.print(
                f"failed: {safe_path(item['path'])}: {one_line(item['error'])}",
                markup=False,
                soft_wrap=True,
            )
        print(
            f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.removed} removed, {report.failed} failed; "
            f"{report.chunks_embedded} chunks embedded in {report.seconds:.1f}s"
        )
    if report.failed:
        raise typer.Exit(2)


feeds_app = typer.Typer(
    help="The feeds `bot update` follows.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(feeds_app, name="feeds")


@feeds_app.command("add")
def feeds_add(
    url: Annotated[str, typer.Argument(help="The http(s) URL of an RSS, Atom or JSON feed.")],
    name: Annotated[str | None, typer.Option("--name", help="Default: the site's host.")] = None,
) -> None:
    """Follow a feed: `bot update` indexes its new and changed items."""
    from bot.app.feeds import add_feed

    feed = add_feed(url, name)
    print(f"Following {feed.name}: {feed.url}")


@feeds_app.command("list")
def feeds_list(as_json: JsonOpt = False) -> None:
    """The feeds followed."""
    from bot.app.feeds import load_feeds
    from bot.core.settings import get_settings
    from bot.core.text import one_line

    feeds = load_feeds(get_settings())
    if as_json:
        _print_json([f.to_json() for f in feeds])
        return
    for feed in feeds:
        print(f"{one_line(feed.name)}\t{one_line(feed.url)}\t{len(feed.seen)} items seen")
    if not feeds:
        print("No feeds followed yet: bot feeds add URL")


@feeds_app.command("remove")
def feeds_remove(
    which: Annotated[str, typer.Argument(help="The feed's URL or name.")],
) -> None:
    """Stop following a feed (its articles stay indexed; `bot forget` drops old ones)."""
    from bot.app.feeds import remove_feed

    feed = remove_feed(which)
    print(f"No longer following {feed.name}: {feed.url}")


@app.command()
def update(as_json: JsonOpt = False) -> None:
    """Fetch every followed feed and index its new and changed items."""
    from bot.app.web_ingest import update_feeds
    from bot.core.settings import get_settings

    started = time.perf_counter()
    progress = _BarProgress("Updating", enabled=not as_json)
    report, feeds = update_feeds(get_settings(), progress)
    report.seconds = report.seconds or time.perf_counter() - started
    if not as_json:
        for feed in feeds:
            print(
                f"{feed.name}: {feed.status}; {feed.new} new, {feed.updated} updated, "
                f"{feed.unchanged} unchanged, {feed.failed} failed"
            )
    _show_report(report, as_json, {"feeds": [f.to_json() for f in feeds]})


@app.command()
def forget(
    before: Annotated[
        str, typer.Option("--before", help="Drop web articles published before this ISO date.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Drop old web articles on purpose (feeds are an archive: nothing else drops them)."""
    from bot.app.ingest import ingest_paths
    from bot.app.web_ingest import ForgetBefore
    from bot.core.dates import parse_date_bound

    parse_date_bound(before, end=False)  # a bad date is one line before anything is opened
    task = ForgetBefore(before)
    report = ingest_paths(None, progress=_BarProgress("Forgetting", enabled=False), web=task)
    _show_report(report, as_json)


@app.command()
def sources(as_json: JsonOpt = False) -> None:
    """List the indexed articles."""
    from bot.app.ingest import list_sources
    from bot.ui.render import render_sources_table

    rows = list_sources()
    if as_json:
        _print_json(rows)
        return
    render_sources_table(rows, _stdout_console())


LlmOpt = Annotated[
    str | None,
    typer.Option("--llm", help="auto | openai | local | extractive (default: BOT_LLM)."),
]
KOpt = Annotated[int | None, typer.Option("--k", min=1, max=50, help="Passages to retrieve.")]
SourceOpt = Annotated[str | None, typer.Option("--source", help="Only articles from this outlet.")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="Published on or after (ISO date).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Published on or before (ISO date).")]
AllSourcesOpt = Annotated[
    bool,
    typer.Option("--all-sources", help="List every retrieved passage, not only the cited ones."),
]


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    *,
    k: KOpt = None,
    source: SourceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    llm: LlmOpt = None,
    all_sources: AllSourcesOpt = False,
    as_json: JsonOpt = False,
    timings: Annotated[
        bool,
        typer.Option("--timings", hidden=True, help="Print stage timings as JSON on stderr."),
    ] = False,
) -> None:
    """Answer a question from the articles, citing a checked passage for every claim."""
    command_started = time.perf_counter()
    from bot.app.ask import AskOptions, answer_question
    from bot.ui.render import StreamPane, render_answer, to_json

    out = _stdout_console()
    err = _stderr_console()
    options = AskOptions(k=k, source=source, since=since, until=until, llm=llm)
    setup_ms = (time.perf_counter() - command_started) * 1000

    def notify(message: str) -> None:
        err.print(message, markup=False)

    with StreamPane(out, enabled=not as_json) as view:
        result = answer_question(question, options, on_delta=view.on_delta, notify=notify)
    render_started = time.perf_counter()
    if as_json:
        sys.stdout.write(to_json(result) + "\n")
    else:
        render_answer(result, out, all_sources=all_sources)
    if timings:  # for bench/ask.py: everything after bot.ui.cli started, stage by stage
        stages = {"cli": (command_started - _STARTED) * 1000, "setup": setup_ms}
        stages.update(result.timings_ms)
        stages["render"] = (time.perf_counter() - render_started) * 1000
        stages["total"] = (time.perf_counter() - _STARTED) * 1000
        sys.stderr.write(json.dumps({"timings_ms": stages}) + "\n")


@app.command()
def summarise(
    target: Annotated[
        str | None,
        typer.Argument(
            help="An indexed file path or article id (or a unique id prefix): summarise that "
            "article. Default: every indexed article that passes the filters."
        ),
    ] = None,
    *,
    topic: Annotated[
        str | None,
        typer.Option("--topic", help="A focused summary of the passages retrieved for this topic."),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source", help="Only articles from this outlet (a path or article id: that article)."
        ),
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    length: Annotated[str, typer.Option("--length", help="short | medium | long.")] = "medium",
    llm: LlmOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Summarise articles with a checked citation on every sentence.

    Map-reduce: cited notes per batch of passages, merged (hierarchically when they do not fit
    the model's context). A multi-article summary reads the first BOT_SUMMARY_CHUNKS_PER_ARTICLE
    chunks of each article; in extractive mode its first 20 sentences at most, and about 1,200
    sentences in all, shared evenly among the articles.
    """
    from bot.app.summarise import SummariseOptions
    from bot.app.summarise import summarise as run_summary
    from bot.ui.render import StreamPane, render_summary, to_json

    out = _stdout_console()
    err = _stderr_console()
    options = SummariseOptions(
        target=target,
        source=source,
        topic=topic,
        since=since,
        until=until,
        length=length,
        llm=llm,
    )
    progress = _BarProgress("Summarising", enabled=not as_json)
    with StreamPane(out, enabled=not as_json) as view:
        result = run_summary(
            options,
            on_delta=view.on_delta,
            notify=lambda m: err.print(m, markup=False),
            progress=progress,
        )
    if as_json:
        sys.stdout.write(to_json(result) + "\n")
    else:
        render_summary(result, out)


@app.command()
def chat(
    *,
    k: KOpt = None,
    source: SourceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    llm: LlmOpt = None,
    all_sources: AllSourcesOpt = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per answer (JSON lines).")
    ] = False,
) -> None:
    """Chat about the articles: follow-up questions, cited answers, /help for commands.

    At a terminal: line editing and history, Ctrl-C cancels an answer, Ctrl-D leaves. Otherwise
    it reads one question or command per line and exits at the end of the input.
    """
    from bot.app.ask import AskOptions
    from bot.ui.repl import run_chat

    options = AskOptions(k=k, source=source, since=since, until=until, llm=llm)
    code = run_chat(options, as_json=as_json, all_sources=all_sources)
    if code:
        raise typer.Exit(code)


@app.command()
def serve(
    *,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; beyond 127.0.0.1 needs BOT_SERVE_TOKEN.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve the web page (open http://HOST:PORT/) and the HTTP API (/docs) until Ctrl-C."""
    from bot.serve.run import serve as run_server

    run_server(host, port)


def main() -> None:
    """Entry point (the `bot` command): run the app; turn a BotError into one line on stderr and
    exit 1."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    install_log_redaction()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                app()
            finally:
                _warn_unread_settings()
    except BotError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted", code=130)
    except Exception as exc:  # a bug: still one line, with a way to get the traceback
        if os.environ.get("BOT_DEBUG"):  # the traceback, as Python prints it, minus any secret
            import traceback

            sys.stderr.write(redact("".join(traceback.format_exception(exc))))
            sys.exit(1)
        _fail(f"unexpected {type(exc).__name__}: {exc} (set BOT_DEBUG=1 for the traceback)")


run = main  # the name the `bot` script imports (pyproject.toml, [project.scripts])

_python_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
    """A BotWarning as one `warning:` line on stderr, a BotNotice as one plain line; other
    warnings as Python shows them."""
    if issubclass(category, BotWarning):
        sys.stderr.write(f"warning: {' '.join(redact(str(message)).split())}\n")
    elif issubclass(category, BotNotice):
        sys.stderr.write(f"{' '.join(redact(str(message)).split())}\n")
        sys.stderr.flush()
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


def _warn_unread_settings() -> None:
    """After a command that did not fail: a warning per `.env` line that meant to set a setting
    the command never used (a command that used it failed with that line named)."""
    if not isinstance(sys.exc_info()[1], (SystemExit, type(None))):
        return  # an error line is all a failed command prints
    from bot.core.settings import unread_settings_warnings

    for line in unread_settings_warnings():
        warnings.warn(line, BotWarning, stacklevel=2)


def _fail(message: str, code: int = 1) -> None:
    first_line = " ".join(redact(message).split())  # one line, whatever the message held
    sys.stderr.write(f"error: {first_line}\n")
    sys.exit(code)


if __name__ == "__main__":
    main()
