"""`bot chat`'s terminal front end: commands, the REPL, Ctrl-C cancellation and stdin line mode.

The conversation itself (rewrites, memory, answering) is `bot.app.chat.Chat`; this module reads
lines,
dispatches `/commands` and prints what `Chat` returns, as text (rich) or as JSON lines.

The REPL (prompt_toolkit, terminal only) runs each turn in a worker thread, so Ctrl-C cancels the
answer at once: the turn's callbacks raise `AnswerCancelled` from then on, which stops a streaming
model at its next token and prints nothing more. When standard input is not a terminal, lines are
read one by one, without prompt_toolkit.

Only the `chat` command imports this module, so rich is imported at the top; prompt_toolkit is
imported by the REPL alone.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from bot.app.chat import Chat
from bot.core.errors import BotError
from bot.core.secrets import redact
from bot.core.text import sanitize
from bot.core.types import AnswerResult
from bot.ui.render import (
    AnswerCancelled,
    StreamPane,
    render_answer,
    render_sources,
    to_json_line,
)

if TYPE_CHECKING:
    from bot.app.ask import AskOptions
    from bot.app.chat import ChatReply, Rewrite

HISTORY_FILE = "chat_history"
PROMPT = "bot> "

COMMANDS: dict[str, str] = {
    "/help": "this list",
    "/sources": "every passage retrieved for the last answer",
    "/summarise [topic]": "a cited summary of every article, or of a topic",
    "/reset": "forget the conversation (follow-ups start afresh)",
    "/exit": "leave (also /quit or Ctrl-D)",
}
_COMMAND_NAMES = ("/help", "/sources", "/summarise", "/summarize", "/reset", "/exit", "/quit")


# --- commands -------------------------------------------------------------------------------------


def parse_command(line: str) -> tuple[str, str] | None:
    """("/name", "argument") for a line starting with "/", else None."""
    text = line.strip()
    if not text.startswith("/"):
        return None
    name, _, argument = text.partition(" ")
    return name.lower(), argument.strip()


def help_lines() -> list[tuple[str, str]]:
    return list(COMMANDS.items())


# --- one turn at a time ---------------------------------------------------------------------------


class _CancelProgress:
    """The `Progress` of /summarise: silent, it stops the run once the turn is cancelled."""

    def __init__(self, pane: StreamPane) -> None:
        self.pane = pane

    def start(self, total: int) -> None:
        self.pane.check()

    def more(self, n: int) -> None:
        self.pane.check()

    def advance(self, n: int = 1) -> None:
        self.pane.check()

    def note(self, message: str) -> None:
        self.pane.check()

    def stop(self) -> None: ...


class _Outcome:
    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.cancelled = False
        self.done = threading.Event()


class TurnRunner:
    """Runs a turn in a worker thread; Ctrl-C (KeyboardInterrupt in the waiting main thread)
    cancels it and returns at once."""

    def __init__(self) -> None:
        self._workers: list[threading.Thread] = []

    def run(self, job: Callable[[], Any], on_cancel: Callable[[], None]) -> _Outcome:
        outcome = _Outcome()

        def work() -> None:
            try:
                outcome.value = job()
            except AnswerCancelled:
                outcome.cancelled = True
            except BaseException as exc:  # handed to the main thread
                outcome.error = exc
            finally:
                outcome.done.set()

        worker = threading.Thread(target=work, name="bot-chat-turn", daemon=True)
        self._workers = [w for w in self._workers if w.is_alive()] + [worker]
        worker.start()
        try:
            while not outcome.done.wait(0.1):
                pass
        except KeyboardInterrupt:
            outcome.cancelled = True
            on_cancel()
        return outcome

    def background(self, job: Callable[[], Any]) -> None:
        """Run `job` in a worker thread, ignoring its errors (a turn will report them)."""

        def work() -> None:
            with contextlib.suppress(Exception):
                job()

        worker = threading.Thread(target=work, name="bot-chat-warm-up", daemon=True)
        self._workers.append(worker)
        worker.start()

    def busy(self) -> bool:
        return any(w.is_alive() for w in self._workers)

    def join(self, timeout: float | None = None) -> None:
        """Wait for cancelled turns to stop: a model must not be running while the process exits
        (llama.cpp frees it at exit). Ctrl-C interrupts the wait."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in self._workers:
            while worker.is_alive() and (deadline is None or time.monotonic() < deadline):
                worker.join(0.2)


class ChatFrontend:
    """Handles one line at a time and prints the results, as text (rich) or as JSON lines."""

    def __init__(
        self,
        chat: Chat,
        console: Console,
        *,
        as_json: bool = False,
        all_sources: bool = False,
        interactive: bool = False,
        err: Console | None = None,
        out: IO[str] | None = None,
    ) -> None:
        self.chat = chat
        self.console = console
        self.err = err or Console(stderr=True, highlight=False)
        self.out = out or sys.stdout
        self.as_json = as_json
        self.all_sources = all_sources
        self.interactive = interactive
        self.runner = TurnRunner()
        self.failures = 0

    # -- dispatch --------------------------------------------------------------------------------

    def handle(self, line: str) -> bool:
        """Act on one line; False when the user asked to leave."""
        line = sanitize(line).strip()
        if not line:
            return True
        command = parse_command(line)
        try:
            if command is None:
                self._answer(line)
                return True
            name, argument = command
            if name in ("/exit", "/quit"):
                return False
            if name == "/help":
                self._help()
            elif name == "/sources":
                self._sources()
            elif name == "/reset":
                self.chat.session.reset()
                self._info("Conversation cleared.", {"command": "reset"})
            elif name in ("/summarise", "/summarize"):
                self._summarise(argument)
            else:
                raise BotError(f"Unknown command {name[:40]}: type /help for the commands")
        except BotError as exc:
            self._error(str(exc), line)
        return True

    # -- commands --------------------------------------------------------------------------------

    def _help(self) -> None:
        if self.as_json:
            self._emit({"command": "help", "commands": dict(help_lines())})
            return
        self.console.print(Text("Ask a question, or a follow-up about the last answers.", "bold"))
        for usage, what in help_lines():
            self.console.print(Text.assemble((f"  {usage:<20}", "cyan"), what))

    def _sources(self) -> None:
        result = self.chat.session.last_result
        if self.as_json:
            passages = [p.to_json() for p in result.passages] if result else []
            self._emit({"command": "sources", "passages": passages})
            return
        if result is None or not result.passages:
            self.console.print(Text("No sources yet: ask a question first.", style="dim"))
            return
        heading = "Closest passages:" if result.refused else "Sources"
        render_sources(result.passages, self.console, heading=heading)

    def _summarise(self, topic: str) -> None:
        def job(pane: StreamPane) -> AnswerResult:
            return self.chat.summarise(
                topic or None, on_delta=pane.on_delta, progress=_CancelProgress(pane)
            )

        result = self._run(job)
        if result is None:
            return
        if self.as_json:
            data = result.to_json()
            data["command"] = "summarise"
            self._emit(data)
        else:
            from bot.ui.render import render_summary

            render_summary(result, self.console)

    # -- questions -------------------------------------------------------------------------------

    def _answer(self, line: str) -> None:
        if not self.interactive and not self.as_json:
            self.console.print(Text(f"» {sanitize(line)}", style="bold"))

        def job(pane: StreamPane) -> ChatReply:
            def show(rewrite: Rewrite) -> None:
                if not self.as_json:
                    pane.print(Text(f"↳ {sanitize(rewrite.question)}", style="dim"))

            return self.chat.ask(
                line, on_delta=pane.on_delta, on_rewrite=show, checkpoint=pane.check, remember=False
            )

        reply = self._run(job)
        if reply is None:
            return
        self.chat.remember(reply)
        if self.as_json:
            self._emit(reply.to_json())
        else:
            render_answer(
                reply.result,
                self.console,
                all_sources=self.all_sources,
                more_hint="/sources lists them",
            )

    def _run(self, job: Callable[[StreamPane], Any]) -> Any:
        """Run a turn: in a cancellable worker thread at a terminal, else right here."""
        pane = StreamPane(self.console, enabled=not self.as_json, redirect=False)
        if not self.interactive:
            try:
                return job(pane)
            finally:
                pane.stop()
        outcome = self.runner.run(lambda: job(pane), on_cancel=pane.cancel)
        pane.stop()
        if outcome.cancelled:
            self.note_cancelled()
            return None
        if outcome.error is not None:
            raise outcome.error
        return outcome.value

    # -- output ----------------------------------------------------------------------------------

    def _emit(self, data: Any) -> None:
        self.out.write(to_json_line(data) + "\n")
        self.out.flush()

    def note_cancelled(self) -> None:
        self.console.print(Text("(cancelled)", style="dim yellow"))

    def _info(self, text: str, data: dict[str, Any]) -> None:
        if self.as_json:
            self._emit(data)
        else:
            self.console.print(Text(text, style="dim"))

    def _error(self, message: str, line: str) -> None:
        self.failures += 1
        one_line = " ".join(redact(message).split())
        if self.as_json:
            self._emit({"asked": line, "error": one_line})
        self.err.print(f"error: {one_line}", markup=False, highlight=False, soft_wrap=True)


# --- the loops ------------------------------------------------------------------------------------


def read_lines(stream: IO[str]) -> Iterator[str]:
    """Lines of `stream`, bytes decoded as UTF-8 with bad bytes replaced (never raises)."""
    raw = getattr(stream, "buffer", None)
    if raw is not None:
        for data in raw:
            yield data.decode("utf-8", "replace").rstrip("\r\n")
        return
    for line in stream:
        yield line.rstrip("\r\n")


