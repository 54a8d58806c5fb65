"""The one home of redaction: no secret reaches a message, a log record, JSON output or a cassette.

A secret is found two ways. By shape: `sk-…` keys, `Bearer …` tokens, the credentials of a URL
(`https://user:pass@host`) and the values of key-like query parameters (`?api-key=…`). By value:
whatever the configured key, the credentials of a configured URL and every `*_KEY`, `*_TOKEN` or
`*_SECRET` environment variable or `.env` entry hold, whatever their shape, and any long enough
piece of one (a server may echo part of a key).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit

REDACTED = "[redacted]"
REDACTED_IN_URL = "redacted"  # brackets in a URL's host part would read as an IPv6 address
SECRET_NAME_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET")
# Shorter values are too likely to be ordinary words or numbers to strip them from every text.
MIN_SECRET_CHARS = 6
# A run of this many characters of a secret is redacted too: long enough never to be a common
# word, short enough to catch a key a server echoes in part (a key cut short by the server).
MIN_FRAGMENT_CHARS = 12

_KEY_SHAPED = re.compile(r"sk-[A-Za-z0-9_\-*]{6,}|Bearer\s+\S+")
_URL_USERINFO = re.compile(r"(?<=://)[^/\s@?#]+@")
_KEYLIKE_QUERY = re.compile(
    r"(?i)([?&](?:[a-z0-9_\-]*(?:key|token|secret|password|sig|signature)[a-z0-9_\-]*)=)[^&#\s]+"
)

_known: set[str] = set()
_lock = threading.Lock()
_log_redaction = threading.Event()  # set once the log record factory redacts


def is_secret_name(name: str) -> bool:
    """Whether a setting or environment variable of this name holds a secret."""
    return name.upper().endswith(SECRET_NAME_SUFFIXES)


def remember_secret(value: str | None) -> None:
    """Redact `value` (and, when it is a URL, its credentials) from now on."""
    if value:
        _remember([value, *_url_secrets(value)])


def remember_url_credentials(url: str | None) -> None:
    """Redact the credentials a URL holds (user and password, key-like query values)."""
    if url:
        _remember(_url_secrets(url))


def _remember(values: list[str]) -> None:
    with _lock:
        _known.update(v for v in values if len(v) >= MIN_SECRET_CHARS)


def remember_secrets(entries: Mapping[str, str | None]) -> None:
    """Redact the values of the secret-named entries of `entries` (an environment, a `.env`)."""
    for name, value in entries.items():
        if is_secret_name(name):
            remember_secret(value)


def redact(text: str) -> str:
    """`text` with every secret it holds, by shape or by value, replaced by "[redacted]"."""
    if not text:
        return text
    text = _KEY_SHAPED.sub(REDACTED, text)
    text = _URL_USERINFO.sub(REDACTED_IN_URL + "@", text)
    text = _KEYLIKE_QUERY.sub(lambda m: m.group(1) + REDACTED_IN_URL, text)
    return _redact_values(text, _secret_values())


def install_log_redaction() -> None:
    """Make every log record of this process (bot's and every library's) carry its message
    already redacted, whichever handler writes it."""
    with _lock:
        if _log_redaction.is_set():  # once per process: main() may run more than once
            return
        _log_redaction.set()
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: the logging module reports it itself
            return record
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return record

    logging.setLogRecordFactory(factory)


def _secret_values() -> list[str]:
    remember_secrets(dict(os.environ))
    with _lock:
        return sorted(_known, key=len, reverse=True)


def _url_secrets(value: str) -> list[str]:
    if "://" not in value:
        return []
    try:
        parts = urlsplit(value.strip())
        found = [parts.password or "", parts.username or ""] if parts.password else []
        found += [v for k, v in parse_qsl(parts.query) if _KEYLIKE_QUERY.search(f"?{k}=x")]
    except ValueError:  # not a URL after all
        return []
    return found


def _redact_values(text: str, secrets: Iterable[str]) -> str:
    spans: list[tuple[int, int]] = []
    for secret in secrets:
        start = text.find(secret)
        while start >= 0:
            spans.append((start, start + len(secret)))
            start = text.find(secret, start + 1)
        spans += _fragment_spans(text, secret)
    if not spans:
        return text
    out, end = [], 0
    for start, stop in _merged(spans):
        out += [text[end:start], REDACTED]
        end = stop
    return "".join(out) + text[end:]


def _fragment_spans(text: str, secret: str) -> list[tuple[int, int]]:
    """Where runs of at least MIN_FRAGMENT_CHARS characters of `secret` occur in `text`."""
    n = MIN_FRAGMENT_CHARS
    if len(secret) < n or len(text) < n:
        return []
    spans = []
    for gram in {secret[i : i + n] for i in range(len(secret) - n + 1)}:
        start = text.find(gram)
        while start >= 0:
            spans.append((start, start + n))
            start = text.find(gram, start + 1)
    return spans


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged
