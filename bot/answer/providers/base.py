"""What every LLM provider offers: messages, completions, the `ChatModel` protocol and `Provider`.

A `ChatModel` declares what the pipelines may rely on (its context window, how many calls it takes
at once, whether it needs this machine's CPU); the pipelines read those declarations and never
compare provider names. A `Provider` is what `--llm` chose: cheap to make, it makes (for the local
model: loads) its chat model on first use, and has none in extractive mode.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.core.secrets import redact
from bot.core.text import sanitize

# The chars-per-token ratio of `estimate_tokens`: English prose runs near 4 with GPT tokenizers,
# so 3.5 errs on the side of a prompt that fits.
CHARS_PER_TOKEN = 3.5


@dataclass
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass
class Completion:
    text: str
    provider: str
    model: str
    usage: dict[str, int] = field(default_factory=dict)  # prompt_tokens, completion_tokens


class ChatModel(Protocol):
    """A chat model the pipelines can call."""

    name: str  # "openai" | "local": what the answer reports as its provider
    model: str
    context_tokens: int  # prompt plus output, in the model's own tokens
    max_parallel_calls: int  # calls it serves at once (the local model: 1)
    shares_cpu: bool  # it runs on this machine's CPU: no other heavy work alongside it

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int | None = None,
        on_delta: Callable[[str], None] | None = None,
    ) -> Completion:
        """The model's reply; with `on_delta`, streamed to it piece by piece as it arrives."""
        ...

    def count_tokens(self, text: str) -> int: ...


class Provider:
    """What `--llm` chose: `name` ("openai" | "local" | "extractive"), `model`, and the chat model,
    made by `make` on the first `llm()` call (None: extractive, the pipeline quotes passages)."""

    def __init__(self, name: str, model: str, make: Callable[[], ChatModel] | None = None) -> None:
        self.name = name
        self.model = model
        self._make = make
        self._llm: ChatModel | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the chat model has been made already (the next `llm()` returns at once)."""
        return self._llm is not None

    def llm(self) -> ChatModel | None:
        """The chat model, made on the first call (the local GGUF loads then); None in extractive
        mode."""
        if self._make is None:
            return None
        with self._lock:
            if self._llm is None:
                self._llm = self._make()
            return self._llm


def estimate_tokens(text: str) -> int:
    """A cheap upper-leaning estimate of a text's tokens, for models without a tokenizer here."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def clean_completion(text: str) -> str:
    """A whole completion as the pipeline sees it: encodable, with no escape sequences or control
    characters (an answer of nothing but those is empty). Streamed deltas are cleaned only by
    `replace_surrogates`, since an escape sequence may span two deltas; whoever shows them
    sanitises. A secret the server echoes is redacted."""
    return redact(sanitize(text))
