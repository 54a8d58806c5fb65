"""Fetching pages and feeds politely: http(s) only, robots.txt obeyed, a few requests at once per
host with a delay between them, timeouts, bounded retries on 429 and 5xx (honouring Retry-After),
redirects up to a limit, a size cap counted after decompression, content types checked, and
conditional GET from a small cache of validators. Every failure is one `WebError` line."""

from __future__ import annotations

import email.utils
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from bot import __version__
from bot.core.errors import WebError
from bot.core.settings import Settings
from bot.sources.web.charset import decode_body
from bot.sources.web.validators import ValidatorCache

if TYPE_CHECKING:
    from bot.sources.web.transport import Answer

USER_AGENT = f"bot/{__version__} (news question answering; +https://pypi.org/project/bot)"
ROBOTS_AGENT = "bot"  # the token robots.txt rules name
FETCHED_SCHEMES = ("http", "https")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# The first retry waits this long (doubling after), unless the server says how long.
BACKOFF_SECONDS = 0.5
# Media types worth reading: pages, feeds and the generic XML/JSON types feeds are served as.
ACCEPTED_TYPES = frozenset(
    {
        "text/html", "application/xhtml+xml", "text/plain", "application/rss+xml",
        "application/atom+xml", "application/rdf+xml", "application/xml", "text/xml",
        "application/feed+json", "application/json",
    }
)  # fmt: skip
_CHUNK = 64 * 1024  # bytes inflated at most per step, so a compression bomb stops at the cap


@dataclass
class FetchResult:
    url: str  # the URL asked for
    final_url: str  # after redirects
    status: int  # 200, or 304 when the cached validators still hold
    content_type: str = ""
    text: str = ""
    etag: str = ""
    last_modified: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def check_scheme(url: str) -> None:
    """Only http and https are fetched; anything else (file:, ftp:, javascript:) is one line."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in FETCHED_SCHEMES or not urlsplit(url).hostname:
        what = f"{scheme}:" if scheme else "no scheme"
        raise WebError(url, f"not an http(s) URL ({what}); only http and https are fetched")


class HostGate:
    """At most `per_host` requests at once to one host, and `delay` seconds between the start of
    a request that may bring a body and the next start. A conditional request (validators held)
    makes no later one wait: an unchanged page or feed costs its host one 304 without a body,
    not the load the delay exists to spread (it still waits its turn after a request that may
    bring one). When it does bring a body, `charge` makes the next start wait the delay from
    then. A robots.txt Crawl-delay, the site's own word, spaces every request."""

    def __init__(self, per_host: int, delay: float) -> None:
        self.per_host, self.delay = per_host, delay
        self._lock = threading.Lock()
        self._slots: dict[str, threading.Semaphore] = {}
        self._next: dict[str, float] = {}

    def enter(
        self, host: str, delay: float | None = None, *, conditional: bool = False
    ) -> threading.Semaphore:
        with self._lock:
            slot = self._slots.setdefault(host, threading.Semaphore(self.per_host))
        slot.acquire()
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next.get(host, now))
            own = 0.0 if conditional else self.delay
            self._next[host] = start + max(own, delay or 0.0)
        if start > now:
            time.sleep(start - now)
        return slot

    def charge(self, host: str) -> None:
        """A conditional request brought a body after all: the next start waits the delay."""
        with self._lock:
            now = time.monotonic()
            self._next[host] = max(self._next.get(host, now), now + self.delay)


