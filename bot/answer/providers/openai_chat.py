"""The chat model of OpenAI or any OpenAI-compatible server, through langchain-openai.

langchain_openai, openai and tiktoken are imported on first use only. Every failure a user can hit
surfaces as a one-line `BotError` naming the server and the fix (`openai_errors`).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from pydantic import SecretStr

from bot.answer.providers.base import Completion, Message, clean_completion, estimate_tokens
from bot.answer.providers.http import utf8_safe_client
from bot.answer.providers.openai_errors import Endpoint, map_error
from bot.core.errors import BotError, BotNotice
from bot.core.retry import Attempts, call_with_retries
from bot.core.settings import Settings
from bot.core.text import replace_surrogates

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
NO_KEY_PLACEHOLDER = "not-needed"  # OpenAI-compatible local servers ignore the key
NO_KEY_MESSAGE = (
    "No OpenAI key: set OPENAI_API_KEY in .env, or run with --llm local or --llm extractive"
)
# Calls one model may have in flight: the upper end of BOT_SUMMARY_CONCURRENCY, under the
# 100 connections of the shared HTTP pool. A server queues what it cannot run at once.
MAX_PARALLEL_CALLS = 64


class OpenAIChatModel:
    """Chat completions through langchain-openai's `ChatOpenAI`.

    Retries follow `bot.core.retry` (the SDK's own are off): BOT_LLM_DEADLINE bounds a call,
    a refused connection fails at once. A stream is not retried once text has arrived.
    """

    name = "openai"
    max_parallel_calls = MAX_PARALLEL_CALLS
    shares_cpu = False  # the server does the work; this machine waits

    def __init__(self, settings: Settings) -> None:
        if not settings.openai_api_key and not settings.openai_base_url:
            raise BotError(NO_KEY_MESSAGE)
        self.settings = settings
        self.model = settings.openai_model
        self.context_tokens = settings.llm_context_tokens
        self.base_url = (settings.openai_base_url or "").rstrip("/") or None
        self.endpoint = Endpoint(
            self.base_url,
            self.model,
            settings.llm_timeout,
            settings.llm_max_retries,
            settings.llm_deadline,
        )
        self._api_key = settings.openai_api_key or NO_KEY_PLACEHOLDER
        self._llm: Any = None
        self._encoding: Any = None
        self._encoding_failed = False

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int | None = None,
        on_delta: Callable[[str], None] | None = None,
    ) -> Completion:
        llm = self._client()
        payload = [{"role": m.role, "content": m.content} for m in messages]
        kwargs: dict[str, Any] = {}
        if max_tokens is not None:
            if self.base_url:
                # llama.cpp, Ollama, vLLM... understand `max_tokens`; ChatOpenAI would send the
                # newer `max_completion_tokens`, which some of them ignore.
                kwargs["extra_body"] = {"max_tokens": max_tokens}
            else:
                kwargs["max_tokens"] = max_tokens
        if on_delta is None:
            return self._invoke(llm, payload, kwargs)
        return self._stream(llm, payload, kwargs, on_delta)

    def count_tokens(self, text: str) -> int:
        encoding = self._tiktoken()
        if encoding is None:
            return estimate_tokens(text)
        return len(encoding.encode(text, disallowed_special=()))

    def _client(self) -> Any:
        if self._llm is None:
            try:
                from langchain_openai import ChatOpenAI
            except ImportError:
                raise BotError(
                    "The OpenAI provider needs langchain-openai: pip install -e . "
                    "(or run with --llm local or --llm extractive)"
                ) from None
            s = self.settings
            self._llm = ChatOpenAI(
                model=s.openai_model,
                api_key=SecretStr(self._api_key),
                base_url=self.base_url or OPENAI_DEFAULT_BASE_URL,
                timeout=s.llm_timeout,
                max_retries=0,  # bot.core.retry retries, within the deadline
                temperature=s.llm_temperature,
                use_responses_api=False,
                stream_usage=self.base_url is None,
                http_client=utf8_safe_client(s.llm_timeout),
            )
        return self._llm

    def _tiktoken(self) -> Any:
        # Only for the real OpenAI API: other servers use other tokenizers, and tiktoken
        # downloads its tables on first use (which must not happen offline).
        if self._encoding is not None or self._encoding_failed or self.base_url:
            return self._encoding
        try:
            import tiktoken

            try:
                self._encoding = tiktoken.encoding_for_model(self.model)
            except KeyError:
                self._encoding = tiktoken.get_encoding("o200k_base")
        except Exception:  # not installed, or no cached tables and no network
            self._encoding_failed = True
        return self._encoding

    def _invoke(self, llm: Any, payload: list[dict], kwargs: dict) -> Completion:
        tries = Attempts()
        try:
            with _quiet_pydantic():
                message = call_with_retries(
                    lambda timeout: llm.invoke(payload, timeout=timeout, **kwargs),
                    self.endpoint.retry_rule,
                    tries,
                )
        except Exception as exc:
            self._raise_mapped(exc, started=False, tries=tries)
        text = clean_completion(_content_text(message.content))
        model = (message.response_metadata or {}).get("model_name") or self.model
        return Completion(text, self.name, str(model), _usage(message))

    def _stream(
        self, llm: Any, payload: list[dict], kwargs: dict, on_delta: Callable[[str], None]
    ) -> Completion:
        parts: list[str] = []
        usage: dict[str, int] = {}
        finished = False
        model = self.model
        started = False
        tries = Attempts()

        def first_chunk(timeout: float) -> tuple[Iterator[Any], list[Any]]:
            chunks = iter(llm.stream(payload, timeout=timeout, **kwargs))
            return chunks, list(itertools.islice(chunks, 1))  # the request fails here if at all

        try:
            with _quiet_pydantic():
                chunks, first = call_with_retries(first_chunk, self.endpoint.retry_rule, tries)
                for chunk in itertools.chain(first, chunks):
                    started = True
                    meta = chunk.response_metadata or {}
                    finished = finished or bool(meta.get("finish_reason"))
                    model = meta.get("model_name") or model
                    usage = _usage(chunk) or usage
                    delta = replace_surrogates(_content_text(chunk.content))
                    if delta:
                        parts.append(delta)
                        on_delta(delta)
        except Exception as exc:
            self._raise_mapped(exc, started=started, tries=tries)
        if started and not finished:
            raise BotError(
                f"The LLM stream from {self.endpoint.label} was cut off (it ended without a "
                "finish reason); try again"
            )
        return Completion(clean_completion("".join(parts)), self.name, model, usage)

    def _raise_mapped(self, exc: Exception, *, started: bool, tries: Attempts) -> NoReturn:
        """Raise `exc` as a one-line BotError when it is one we know, else as it is."""
        mapped = map_error(exc, self.endpoint, started=started, tries=tries)
        if mapped is None:
            raise exc
        raise mapped from None


@contextmanager
def _quiet_pydantic() -> Iterator[None]:
    """pydantic warns on stderr about a server's wrongly typed fields; the error (or the cleaned
    answer) says what matters, on one line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", BotNotice)
        yield


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        out = []
        for block in content:
            if isinstance(block, str):
                out.append(block)
            elif isinstance(block, dict) and isinstance(block.get("text"), str):
                out.append(block["text"])
        return "".join(out)
    return "" if content is None else str(content)


def _usage(message: Any) -> dict[str, int]:
    meta = message.usage_metadata or {}  # langchain's AIMessage(Chunk): None when not known
    usage: dict[str, int] = {}
    if meta.get("input_tokens") is not None:
        usage["prompt_tokens"] = int(meta["input_tokens"])
    if meta.get("output_tokens") is not None:
        usage["completion_tokens"] = int(meta["output_tokens"])
    if not usage:
        raw = (message.response_metadata or {}).get("token_usage") or {}
        for key in ("prompt_tokens", "completion_tokens"):
            if isinstance(raw.get(key), int):
                usage[key] = raw[key]
    return usage
