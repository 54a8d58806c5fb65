"""`bot chat`'s conversation: follow-up questions get standalone rewrites, memory is bounded.

Each turn:

1. The typed line is cleaned like an `ask` question (control characters never reach the terminal).
2. With a conversation behind it, the question is rewritten into a standalone one. An LLM provider
   gets `prompts/rewrite_question.txt`; its reply is validated (one line, short, still a question,
   keeps the question's content words, adds nothing the conversation does not contain, resolves
   "he"/"they"/... when the question has them). A rejected reply, or the extractive provider,
   gives the deterministic rewrite: a follow-up question plus the key words of the last user turn
   ("what did he tell Russian soldiers? (Zelensky, announce)").
3. The standalone question goes through `bot.app.ask.answer_question` with the session's provider

   store, so the model and the index are opened once.

Memory is bounded: the last MAX_TURNS turns, at most MAX_HISTORY_CHARS characters, each answer kept
as its first MAX_ANSWER_CHARS characters without citation markers.

The terminal front end (commands, the REPL, Ctrl-C cancellation, stdin line mode) is `bot.ui.repl`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.answer.answer_type import read_question
from bot.answer.providers import Message
from bot.core.markers import MARKER_RE, strip_markers
from bot.core.text import clip, sanitize
from bot.core.types import AnswerResult, Progress, SummaryResult
from bot.core.words import WORD_RE, content_words

if TYPE_CHECKING:
    from bot.answer.providers import Provider
    from bot.app.ask import AskOptions
    from bot.core.settings import Settings

MAX_TURNS = 6
MAX_HISTORY_CHARS = 6000
MAX_ANSWER_CHARS = 400  # of each answer kept in memory (the rewrite needs names, not detail)
MAX_REMEMBERED_QUESTION_CHARS = 600
REWRITE_MAX_TOKENS = 80
MAX_REWRITE_CHARS = 300
CONTEXT_TERMS = 6  # key words a deterministic rewrite adds at most
ANSWER_NAMES = 3  # of them taken from the last answer, when the last question named no one
# A question naming nothing with at most this many content words is read as a follow-up.
NAMELESS_FOLLOW_UP_WORDS = 3


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
        from bot.core.types import NO_ANSWER

        answer = NO_ANSWER if result.refused else _plain_answer(result.answer)
        self.turns.append(
            Turn(
                asked=clip(asked, MAX_REMEMBERED_QUESTION_CHARS),
                standalone=clip(standalone, MAX_REMEMBERED_QUESTION_CHARS),
                answer=clip(answer, MAX_ANSWER_CHARS),
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
    return strip_markers(text or "")


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
# Question words and verbs that carry no topic of their own.
_GENERIC = frozenset(
    {"happen", "happened", "happening", "think", "know", "mean", "explain", "describe", "news"}
    | {"article", "articles", "thing", "things", "more", "else", "anything", "something"}
    | {"story", "stories", "detail", "details", "many", "much"}
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


def refers_back(question: str) -> bool:
    """The question points back into the conversation: "he", "that deal", "and Kyiv?"."""
    words = {w.lower().replace("’", "'") for w in WORD_RE.findall(question)}
    return bool(words & _REFERRING or _FOLLOW_UP_START.match(question))


def looks_like_follow_up(question: str) -> bool:
    """True when the question points back into the conversation, is too short to stand on its
    own, or is a short question that names nothing ("Who leads the brigade?"): in a
    conversation, "the brigade" is the one just talked about."""
    if refers_back(question):
        return True
    words = set(content_words(question))
    if len(words) < 2:
        return True
    return not read_question(question).anchors and len(words) <= NAMELESS_FOLLOW_UP_WORDS


def _stems(text: str) -> set[str]:
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
    joined = False  # the last word was a name that the next capitalised word continues
    for match in WORD_RE.finditer(user):
        word = re.sub(r"['’]s$", "", match.group())
        stems = _stems(word)
        if not stems or stems <= have or word.lower() in _GENERIC:
            joined = False
            continue  # stopwords, words the question has, "happened"...
        have |= stems
        if not word[:1].isupper():
            others.append(word)
        elif joined and user[match.start() - 1 : match.start()] == " ":
            names[-1] += f" {word}"  # "Kettle Bridge" stays one name
        else:
            names.append(word)
        joined = word[:1].isupper()
    if not names and answer:
        counts: dict[str, int] = {}
        for sentence in re.split(r"(?<=[.!?])\s+", answer):
            for word in WORD_RE.findall(sentence)[1:]:  # a sentence's first word is capitalised
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
    from bot.app.ask import MAX_QUESTION_CHARS

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
    from bot.answer.citations import is_refusal

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


def rewrite_question(history: list[Message], question: str, provider: Provider | None) -> Rewrite:
    """`question` as a standalone question, given the conversation `history`.

    The provider's chat model rewrites it when it has one (validated by `validate_rewrite`); no
    model (extractive), or a rejected rewrite, gives `keyword_rewrite`.
    """
    from bot.answer.prompts import build_rewrite_messages

    if not history:
        return Rewrite(question, "none")
    llm = provider.llm() if provider is not None else None
    if llm is None:
        return Rewrite(keyword_rewrite(history, question), "keywords")
    completion = llm.complete(
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
        provider: Provider | None = None,
        store: Any = None,
        session: ChatSession | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        from bot.answer.providers import get_provider
        from bot.app.ask import AskOptions, open_index
        from bot.core.dates import parse_date_bound
        from bot.core.settings import get_settings

        self.options = options or AskOptions()
        self.settings = settings or get_settings()
        # Bad options fail now, once, rather than on every turn.
        parse_date_bound(self.options.since, end=False)
        parse_date_bound(self.options.until, end=True)
        self.provider = provider or get_provider(self.settings, self.options.llm)
        self.notify = notify
        self.store = store or open_index(self.settings, notify)
        self.session = session or ChatSession()

    def _opened(self) -> dict[str, Any]:
        """What every pipeline call of this chat shares: settings, provider, store and notify."""
        return {
            "settings": self.settings,
            "provider": self.provider,
            "store": self.store,
            "notify": self.notify,
        }

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
        from bot.app.ask import answer_question, clean_question

        question = clean_question(line)
        rewrite = rewrite_question(self.session.history(), question, self.provider)
        if checkpoint:
            checkpoint()
        if on_rewrite and rewrite.question != question:
            on_rewrite(rewrite)
        result = answer_question(
            rewrite.question, self.options, on_delta=on_delta, **self._opened()
        )
        gated = result.refused and "llm" not in result.timings_ms  # no model was asked
        if gated and rewrite.question != question and not refers_back(question):
            # Read as a follow-up nothing answers, a question that names nothing may still be
            # a new one: asked as typed, it is answered if a passage answers it.
            typed = answer_question(question, self.options, on_delta=on_delta, **self._opened())
            if not typed.refused:
                why = "no passage answers the rewrite; the question was answered as typed"
                rewrite, result = Rewrite(question, "none", rejected=why), typed
        reply = ChatReply(question, rewrite, result)
        if remember:
            self.remember(reply)
        return reply

    def warm_up(self) -> None:
        """Load the embedding model and the BM25 index now, so the first answer does not wait
        for them (the REPL calls this in the background while the user types)."""
        from bot.index.keyword import load_lexical_index

        embedder = self.store.embedder
        embedder.embed(["warm up"])
        embedder.embed_questions(["warm up"])
        load_lexical_index(self.store)

    def remember(self, reply: ChatReply) -> None:
        self.session.add(reply.asked, reply.rewrite.question, reply.result)

    def summarise(
        self,
        topic: str | None,
        *,
        on_delta: Callable[[str], None] | None = None,
        progress: Progress | None = None,
    ) -> SummaryResult:
        """`/summarise [topic]`: bot.app.summarise with this chat's filters, provider and store."""
        from bot.app.summarise import SummariseOptions, summarise

        options = SummariseOptions(
            topic=topic or None,
            source=self.options.source,
            since=self.options.since,
            until=self.options.until,
        )
        result = summarise(options, on_delta=on_delta, progress=progress, **self._opened())
        self.session.last_result = result
        return result
