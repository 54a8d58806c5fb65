"""Test doubles, in one place, implementing the same protocols as the real things.

- `FakeChatModel`: a `bot.answer.providers.ChatModel` that answers from a queue of replies (or a
  function of the prompt), streams them word by word, reports fixed usage, fails on demand, and
  records every call.
- `fake_provider`: a `Provider` whose chat model is a given one, as `--llm` would give it.
- `HashEmbedder`: a `bot.index.embeddings.Embedder` of hashed bag-of-words vectors.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bot.answer.providers import ChatModel, Completion, Message, Provider
from bot.core.words import content_words

# A step of a scripted stream: a delta to send, or something to do between two deltas.
Step = str | Callable[[], None]
# A queued reply: its text; an exception to raise; a function of the prompt giving the text; or
# a tuple of steps, whose deltas make the text.
Reply = str | BaseException | Callable[[list[Message]], str] | tuple[Step, ...]


class FakeChatModel:
    """A deterministic chat model: each call takes the next queued reply, or asks `respond` when
    the queue is empty (no reply at all fails the test).

    A text is streamed word by word (each word followed by a space) to `on_delta`. Every call is
    recorded: its messages (`seen`), `max_tokens`, and any exception it raised (`errors`);
    `max_active` is the most calls that ran at once. Each call takes at least `delay` seconds, and
    its prompt plus output budget must fit `context_tokens`.
    """

    def __init__(
        self,
        *replies: Reply,
        respond: Callable[[list[Message]], str] | None = None,
        name: str = "openai",
        model: str = "fake-chat",
        context_tokens: int = 8192,
        max_parallel_calls: int = 64,
        shares_cpu: bool = False,
        usage: dict[str, int] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.replies: list[Reply] = list(replies)
        self.respond = respond
        self.name = name
        self.model = model
        self.context_tokens = context_tokens
        self.max_parallel_calls = max_parallel_calls
        self.shares_cpu = shares_cpu
        self.usage = {"prompt_tokens": 10, "completion_tokens": 5} if usage is None else usage
        self.delay = delay
        self.seen: list[list[Message]] = []
        self.max_tokens: list[int | None] = []
        self.errors: list[BaseException] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    @property
    def prompts(self) -> list[str]:
        """The last message of every call, in call order."""
        return [messages[-1].content for messages in self.seen]

    def prompt(self, i: int) -> str:
        """All messages of call `i`, one after another."""
        return "\n".join(m.content for m in self.seen[i])

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int | None = None,
        on_delta: Callable[[str], None] | None = None,
    ) -> Completion:
        assert sum(self.count_tokens(m.content) for m in messages) + (max_tokens or 0) <= (
            self.context_tokens
        ), "the prompt plus its output budget must fit the context window"
        with self._lock:
            self.seen.append(messages)
            self.max_tokens.append(max_tokens)
            reply = self.replies.pop(0) if self.replies else self.respond
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            text = self._play(reply, messages, on_delta)
        except BaseException as exc:
            self.errors.append(exc)
            raise
        finally:
            with self._lock:
                self.active -= 1
        return Completion(text, self.name, self.model, dict(self.usage))

    def _play(
        self,
        reply: Reply | None,
        messages: list[Message],
        on_delta: Callable[[str], None] | None,
    ) -> str:
        if reply is None:
            raise AssertionError("the fake chat model was called with no reply queued")
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply):
            reply = reply(messages)
        time.sleep(self.delay)
        steps = reply if isinstance(reply, tuple) else tuple(w + " " for w in reply.split(" "))
        for step in steps:
            if callable(step):
                step()
            elif on_delta is not None:
                on_delta(step)
        return reply if isinstance(reply, str) else "".join(s for s in steps if isinstance(s, str))


def fake_provider(llm: ChatModel) -> Provider:
    """The provider `--llm` would give for `llm`'s name, with `llm` as its chat model."""
    return Provider(llm.name, llm.model, lambda: llm)


class HashEmbedder:
    """A deterministic bag-of-words embedder: hashed, stemmed content words, L2-normalised.

    Texts that share content words are close. `calls` holds the number of texts of each `embed`
    call; with `failure` set, every call raises it instead. Nothing is memoised.
    """

    def __init__(
        self,
        dimension: int = 128,
        *,
        name: str = "hash-test",
        failure: BaseException | None = None,
    ) -> None:
        self.name = name
        self.dimension = dimension
        self.failure = failure
        self.calls: list[int] = []

    @property
    def question_name(self) -> str:
        return self.name

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        if self.failure is not None:
            raise self.failure
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in content_words(text):
                out[row, zlib.crc32(word.encode("utf-8", "replace")) % self.dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)

    def embed_questions(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed(texts)

    def remember(self, texts: Sequence[str], vectors: Any) -> None: ...
    def warm(self, texts: Sequence[str]) -> None: ...
    def prepare_questions(self) -> None: ...