def run_lines(frontend: ChatFrontend, lines: Iterable[str]) -> int:
    """Scripted use: one question or command per line, until EOF or /exit. A line that fails
    prints its one-line error (and a JSON object with "error" under --json) and the next line
    goes on; the exit code is 0."""
    for line in lines:
        if not frontend.handle(line):
            break
    return 0


# Bytes prompt_toolkit's history file adds to each entry: a blank line, a timestamp comment and a
# '+' per line (for the space a failed write needed).
HISTORY_ENTRY_OVERHEAD = 40


def history_problem(exc: OSError, data_dir: Path, needed: int) -> str:
    """The one line that says why the chat history could not be written (disk full first)."""
    from bot.core.diskspace import disk_full_message, says_disk_full

    where = "keeping it in memory for this session"
    if says_disk_full(exc):
        return f"{disk_full_message(data_dir, needed, 'the chat history')}; {where}"
    reason = (exc.strerror or type(exc).__name__).lower()
    return f"Cannot write the chat history in {data_dir}: {reason}; {where}"


def prompt_history(data_dir: Path, report: Callable[[str], None]) -> Any:
    """prompt_toolkit history in the data dir; in memory when it cannot be written there, which
    `report` is told once, in one line."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    class ReportingFileHistory(FileHistory):
        failed = False

        def store_string(self, string: str) -> None:
            # The disk filled up or the dir became read-only: say so once, keep chatting.
            if self.failed:
                return
            try:
                super().store_string(string)
            except OSError as exc:
                self.failed = True
                needed = len(string.encode("utf-8", "replace")) + HISTORY_ENTRY_OVERHEAD
                report(history_problem(exc, data_dir, needed))

    path = data_dir / HISTORY_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as exc:
        report(history_problem(exc, data_dir, HISTORY_ENTRY_OVERHEAD))
        return InMemoryHistory()
    return ReportingFileHistory(str(path))


def _warn(problems: list[str]) -> None:
    """Print (as warnings) and forget the problems reported meanwhile: between prompts, never
    while prompt_toolkit draws one."""
    import warnings

    from bot.core.errors import BotWarning

    for line in problems:
        warnings.warn(line, BotWarning, stacklevel=2)
    problems.clear()


def _completer() -> Any:
    from prompt_toolkit.completion import Completer, Completion

    class CommandCompleter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterator[Any]:
            text = document.text_before_cursor
            if not text.startswith("/") or " " in text:
                return
            for name in _COMMAND_NAMES:
                if name.startswith(text.lower()):
                    yield Completion(name, start_position=-len(text))

    return CommandCompleter()


def run_repl(frontend: ChatFrontend, data_dir: Path) -> int:
    """The terminal REPL: line editing, history, Ctrl-C cancels, Ctrl-D or /exit leaves."""
    from prompt_toolkit import PromptSession

    problems: list[str] = []
    session: Any = PromptSession(
        history=prompt_history(data_dir, problems.append),
        completer=_completer(),
        complete_while_typing=False,
    )
    chat = frontend.chat
    frontend.console.print(
        Text.assemble(
            ("bot chat", "bold"),
            (f" · {chat.provider.name}/{chat.provider.model}", "dim"),
            " · ask about the articles; /help for commands, Ctrl-D to leave",
        )
    )
    frontend.runner.background(chat.warm_up)
    _warn(problems)
    try:
        while True:
            try:
                line = session.prompt(PROMPT)
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt: a fresh prompt
            except EOFError:
                break
            _warn(problems)
            try:
                if not frontend.handle(line):
                    break
            except KeyboardInterrupt:  # while printing an answer
                frontend.note_cancelled()
    finally:
        _wait_for_cancelled_turns(frontend)
    return 0


def _wait_for_cancelled_turns(frontend: ChatFrontend) -> None:
    """A cancelled answer still computing (e.g. a local model reading its prompt) is waited for;
    Ctrl-C quits at once (the worker is a daemon thread, and the model it uses is not freed at
    exit while it runs)."""
    if not frontend.runner.busy():
        return
    frontend.console.print(
        Text("Waiting for the cancelled answer to stop… (Ctrl-C to quit now)", "dim")
    )
    try:
        frontend.runner.join()
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def run_chat(
    options: AskOptions | None = None, *, as_json: bool = False, all_sources: bool = False
) -> int:
    """`bot chat`: the REPL at a terminal, one question per line otherwise; `all_sources` lists
    every retrieved passage under an answer, not only the cited ones. Returns the exit code."""
    err = Console(stderr=True, highlight=False)
    console = Console(highlight=False)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    chat = Chat(options, notify=lambda message: err.print(message, markup=False))
    frontend = ChatFrontend(
        chat, console, as_json=as_json, all_sources=all_sources, interactive=interactive, err=err
    )
    if interactive:
        return run_repl(frontend, chat.settings.data_dir)
    return run_lines(frontend, read_lines(sys.stdin))
