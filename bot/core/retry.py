"""The retry rule of every request to an OpenAI-compatible server (chat and embeddings).

One deadline (BOT_LLM_DEADLINE) bounds a request from its first attempt to the answer, retries and
waits included: each attempt gets at most what is left of it, and a wait that would not leave time
for one more attempt is not taken. A refused connection fails at once (nothing listens there, and
retrying will not change that); 408, 409, 429 and 5xx answers, timeouts and dropped connections are
retried up to BOT_LLM_MAX_RETRIES times, waiting what the server's Retry-After asks or backing off
exponentially. A wait the user would notice (a pause of NOTICE_AFTER_S or more before a retry, a
server silent for SILENT_NOTICE_S) is announced by one `BotNotice` line.

The openai SDK's own retries are off (max_retries=0) wherever this rule applies; openai is imported
on first use only.
"""

from __future__ import annotations

import random
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from bot.core.errors import BotNotice

T = TypeVar("T")

# The openai SDK's backoff schedule (0.5 s doubling up to 8 s, minus up to 25 % jitter): what the
# rate limits of OpenAI-compatible servers are tuned for.
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 8.0
BACKOFF_JITTER = 0.25
# An attempt needs at least this long (or the whole BOT_LLM_TIMEOUT when that is shorter) to have
# a chance of an answer; a retry that would leave less is not started.
MIN_ATTEMPT_S = 1.0
# Waits shorter than this pass unnoticed; a longer silent one looks like a hang.
NOTICE_AFTER_S = 2.0
# A server silent this long is said to be so, once: a slow first token is normal up to here.
SILENT_NOTICE_S = 15.0
RETRY_STATUSES = frozenset({408, 409, 429})  # and every 5xx


@dataclass(frozen=True)
class RetryRule:
    deadline: float  # seconds for the whole request, retries and waits included
    timeout: float  # seconds for one attempt
    retries: int  # retries at most, after the first attempt
    subject: str  # how a notice names the server: "The LLM server at …", "The OpenAI API"


@dataclass
class Attempts:
    """What happened to one request: filled in by `call_with_retries`, read by error messages."""

    retries: int = 0
    timeout: float = 0.0  # the last attempt's timeout: the deadline may have cut it short
    refused_wait: float | None = None  # a Retry-After that did not fit in the deadline


@dataclass(frozen=True)
class _Failure:
    what: str  # for a notice: "is busy (HTTP 429)"
    retry_after: float | None  # what the server asked to wait, if it did


_notice_lock = threading.Lock()
_last_notice: dict[str, float] = {}  # when each server's last notice was given (time.monotonic)


def call_with_retries(
    attempt: Callable[[float], T], rule: RetryRule, tries: Attempts | None = None
) -> T:
    """`attempt(timeout)` until it succeeds or the rule gives up (then its last error is raised)."""
    tries = tries if tries is not None else Attempts()
    start = time.monotonic()
    while True:
        tries.timeout = min(rule.timeout, rule.deadline - (time.monotonic() - start))
        silent = threading.Timer(
            SILENT_NOTICE_S,
            _notice,
            (f"{rule.subject} has not answered for {SILENT_NOTICE_S:g} s; still waiting", rule),
        )
        silent.daemon = True
        if tries.timeout > SILENT_NOTICE_S:
            silent.start()
        try:
            return attempt(tries.timeout)
        except Exception as exc:
            silent.cancel()
            wait = _wait_before_retry(exc, rule, tries, time.monotonic() - start)
            if wait is None:
                raise
        finally:
            silent.cancel()
        time.sleep(wait)
        tries.retries += 1


def _wait_before_retry(
    exc: Exception, rule: RetryRule, tries: Attempts, elapsed: float
) -> float | None:
    """How long to wait before retrying after `exc` (None: give up), announced when the user
    would notice it."""
    failure = _classify(exc, tries.timeout)
    if failure is None or tries.retries >= rule.retries:
        return None
    wait = failure.retry_after
    if wait is None:
        wait = _backoff(tries.retries)
    if elapsed + wait + min(MIN_ATTEMPT_S, rule.timeout) > rule.deadline:
        if failure.retry_after is not None:
            tries.refused_wait = failure.retry_after
        return None
    if wait >= NOTICE_AFTER_S:
        _notice(f"{rule.subject} {failure.what}; retrying in {_seconds(wait)} s", rule)
    return wait


def error_chain(exc: BaseException) -> list[BaseException]:
    """`exc` and its causes, outermost first."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # json's scanner leaves a StopIteration as the context of "Expecting value": not a reason
        if not isinstance(current, StopIteration) or not chain:
            chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def refused_wait_message(subject: str, tries: Attempts, rule_deadline: float) -> str | None:
    """The error of a request the server asked to retry later than the deadline allows."""
    if tries.refused_wait is None:
        return None
    return (
        f"{subject} asks to wait {_seconds(tries.refused_wait)} s before a retry (Retry-After), "
        f"which would overrun BOT_LLM_DEADLINE ({rule_deadline:g} s); try again later or "
        "raise BOT_LLM_DEADLINE"
    )


def _classify(exc: BaseException, timeout: float) -> _Failure | None:
    """What a failed attempt was, when it is worth retrying (None: it is not)."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status not in RETRY_STATUSES and status < 500:
            return None
        what = "is busy (HTTP 429)" if status == 429 else f"answered HTTP {status}"
        return _Failure(what, _retry_after(exc.response.headers))
    if isinstance(exc, openai.APITimeoutError):
        return _Failure(f"did not answer within {timeout:g} s", None)
    if isinstance(exc, openai.APIConnectionError):
        if any(isinstance(e, ConnectionRefusedError) for e in error_chain(exc)):
            return None
        if "connection refused" in " ".join(str(e) for e in error_chain(exc)).lower():
            return None
        return _Failure("closed the connection", None)
    return None


def _retry_after(headers: Any) -> float | None:
    """The wait a server asks for in Retry-After(-ms), in seconds (None: it did not ask, or asked
    for none, which would hammer it: the backoff applies then)."""
    try:
        if headers.get("retry-after-ms"):
            seconds = float(headers["retry-after-ms"]) / 1000
        elif not headers.get("retry-after"):
            return None
        else:
            value = headers["retry-after"]
            try:
                seconds = float(value)
            except ValueError:
                seconds = parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if seconds > 0 else None


def _backoff(retries_done: int) -> float:
    wait = min(BACKOFF_FIRST_S * 2**retries_done, BACKOFF_MAX_S)
    return wait * (1 - BACKOFF_JITTER * random.random())


def _notice(message: str, rule: RetryRule) -> None:
    """One line for a wait, unless another request's notice was given within the deadline."""
    with _notice_lock:
        now = time.monotonic()
        if now - _last_notice.get(rule.subject, float("-inf")) < rule.deadline:
            return
        _last_notice[rule.subject] = now
    warnings.warn(
        f"{message} (gives up after {rule.deadline:g} s, BOT_LLM_DEADLINE)…", BotNotice, 3
    )


def _seconds(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}".removesuffix(".0")