class Fetcher:
    """One client for a command: connection reuse, robots.txt per host, the validator cache."""

    def __init__(self, settings: Settings, cache: ValidatorCache | None = None) -> None:
        from bot.sources.web.transport import Connections

        self.settings = settings
        self.cache = cache
        self.max_bytes = int(settings.web_max_mb * 1024 * 1024)
        self.gate = HostGate(settings.web_per_host, settings.web_host_delay)
        self._robots: dict[str, Any] = {}
        self._robots_lock = threading.Lock()
        read = settings.web_read_timeout
        timeouts = {"connect": settings.web_connect_timeout, "read": read, "write": read}
        # No proxy from the environment: fetch what the user named.
        self.connections = Connections(settings.web_workers * 2, {**timeouts, "pool": None})

    def close(self) -> None:
        self.connections.close()

    @contextmanager
    def _get(self, url: str, headers: dict[str, str]) -> Iterator[Answer]:
        """The answer at the end of `url`'s redirects (at most BOT_WEB_MAX_REDIRECTS, each to
        http or https only). Raises WebError."""
        from bot.sources.web.transport import TRANSPORT_ERRORS

        sent = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", **headers}
        at = url
        try:
            for _ in range(self.settings.web_max_redirects + 1):
                with self.connections.get(at, sent) as answer:
                    location = answer.headers.get("location", "")
                    if answer.status not in REDIRECT_STATUSES or not location:
                        yield answer
                        return
                at = urljoin(at, location.strip())
                if urlsplit(at).scheme.lower() not in FETCHED_SCHEMES:
                    raise WebError(url, "redirected to a URL that is not http(s)")
        except TRANSPORT_ERRORS as exc:
            raise WebError(url, _transport_cause(exc, self.settings)) from None
        limit = self.settings.web_max_redirects
        raise WebError(url, f"more than {limit} redirects (BOT_WEB_MAX_REDIRECTS)")

    def fetch(self, url: str, *, conditional: bool = False) -> FetchResult:
        """The page or feed at `url`: decoded text, or status 304 when `conditional` and the
        cached validators still hold. Raises WebError."""
        check_scheme(url)
        delay = self._robots_delay(url)
        headers = self.cache.headers(url) if (conditional and self.cache is not None) else {}
        host, attempt = _host(url), 0
        while True:
            slot = self.gate.enter(host, delay, conditional=bool(headers))
            try:
                result, wait = self._get_once(url, headers, attempt)
            finally:
                slot.release()
            if result is not None:
                if headers and not result.not_modified:
                    self.gate.charge(host)
                return result
            time.sleep(wait)
            attempt += 1

    def _get_once(
        self, url: str, headers: dict[str, str], attempt: int
    ) -> tuple[FetchResult | None, float]:
        """One request: (the result, 0) or (None, seconds to wait before the next attempt)."""
        with self._get(url, headers) as response:
            if response.status in RETRY_STATUSES:
                return None, self._retry_wait(url, response, attempt)
            return self._read(url, response), 0.0

    def _retry_wait(self, url: str, response: Answer, attempt: int) -> float:
        status = f"{response.status} {response.reason}".strip()
        if attempt >= self.settings.web_retries:
            tries = attempt + 1
            raise WebError(url, f"HTTP {status} ({tries} tr{'y' if tries == 1 else 'ies'})")
        asked = _retry_after(response.headers.get("retry-after", ""))
        wait = BACKOFF_SECONDS * 2**attempt if asked is None else asked
        if wait > self.settings.web_retry_max_wait:
            raise WebError(
                url,
                f"HTTP {status}, asks to wait {wait:.0f}s (more than BOT_WEB_RETRY_MAX_WAIT)",
            )
        return wait

    def _read(self, url: str, response: Answer) -> FetchResult:
        final = response.url
        if response.status == 304:
            return FetchResult(url, final, 304)
        if response.status >= 400:
            raise WebError(url, f"HTTP {response.status} {response.reason}".strip())
        media = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media and media not in ACCEPTED_TYPES:
            raise WebError(url, f"not a page or feed (content type {media})")
        body = self._body(url, response)
        warnings: list[str] = []
        text = decode_body(url, body, response.headers.get("content-type", ""), warnings)
        return FetchResult(
            url,
            final,
            response.status,
            content_type=media,
            text=text,
            etag=response.headers.get("etag", ""),
            last_modified=response.headers.get("last-modified", ""),
            warnings=warnings,
        )

    def _body(self, url: str, response: Answer) -> bytes:
        """The body, inflated step by step and refused past the cap, whatever it claims."""
        too_large = WebError(url, f"too large (more than {self.settings.web_max_mb:g} MB)")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise too_large
        inflater = _inflater(url, response.headers.get("content-encoding", ""))
        parts: list[bytes] = []
        size = 0
        for raw in response.body:
            pending = raw
            while pending:
                piece = inflater.decompress(pending, _CHUNK) if inflater else pending
                pending = inflater.unconsumed_tail if inflater else b""
                size += len(piece)
                if size > self.max_bytes:
                    raise too_large
                parts.append(piece)
        if inflater is not None:
            tail = inflater.flush()
            if size + len(tail) > self.max_bytes:
                raise too_large
            parts.append(tail)
        return b"".join(parts)

    def _robots_delay(self, url: str) -> float | None:
        """robots.txt of the URL's host (fetched once): WebError when it disallows the URL;
        else the crawl delay it asks for, if any."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._robots_lock:
            rules = self._robots.get(origin)
            if rules is None:
                rules = self._robots[origin] = self._load_robots(origin)
        if not rules.can_fetch(ROBOTS_AGENT, url):
            raise WebError(url, "disallowed by robots.txt")
        delay = rules.crawl_delay(ROBOTS_AGENT)
        return float(delay) if delay is not None else None

    def _load_robots(self, origin: str) -> Any:
        from urllib.robotparser import RobotFileParser

        rules = RobotFileParser()
        lines: list[str] = []  # no robots.txt to read: nothing is disallowed
        # One small file per host and run: spaced like a conditional request.
        slot = self.gate.enter(_host(origin), conditional=True)
        try:
            with self._get(origin + "/robots.txt", {}) as response:
                if response.status in (401, 403):
                    lines = ["User-agent: *", "Disallow: /"]
                elif response.status < 400:
                    body = self._body(origin + "/robots.txt", response)
                    lines = body.decode("utf-8", "replace").splitlines()
        except WebError:
            pass
        finally:
            slot.release()
        rules.parse(lines)
        return rules


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _inflater(url: str, encoding: str) -> Any:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise WebError(url, f"unsupported content encoding {encoding!r}")


def _retry_after(value: str) -> float | None:
    """Seconds a Retry-After header asks for (a number or an HTTP date); None when absent."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _transport_cause(exc: Exception, settings: Settings) -> str:
    """The cause of a failed request in a few words: DNS, refused, timeout."""
    import httpcore

    text = str(exc).lower()
    if isinstance(exc, httpcore.ConnectTimeout):
        return f"timed out connecting (BOT_WEB_CONNECT_TIMEOUT={settings.web_connect_timeout:g}s)"
    if isinstance(exc, httpcore.TimeoutException):
        return f"timed out reading (BOT_WEB_READ_TIMEOUT={settings.web_read_timeout:g}s)"
    if isinstance(exc, httpcore.ConnectError):
        if "name or service" in text or "name resolution" in text or "nodename" in text:
            return "DNS lookup failed (no such host)"
        if "refused" in text:
            return "connection refused"
        return f"cannot connect: {exc}"
    return f"{type(exc).__name__}: {exc}"
