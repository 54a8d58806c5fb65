"""`bot chat`: a conversation over the articles, where follow-up questions get standalone rewrites.

Each turn:

1. The typed line is cleaned like an `ask` question (control characters never reach the terminal).
2. With a conversation behind it, the question is rewritten into a standalone one. An LLM provider
   gets `prompts/rewrite_question.txt`; its reply is validated (one line, short, still a question,
   keeps the question's content words, adds nothing the conversation does not contain, resolves
   "he"/"they"/... when the question has them). A rejected reply, or the extractive provider,
   gives the deterministic rewrite: a follow-up question plus the key words of the last user turn
   ("what did he tell Russian soldiers? (Zelensky, announce)").
3. The standalone question goes through `bot.ask.answer_question` with the session's provider and
   store, so the model and the index are opened once.

Memory is bounded: the last MAX_TURNS turns, at most MAX_HISTORY_CHARS characters, each answer kept
as its first MAX_ANSWER_CHARS characters without citation markers.

The REPL (prompt_toolkit, terminal only) runs each turn in a worker thread, so Ctrl-C cancels the
answer at once: the turn's callbacks raise `AnswerCancelled` from then on, which stops a streaming
model at its next token and prints nothing more. When standard input is not a terminal, lines are
read one by one, without prompt_toolkit.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from bot.errors import BotError
from bot.providers import Message
from bot.results import AnswerResult

if TYPE_CHECKING:
    from rich.console import Console

    from bot.ask import AskOptions
    from bot.settings import Settings

MAX_TURNS = 6
MAX_HISTORY_CHARS = 6000
MAX_ANSWER_CHARS = 400  # of each answer kept in memory (the rewrite needs names, not detail)
MAX_REMEMBERED_QUESTION_CHARS = 600
REWRITE_MAX_TOKENS = 80
MAX_REWRITE_CHARS = 300
CONTEXT_TERMS = 6  # key words a deterministic rewrite adds at most
ANSWER_NAMES = 3  # of them taken from the last answer, when the last question named no one
HISTORY_FILE = "chat_history"
PROMPT = "bot> "

COMMANDS: dict[str, str] = {
    "/help": "this list",
    "/sources": "the sources of the last answer",
    "/summarise [topic]": "a cited summary of every article, or of a topic",
    "/reset": "forget the conversation (follow-ups start afresh)",
    "/exit": "leave (also /quit or Ctrl-D)",
}
_COMMAND_NAMES = ("/help", "/sources", "/summarise", "/summarize", "/reset", "/exit", "/quit")


class AnswerCancelled(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """Raised inside a cancelled turn's callbacks. A BaseException, so that provider code that
    maps `Exception`s to BotErrors lets it through and the turn simply stops."""


# --- memory ---------------------------------------------------------------------------------------


@dataclass
class Turn:
    asked: str  # what the user typed (cleaned)
    standalone: str  # the question that was answered
    answer: str  # the answer, citation markers removed, clipped


@dataclass
class ChatSession:
    """The conversation so far: the last `max_turns` turns within `max_chars` characters."""

    max_turns: int = MAX_TURNS
    max_chars: int = MAX_HISTORY_CHARS
    turns: list[Turn] = field(default_factory=list)
    last_result: AnswerResult | None = None  # for /sources (also set by /summarise)

    def add(self, asked: str, standalone: str, result: AnswerResult) -> None:
        from bot.prompts import NO_ANSWER

        answer = NO_ANSWER if result.refused else _plain_answer(result.answer)
        self.turns.append(
            Turn(
                asked=_clip(asked, MAX_REMEMBERED_QUESTION_CHARS),
                standalone=_clip(standalone, MAX_REMEMBERED_QUESTION_CHARS),
                answer=_clip(answer, MAX_ANSWER_CHARS),
            )
        )
        self.last_result = result
        del self.turns[: max(0, len(self.turns) - self.max_turns)]
        while len(self.turns) > 1 and self.chars > self.max_chars:
            del self.turns[0]

    @property
    def chars(self) -> int:
        return sum(len(t.asked) + len(t.standalone) + len(t.answer) for t in self.turns)

    def reset(self) -> None:
        self.turns.clear()
        self.last_result = None

    def history(self) -> list[Message]:
        """User/assistant messages for the rewrite prompt; the user side is the standalone
        question, so a follow-up of a follow-up still sees the names."""
        messages: list[Message] = []
        for turn in self.turns:
            messages.append(Message("user", turn.standalone))
            messages.append(Message("assistant", turn.answer))
        return messages


def _plain_answer(text: str) -> str:
    from bot.citations import MARKER_RE

    return " ".join(MARKER_RE.sub(" ", text or "").split())


def _clip(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 0.6 else cut).rstrip(" ,;:") + "…"


# --- rewriting follow-ups -------------------------------------------------------------------------


@dataclass
class Rewrite:
    """The standalone question and how it was obtained."""

    question: str
    method: str  # "none" (no conversation yet) | "model" | "keywords" (deterministic)
    rejected: str | None = None  # why the model's rewrite was not used

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "rejected": self.rejected}


# Words that point back into the conversation.
_REFERRING = frozenset(
    {"he", "she", "him", "her", "his", "hers", "they", "them", "their", "theirs", "it", "its"}
    | {"this", "that", "these", "those", "there", "former", "latter"}
)
_FOLLOW_UP_START = re.compile(
    r"^\s*(?:and|but|also|so|what about|how about|what else|and then)\b", re.IGNORECASE
)
_WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*|\d+(?:[.,]\d+)*")
# Question words and verbs that carry no topic of their own.
_GENERIC = frozenset(
    {"happen", "happened", "happening", "think", "know", "mean", "explain", "describe", "news"}
    | {"article", "articles", "thing", "things", "more", "else", "anything", "something"}
    | {"story", "stories", "detail", "details"}
)
_LABEL_RE = re.compile(
    r"^\s*(?:the\s+)?(?:standalone|rewritten|rephrased|reformulated|new|final)?\s*"
    r"(?:question|query)\s*[:：-]\s*",
    re.IGNORECASE,
)
_REPLY_RE = re.compile(
    r"\b(?:sorry|as an ai|language model|i cannot|i can't|i am unable|i'm unable|here is|here's"
    r"|the answer is)\b|\b(?:assistant|user|answer)\s*:|^\s*(?:sure|okay|ok|certainly)\b",
    re.IGNORECASE,
)
_QUOTES = " \t\"'“”‘’`*_«»"


def looks_like_follow_up(question: str) -> bool:
    """True when the question points back into the conversation ("he", "that deal", "and
    Kyiv?") or is too short to stand on its own."""
    from bot.citations import content_words

    words = {w.lower().replace("’", "'") for w in _WORD_RE.findall(question)}
    if words & _REFERRING or _FOLLOW_UP_START.match(question):
        return True
    return len(set(content_words(question))) < 2


def _stems(text: str) -> set[str]:
    from bot.citations import content_words

    return set(content_words(text))


def _context_terms(history: list[Message], question: str, limit: int = CONTEXT_TERMS) -> list[str]:
    """Key words of the last user turn missing from `question`, names first. When that turn
    names no one, the names of the last answer (capitalised words that do not start a sentence,
    the most frequent first)."""
    user = next((m.content for m in reversed(history) if m.role == "user"), "")
    answer = next((m.content for m in reversed(history) if m.role == "assistant"), "")
    have = _stems(question)
    names: list[str] = []
    others: list[str] = []
    for word in _WORD_RE.findall(user):
        word = re.sub(r"['’]s$", "", word)
        stems = _stems(word)
        if not stems or stems <= have or word.lower() in _GENERIC:
            continue  # stopwords, words the question has, "happened"...
        have |= stems
        (names if word[:1].isupper() else others).append(word)
    if not names and answer:
        counts: dict[str, int] = {}
        for sentence in re.split(r"(?<=[.!?])\s+", answer):
            for word in _WORD_RE.findall(sentence)[1:]:  # a sentence's first word is capitalised
                word = re.sub(r"['’]s$", "", word)
                stems = _stems(word)
                if word[:1].isupper() and stems and not stems <= have:
                    counts[word] = counts.get(word, 0) + 1
        ranked = sorted(counts, key=lambda w: -counts[w])  # stable: first seen first among ties
        names = ranked[:ANSWER_NAMES]
    return (names + others)[:limit]


def keyword_rewrite(history: list[Message], question: str) -> str:
    """The deterministic rewrite: a follow-up plus the key words of the last user turn; any other
    question as it is."""
    from bot.ask import MAX_QUESTION_CHARS

    if not history or not looks_like_follow_up(question):
        return question
    terms = _context_terms(history, question)
    if not terms:
        return question
    rewritten = f"{question} ({', '.join(terms)})"
    return rewritten if len(rewritten) <= MAX_QUESTION_CHARS else question


def validate_rewrite(candidate: str, question: str, history: list[Message]) -> tuple[str, str]:
    """(the cleaned rewrite, "") when `candidate` is a usable standalone version of `question`;
    ("", why) otherwise."""
    from bot.citations import MARKER_RE, is_refusal
    from bot.render import sanitize

    lines = [line.strip() for line in sanitize(candidate or "").splitlines() if line.strip()]
    if not lines:
        return "", "empty reply"
    if len(lines) > 1:
        return "", "several lines"
    text = lines[0]
    for _ in range(2):  # `Question: "..."` and `"Question: ..."`
        text = _LABEL_RE.sub("", text).strip(_QUOTES)
    text = " ".join(text.split())
    if not text:
        return "", "empty reply"
    if len(text) > MAX_REWRITE_CHARS or len(text) > 3 * len(question) + 120:
        return "", "too long"
    if MARKER_RE.search(text):
        return "", "cites passages (an answer, not a question)"
    if is_refusal(text) or _REPLY_RE.search(text):
        return "", "a reply, not a question"
    if question.rstrip().endswith("?") and not text.endswith("?"):
        return "", "not a question"
    if _same(text, question):
        if looks_like_follow_up(question):
            return "", "left the follow-up's references unresolved"
        return question, ""
    for message in history:
        if message.role == "user" and _same(text, message.content):
            return "", "repeats an earlier question"
    asked, said = _stems(question), _stems(text)
    context: set[str] = set()
    for message in history:
        context |= _stems(message.content)
    if asked and len(asked & said) * 2 < len(asked):
        return "", "drops words of the question"
    invented = said - asked - context
    if len(invented) > max(1, len(said) // 3):
        return "", "adds words the conversation does not contain"
    if looks_like_follow_up(question) and not (said - asked) & context:
        return "", "adds nothing from the conversation"
    return text, ""


def _same(a: str, b: str) -> bool:
    def norm(text: str) -> str:
        return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())

    return norm(a) == norm(b)


def rewrite_question(history: list[Message], question: str, provider: Any) -> Rewrite:
    """`question` as a standalone question, given the conversation `history`.

    The provider's model rewrites it when it has one (validated by `validate_rewrite`); the
    extractive provider, or a rejected rewrite, gives `keyword_rewrite`.
    """
    from bot.prompts import build_rewrite_messages

    if not history:
        return Rewrite(question, "none")
    if provider is None or getattr(provider, "name", "") == "extractive":
        return Rewrite(keyword_rewrite(history, question), "keywords")
    completion = provider.complete(
        build_rewrite_messages(history, question), max_tokens=REWRITE_MAX_TOKENS
    )
    text, why = validate_rewrite(completion.text, question, history)
    if text:
        return Rewrite(text, "model")
    return Rewrite(keyword_rewrite(history, question), "keywords", rejected=why)


# --- one conversation -----------------------------------------------------------------------------


@dataclass
class ChatReply:
    asked: str
    rewrite: Rewrite
    result: AnswerResult

    def to_json(self) -> dict[str, Any]:
        data = self.result.to_json()
        data["asked"] = self.asked
        data["rewrite"] = self.rewrite.to_json()
        return data


class Chat:
    """A conversation: options, the provider and store opened once, and the session memory."""

    def __init__(
        self,
        options: AskOptions | None = None,
        *,
        settings: Settings | None = None,
        provider: Any = None,
        store: Any = None,
        session: ChatSession | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        from bot.ask import AskOptions, open_index
        from bot.providers import get_provider
        from bot.retrieval import parse_date_bound
        from bot.settings import get_settings

        self.options = options or AskOptions()
        self.settings = settings or get_settings()
        # Bad options fail now, once, rather than on every turn.
        parse_date_bound(self.options.since, end=False)
        parse_date_bound(self.options.until, end=True)
        self.provider = provider or get_provider(self.settings, self.options.llm)
        self.notify = notify
        self.store = store or open_index(self.settings, notify)
        self.session = session or ChatSession()

    def ask(
        self,
        line: str,
        *,
        on_delta: Callable[[str], None] | None = None,
        on_rewrite: Callable[[Rewrite], None] | None = None,
        checkpoint: Callable[[], None] | None = None,
        remember: bool = True,
    ) -> ChatReply:
        """Answer one line of the conversation (rewritten into a standalone question first).

        `checkpoint` is called between the rewrite and the answer; it may raise to stop the turn.
        """
        from bot.ask import answer_question, clean_question

        question = clean_question(line)
        rewrite = rewrite_question(self.session.history(), question, self.provider)
        if checkpoint:
            checkpoint()
        if on_rewrite and rewrite.question != question:
            on_rewrite(rewrite)
        result = answer_question(
            rewrite.question,
            self.options,
            settings=self.settings,
            provider=self.provider,
            store=self.store,
            on_delta=on_delta,
            notify=self.notify,
        )
        reply = ChatReply(question, rewrite, result)
        if remember:
            self.remember(reply)
        return reply

    def warm_up(self) -> None:
        """Load the embedding model and the BM25 index now, so the first answer does not wait
        for them (the REPL calls this in the background while the user types)."""
        from bot.retrieval import load_lexical_index

        self.store.embedder.embed(["warm up"])
        load_lexical_index(self.store)

    def remember(self, reply: ChatReply) -> None:
        self.session.add(reply.asked, reply.rewrite.question, reply.result)

    def summarise(
        self,
        topic: str | None,
        *,
        on_delta: Callable[[str], None] | None = None,
        progress: Any = None,
    ) -> AnswerResult:
        """`/summarise [topic]`: bot.summarise with this chat's filters, provider and store."""
        try:
            from bot.summarise import SummariseOptions, summarise
        except ModuleNotFoundError as exc:
            if exc.name != "bot.summarise":
                raise
            raise BotError("/summarise is not available in this version of bot") from None

        options = SummariseOptions(
            topic=topic or None,
            source=self.options.source,
            since=self.options.since,
            until=self.options.until,
        )
        result = summarise(
            options,
            settings=self.settings,
            provider=self.provider,
            store=self.store,
            on_delta=on_delta,
            notify=self.notify,
            progress=progress,
        )
        self.session.last_result = result
        return result


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


# --- output ---------------------------------------------------------------------------------------

_JSON_UNSAFE_RE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]")


def json_line(data: Any) -> str:
    """One line of JSON whose raw text is terminal-safe (see bot.render.to_json)."""
    text = json.dumps(data, ensure_ascii=False)
    return _JSON_UNSAFE_RE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


class _StreamPane:
    """The answer as it streams (terminal only). After `cancel()` nothing is drawn any more and
    every callback of the turn raises AnswerCancelled."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled and console.is_terminal
        self.text = ""
        self._live: Any = None
        self._lock = threading.Lock()
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        if self._cancelled.is_set():
            raise AnswerCancelled

    def on_delta(self, delta: str) -> None:
        self.check()
        if not self.enabled:
            return
        from rich.live import Live
        from rich.text import Text

        from bot.render import sanitize

        with self._lock:
            self.check()
            self.text += delta
            view = Text(sanitize(self.text), style="dim")
            if self._live is None:
                self._live = Live(
                    view,
                    console=self.console,
                    transient=True,
                    refresh_per_second=12,
                    redirect_stdout=False,
                    redirect_stderr=False,
                )
                self._live.start()
            else:
                self._live.update(view)

    def print(self, renderable: Any) -> None:
        """Print from the turn's thread, unless the turn was cancelled."""
        with self._lock:
            self.check()
            if self._live is not None:
                self._live.console.print(renderable)
            else:
                self.console.print(renderable)

    def stop(self) -> None:
        with self._lock:
            if self._live is not None:
                self._live.stop()
                self._live = None

    def cancel(self) -> None:
        self._cancelled.set()
        self.stop()


class _CancelProgress:
    """A silent progress object for /summarise that stops the run once the turn is cancelled."""

    def __init__(self, pane: _StreamPane) -> None:
        self.pane = pane

    def start(self, total: int) -> None:
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
        import time

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
        interactive: bool = False,
        err: Console | None = None,
        out: IO[str] | None = None,
    ) -> None:
        from rich.console import Console

        self.chat = chat
        self.console = console
        self.err = err or Console(stderr=True, highlight=False)
        self.out = out or sys.stdout
        self.as_json = as_json
        self.interactive = interactive
        self.runner = TurnRunner()
        self.failures = 0

    # -- dispatch --------------------------------------------------------------------------------

    def handle(self, line: str) -> bool:
        """Act on one line; False when the user asked to leave."""
        from bot.render import sanitize

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
        from rich.text import Text

        self.console.print(Text("Ask a question, or a follow-up about the last answers.", "bold"))
        for usage, what in help_lines():
            self.console.print(Text.assemble((f"  {usage:<20}", "cyan"), what))

    def _sources(self) -> None:
        from rich.text import Text

        from bot.render import render_sources

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
        def job(pane: _StreamPane) -> AnswerResult:
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
            import bot.render

            # render_summary adds a heading saying what the summary covers (when it exists)
            render = getattr(bot.render, "render_summary", bot.render.render_answer)
            render(result, self.console)

    # -- questions -------------------------------------------------------------------------------

    def _answer(self, line: str) -> None:
        from rich.text import Text

        from bot.render import render_answer, sanitize

        if not self.interactive and not self.as_json:
            self.console.print(Text(f"» {sanitize(line)}", style="bold"))

        def job(pane: _StreamPane) -> ChatReply:
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
            render_answer(reply.result, self.console)

    def _run(self, job: Callable[[_StreamPane], Any]) -> Any:
        """Run a turn: in a cancellable worker thread at a terminal, else right here."""
        pane = _StreamPane(self.console, enabled=not self.as_json)
        if not self.interactive:
            try:
                return job(pane)
            finally:
                pane.stop()
        outcome = self.runner.run(lambda: job(pane), on_cancel=pane.cancel)
        pane.stop()
        if outcome.cancelled:
            from rich.text import Text

            self.console.print(Text("(cancelled)", style="dim yellow"))
            return None
        if outcome.error is not None:
            raise outcome.error
        return outcome.value

    # -- output ----------------------------------------------------------------------------------

    def _emit(self, data: Any) -> None:
        self.out.write(json_line(data) + "\n")
        self.out.flush()

    def _info(self, text: str, data: dict[str, Any]) -> None:
        if self.as_json:
            self._emit(data)
        else:
            from rich.text import Text

            self.console.print(Text(text, style="dim"))

    def _error(self, message: str, line: str) -> None:
        self.failures += 1
        one_line = " ".join(message.split())
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


def _history(data_dir: Path) -> Any:
    """prompt_toolkit history in the data dir; in memory when that is not writable."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    class QuietFileHistory(FileHistory):
        def store_string(self, string: str) -> None:
            # The disk filled up or the dir became read-only: keep chatting.
            with contextlib.suppress(OSError):
                super().store_string(string)

    path = data_dir / HISTORY_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError:
        return InMemoryHistory()
    return QuietFileHistory(str(path))


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
    from rich.text import Text

    session: Any = PromptSession(
        history=_history(data_dir), completer=_completer(), complete_while_typing=False
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
    try:
        while True:
            try:
                line = session.prompt(PROMPT)
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt: a fresh prompt
            except EOFError:
                break
            try:
                if not frontend.handle(line):
                    break
            except KeyboardInterrupt:  # while printing an answer
                frontend.console.print(Text("(cancelled)", style="dim yellow"))
    finally:
        _wait_for_cancelled_turns(frontend)
    return 0


def _wait_for_cancelled_turns(frontend: ChatFrontend) -> None:
    """A cancelled answer still computing (e.g. a local model reading its prompt) is waited for;
    Ctrl-C quits at once, skipping the exit handlers that would free the model under it."""
    import os

    from rich.text import Text

    if not frontend.runner.busy():
        return
    frontend.console.print(
        Text("Waiting for the cancelled answer to stop… (Ctrl-C to quit now)", "dim")
    )
    try:
        frontend.runner.join()
    except KeyboardInterrupt:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)


def run_chat(options: AskOptions | None = None, *, as_json: bool = False) -> int:
    """`bot chat`: the REPL at a terminal, one question per line otherwise. Returns the exit
    code."""
    from rich.console import Console

    err = Console(stderr=True, highlight=False)
    console = Console(highlight=False)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    chat = Chat(options, notify=lambda message: err.print(message, markup=False))
    frontend = ChatFrontend(chat, console, as_json=as_json, interactive=interactive, err=err)
    if interactive:
        return run_repl(frontend, chat.settings.data_dir)
    return run_lines(frontend, read_lines(sys.stdin))
