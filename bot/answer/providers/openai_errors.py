"""Errors of OpenAI-compatible servers as one-line `BotError`s naming the server and the fix.

`map_error` turns whatever langchain, the openai SDK or httpx raised into a message a user can act
on; no secret appears in one (`bot.core.secrets.redact`). openai is imported on first
use only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bot.core.errors import BotError
from bot.core.retry import Attempts, RetryRule, error_chain, refused_wait_message
from bot.core.secrets import redact
from bot.core.text import one_line

_CONTEXT_OVERFLOW_MARKERS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "too long",
)
# Substrings of an error chain (lowercased) and the short reason a message gives for them.
_REASONS = (
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
)


@dataclass(frozen=True)
class Endpoint:
    """The server a chat model talks to, as its error messages name it."""

    base_url: str | None  # None: the OpenAI API
    model: str
    timeout: float
    retries: int
    deadline: float

    @property
    def label(self) -> str:
        """The base URL without credentials, or "the OpenAI API"."""
        if not self.base_url:
            return "the OpenAI API"
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))

    @property
    def subject(self) -> str:
        """How a sentence about the server starts."""
        return f"The LLM server at {self.label}" if self.base_url else "The OpenAI API"

    @property
    def retry_rule(self) -> RetryRule:
        return RetryRule(self.deadline, self.timeout, self.retries, self.subject)


def _after(tries: Attempts) -> str:
    """ " after 2 retries", or nothing when the request was not retried."""
    if not tries.retries:
        return ""
    return " after 1 retry" if tries.retries == 1 else f" after {tries.retries} retries"


def map_error(
    exc: BaseException, endpoint: Endpoint, *, started: bool, tries: Attempts | None = None
) -> BotError | None:
    """A one-line BotError for an exception from langchain/openai/httpx (None: not one of
    theirs). `started`: text had already arrived, so a failure cut the stream off. `tries`: what
    `call_with_retries` did."""
    if isinstance(exc, BotError):
        return exc
    tries = tries or Attempts(timeout=endpoint.timeout)
    refused = refused_wait_message(endpoint.subject, tries, endpoint.deadline)
    if refused:
        return BotError(refused)
    try:
        import openai
    except ImportError:  # pragma: no cover - langchain-openai depends on it
        return None
    if started and not isinstance(exc, openai.APIStatusError):
        return BotError(
            f"The LLM stream from {endpoint.label} was cut off ({_root_reason(exc)}); try again"
        )
    if isinstance(exc, openai.APIStatusError):
        return BotError(_status_message(exc, endpoint, tries))
    return _transport_error(exc, endpoint, tries)


# --- the server answered with an error status ------------------------------------------------


def _status_message(exc: Any, endpoint: Endpoint, tries: Attempts) -> str:
    import openai

    for kind, message in (
        (openai.AuthenticationError, _rejected_key),
        (openai.PermissionDeniedError, _denied),
        (openai.NotFoundError, _no_model),
        (openai.RateLimitError, _rate_limited),
        (openai.BadRequestError, _bad_request),
        (openai.InternalServerError, _server_failed),
    ):
        if isinstance(exc, kind):
            return message(exc, endpoint, tries)
    return (
        f"{endpoint.subject} answered HTTP {exc.status_code} ({_server_message(exc)}); "
        "check OPENAI_BASE_URL and BOT_OPENAI_MODEL"
    )


def _rejected_key(exc: Any, endpoint: Endpoint, tries: Attempts) -> str:
    if endpoint.base_url:
        return (
            f"The LLM server at {endpoint.label} rejected the API key (HTTP 401): "
            "check OPENAI_API_KEY"
        )
    return "OpenAI rejected the API key: check OPENAI_API_KEY"


def _denied(exc: Any, endpoint: Endpoint, tries: Attempts) -> str:
    return (
        f"{endpoint.subject} denied access to model '{endpoint.model}' (HTTP 403): "
        "check OPENAI_API_KEY and BOT_OPENAI_MODEL"
    )


def _no_model(exc: Any, endpoint: Endpoint, tries: Attempts) -> str:
    hint = "check BOT_OPENAI_MODEL"
    if endpoint.base_url:
        hint += " and that OPENAI_BASE_URL ends with the API prefix, usually /v1"
    return f"{endpoint.subject} has no model '{endpoint.model}' (HTTP 404): {hint}"


def _rate_limited(exc: Any, endpoint: Endpoint, tries: Attempts) -> str:
    if _error_code(exc) == "insufficient_quota":
        return f"{endpoint.subject} says the account has no quota left: check your plan and billing"
    return (
        f"{endpoint.subject} kept rate-limiting the request (HTTP 429){_after(tries)}; "
        "wait a minute and try again"
    )


def _bad_request(exc: Any, endpoint: Endpoint, tries: Attempts) -> str:
    detail = _server_message(exc)
    if _is_context_overflow(exc, detail):
        return (
            f"The prompt is too long for model '{endpoint.model}' at {endpoint.label}: "
            "lower BOT_TOP_K or BOT_CHUNK_SIZE, or raise BOT_LLM_CONTEXT_TOKENS only if "
            "the model allows it"
        )
    return (
        f"{endpoint.subject} rejected the request (HTTP 400: {detail}); "
        "check BOT_OPENAI_MODEL and the server's settings"
    )


def _server_failed(exc: Any, endpoint: Endpoint, tries: Attempts) -> str:
    return f"{endpoint.subject} failed with HTTP {exc.status_code}{_after(tries)}; try again later"


# --- no usable answer: timeouts, connections, malformed responses ----------------------------


def _transport_error(exc: BaseException, endpoint: Endpoint, tries: Attempts) -> BotError | None:
    import openai

    reason = _root_reason(exc)
    after = _after(tries)
    if isinstance(exc, openai.APITimeoutError):
        if tries.timeout < endpoint.timeout:  # the deadline cut the last attempt short
            return BotError(
                f"{endpoint.subject} did not answer within BOT_LLM_DEADLINE "
                f"({endpoint.deadline:g} s){after}; raise it or try again later"
            )
        return BotError(
            f"{endpoint.subject} did not answer within {endpoint.timeout:g} s{after}; "
            "raise BOT_LLM_TIMEOUT or try again later"
        )
    if isinstance(exc, openai.APIConnectionError):
        if endpoint.base_url:
            return BotError(
                f"The LLM server at {endpoint.label} did not answer{after} ({reason}); "
                "is it running? Check OPENAI_BASE_URL."
            )
        return BotError(
            f"Could not reach the OpenAI API{after} ({reason}); "
            "check your network connection and proxy settings"
        )
    if isinstance(exc, openai.APIResponseValidationError | ValueError | KeyError | TypeError):
        return BotError(
            f"{endpoint.subject} sent a response that is not OpenAI chat-completion JSON "
            f"({reason}); check that OPENAI_BASE_URL points at an OpenAI-compatible /v1 endpoint"
        )
    if isinstance(exc, openai.OpenAIError) or _is_httpx_error(exc):
        return BotError(f"The request to {endpoint.label} failed ({reason}); try again")
    return None


# --- reading an error ------------------------------------------------------------------------


def _error_body(exc: Any) -> Any:
    """The "error" object of the JSON body the server sent, or the body itself."""
    body = getattr(exc, "body", None)  # only the SDK's APIError carries a body
    return body.get("error", body) if isinstance(body, dict) else None


def _server_message(exc: Any) -> str:
    inner = _error_body(exc)
    message = inner.get("message") if isinstance(inner, dict) else inner
    if not message:
        message = getattr(exc, "message", None) or str(exc)  # the SDK's APIError has one
    return one_line(redact(str(message)), 160)


def _error_code(exc: Any) -> str | None:
    code = getattr(exc, "code", None)  # the SDK's APIError sets it from the body when it can
    if code:
        return str(code)
    inner = _error_body(exc)
    if isinstance(inner, dict) and inner.get("code"):
        return str(inner["code"])
    return None


def _is_context_overflow(exc: Any, detail: str) -> bool:
    text = f"{_error_code(exc) or ''} {detail}".lower()
    return any(marker in text for marker in _CONTEXT_OVERFLOW_MARKERS)


def _is_httpx_error(exc: BaseException) -> bool:
    roots = {cls.__module__.split(".")[0] for cls in type(exc).__mro__}
    return bool(roots & {"httpx", "httpx2", "httpcore", "httpcore2"})


def _root_reason(exc: BaseException) -> str:
    """A short human reason from the innermost cause: 'connection refused', 'timed out'..."""
    chain = error_chain(exc)
    if any(isinstance(err, ConnectionRefusedError) for err in chain):
        return "connection refused"
    text = " ".join(str(e) for e in chain).lower()
    for needle, reason in _REASONS:
        if needle in text:
            return reason
    inner = chain[-1]
    detail = one_line(redact(str(inner)), 100)
    name = type(inner).__name__
    return f"{name}: {detail}" if detail else name
