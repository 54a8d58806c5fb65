"""The fetcher against a real HTTP server on 127.0.0.1: limits, retries, robots.txt, charsets,
size caps (a gzip bomb, a 50 MB page), conditional GET. Nothing here leaves 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bot import __version__
from bot.core.errors import WebError
from bot.core.settings import Settings
from bot.sources.web.fetch import Fetcher
from bot.sources.web.validators import ValidatorCache
from tests.web_fixtures import STORIES, article_page, gzip_bomb


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return ("127.0.0.1", 0)


def _fetcher(tmp_path: Path, **limits: object) -> Fetcher:
    settings = Settings(web_host_delay=0, **limits)  # type: ignore[arg-type]
    return Fetcher(settings, ValidatorCache(tmp_path / "validators.json"))


@pytest.fixture
def server(httpserver: HTTPServer) -> Iterator[HTTPServer]:
    httpserver.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nDisallow: /private\n", content_type="text/plain"
    )
    yield httpserver


def _page() -> str:
    return article_page(*STORIES[0])


def test_user_agent_names_bot_and_its_version(server: HTTPServer, tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: Request) -> Response:
        seen.append(request.headers.get("User-Agent", ""))
        return Response(_page(), content_type="text/html")

    server.expect_request("/a").respond_with_handler(handler)
    result = _fetcher(tmp_path).fetch(server.url_for("/a"))
    assert "Harbour bridge" in result.text
    assert seen and seen[0].startswith(f"bot/{__version__}")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "javascript:alert(1)", "data:text/html,x"]
)
def test_only_http_and_https_are_fetched(tmp_path: Path, url: str) -> None:
    with pytest.raises(WebError, match="only http and https") as caught:
        _fetcher(tmp_path).fetch(url)
    assert "\n" not in str(caught.value) and url in str(caught.value)


def test_a_redirect_chain_is_followed_up_to_the_limit(server: HTTPServer, tmp_path: Path) -> None:
    for n in range(4):
        server.expect_request(f"/r{n}").respond_with_response(
            Response(status=302, headers={"Location": f"/r{n + 1}"})
        )
    server.expect_request("/r4").respond_with_data(_page(), content_type="text/html")
    result = _fetcher(tmp_path, web_max_redirects=5).fetch(server.url_for("/r0"))
    assert result.final_url.endswith("/r4")
    with pytest.raises(WebError, match="more than 2 redirects"):
        _fetcher(tmp_path, web_max_redirects=2).fetch(server.url_for("/r0"))


def test_a_redirect_to_a_file_url_is_refused(server: HTTPServer, tmp_path: Path) -> None:
    server.expect_request("/sneaky").respond_with_response(
        Response(status=301, headers={"Location": "file:///etc/passwd"})
    )
    with pytest.raises(WebError, match="not http"):
        _fetcher(tmp_path).fetch(server.url_for("/sneaky"))


def test_429_then_success_honours_retry_after(server: HTTPServer, tmp_path: Path) -> None:
    calls: list[float] = []

    def handler(request: Request) -> Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return Response("slow down", status=429, headers={"Retry-After": "1"})
        return Response(_page(), content_type="text/html")

    server.expect_request("/busy").respond_with_handler(handler)
    result = _fetcher(tmp_path).fetch(server.url_for("/busy"))
    assert result.status == 200 and len(calls) == 2
    assert calls[1] - calls[0] >= 0.95


def test_a_500_is_retried_a_bounded_number_of_times(server: HTTPServer, tmp_path: Path) -> None:
    calls: list[int] = []

    def handler(request: Request) -> Response:
        calls.append(1)
        return Response("oops", status=500)

    server.expect_request("/broken").respond_with_handler(handler)
    with pytest.raises(WebError, match="HTTP 500"):
        _fetcher(tmp_path, web_retries=2).fetch(server.url_for("/broken"))
    assert len(calls) == 3


def test_a_long_retry_after_fails_at_once(server: HTTPServer, tmp_path: Path) -> None:
    server.expect_request("/later").respond_with_response(
        Response("", status=503, headers={"Retry-After": "3600"})
    )
    started = time.monotonic()
    with pytest.raises(WebError, match="asks to wait 3600s"):
        _fetcher(tmp_path).fetch(server.url_for("/later"))
    assert time.monotonic() - started < 2


def test_404_timeout_refused_and_dns_are_named(server: HTTPServer, tmp_path: Path) -> None:
    server.expect_request("/gone").respond_with_data("no", status=404)

    def slow(request: Request) -> Response:
        time.sleep(1.5)
        return Response(_page(), content_type="text/html")

    server.expect_request("/slow").respond_with_handler(slow)
    fetcher = _fetcher(tmp_path, web_read_timeout=0.5)
    with pytest.raises(WebError, match="HTTP 404"):
        fetcher.fetch(server.url_for("/gone"))
    with pytest.raises(WebError, match="timed out reading"):
        fetcher.fetch(server.url_for("/slow"))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(WebError, match="connection refused"):
        fetcher.fetch(f"http://127.0.0.1:{port}/x")
    # `.invalid` never resolves (RFC 2606): the resolver answers without a query leaving
    with pytest.raises(WebError, match="DNS|cannot connect"):
        fetcher.fetch("http://no-such-host.invalid/x")


def test_a_gzip_bomb_stops_at_the_cap(server: HTTPServer, tmp_path: Path) -> None:
    bomb = gzip_bomb(200)
    assert len(bomb) < 1024 * 1024
    server.expect_request("/bomb").respond_with_response(
        Response(bomb, content_type="text/html", headers={"Content-Encoding": "gzip"})
    )
    started = time.monotonic()
    with pytest.raises(WebError, match="too large"):
        _fetcher(tmp_path, web_max_mb=2).fetch(server.url_for("/bomb"))
    assert time.monotonic() - started < 5


def test_a_50_mb_page_is_refused_without_reading_it_all(server: HTTPServer, tmp_path: Path) -> None:
    sent: list[int] = []

    def stream() -> Iterator[bytes]:
        block = b"<p>" + b"x" * (1024 * 1024 - 7) + b"</p>\n"
        for _ in range(50):
            sent.append(len(block))
            yield block

    server.expect_request("/huge").respond_with_handler(
        lambda request: Response(stream(), content_type="text/html")  # no Content-Length
    )
    with pytest.raises(WebError, match="too large"):
        _fetcher(tmp_path, web_max_mb=5).fetch(server.url_for("/huge"))
    server.expect_request("/declared").respond_with_data(
        b"x" * (6 * 1024 * 1024), content_type="text/html"
    )
    with pytest.raises(WebError, match="too large"):
        _fetcher(tmp_path, web_max_mb=5).fetch(server.url_for("/declared"))


def test_a_content_type_that_is_no_page_or_feed_is_refused(
    server: HTTPServer, tmp_path: Path
) -> None:
    server.expect_request("/pic").respond_with_data(b"\x89PNG....", content_type="image/png")
    with pytest.raises(WebError, match="not a page or feed .content type image/png"):
        _fetcher(tmp_path).fetch(server.url_for("/pic"))


def test_charsets_come_from_the_header_and_the_markup(server: HTTPServer, tmp_path: Path) -> None:
    page = article_page("Café société", "Crème brûlée for the déjà vu", charset="windows-1252")
    server.expect_request("/cp").respond_with_data(
        page.encode("cp1252"), content_type="text/html; charset=utf-8"
    )
    server.expect_request("/latin").respond_with_data(
        page.encode("cp1252"), content_type="text/html; charset=windows-1252"
    )
    server.expect_request("/junk").respond_with_data(
        b"<html><p>\xff\xfe\x81\x8d garbage</p></html>", content_type="text/html; charset=utf-8"
    )
    fetcher = _fetcher(tmp_path)
    wrong = fetcher.fetch(server.url_for("/cp"))
    assert "Crème brûlée" in wrong.text
    assert any("not valid utf-8" in w and "windows-1252" in w for w in wrong.warnings)
    right = fetcher.fetch(server.url_for("/latin"))
    assert "Crème brûlée" in right.text and not right.warnings
    with pytest.raises(WebError, match="bad charset"):
        fetcher.fetch(server.url_for("/junk"))


def test_robots_txt_is_obeyed_and_read_once(server: HTTPServer, tmp_path: Path) -> None:
    server.expect_request("/open").respond_with_data(_page(), content_type="text/html")
    fetcher = _fetcher(tmp_path)
    with pytest.raises(WebError, match="disallowed by robots.txt"):
        fetcher.fetch(server.url_for("/private/story"))
    fetcher.fetch(server.url_for("/open"))
    fetcher.fetch(server.url_for("/open"))
    robots = [r for r, _ in server.log if r.path == "/robots.txt"]
    assert len(robots) == 1


def test_conditional_get_costs_one_304(server: HTTPServer, tmp_path: Path) -> None:
    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response(_page(), content_type="text/html", headers={"ETag": '"v1"'})

    server.expect_request("/cond").respond_with_handler(handler)
    fetcher = _fetcher(tmp_path)
    url = server.url_for("/cond")
    first = fetcher.fetch(url, conditional=True)
    assert first.status == 200 and first.etag == '"v1"'
    assert fetcher.cache is not None
    fetcher.cache.remember(url, etag=first.etag, canonical=url)
    fetcher.cache.save()
    again = _fetcher(tmp_path).fetch(url, conditional=True)
    assert again.not_modified and again.text == ""


def test_requests_to_one_host_are_limited_and_spaced(tmp_path: Path) -> None:
    lock = threading.Lock()
    now = {"at_once": 0, "most": 0}
    starts: list[float] = []

    def handler(request: Request) -> Response:
        with lock:
            now["at_once"] += 1
            now["most"] = max(now["most"], now["at_once"])
            starts.append(time.monotonic())
        time.sleep(0.5)
        with lock:
            now["at_once"] -= 1
        return Response(_page(), content_type="text/html")

    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)  # answers requests at once
    server.expect_request("/p").respond_with_handler(handler)
    server.start()
    try:
        fetcher = Fetcher(Settings(web_host_delay=0.1, web_per_host=2))
        threads = [
            threading.Thread(target=fetcher.fetch, args=(server.url_for("/p"),)) for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.stop()
    assert now["most"] == 2
    starts.sort()
    # Six starts at least 0.1 s apart span 0.5 s, whatever the scheduler does to each one.
    assert starts[-1] - starts[0] >= 0.45


def test_conditional_requests_are_not_spaced_by_the_host_delay(
    server: HTTPServer, tmp_path: Path
) -> None:
    """A 304 costs its host no body: twelve conditional requests do not wait 0.4 s each, while
    two that fetch bodies, and a conditional one that brings a body, still do."""

    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"' and "changed" not in request.path:
            return Response(status=304)
        return Response(_page(), content_type="text/html", headers={"ETag": '"v1"'})

    for path in ("/f", "/changed", "/plain"):
        server.expect_request(path).respond_with_handler(handler)
    cache = ValidatorCache(tmp_path / "validators.json")
    for path in ("/f", "/changed"):
        cache.remember(server.url_for(path), etag='"v1"')
    fetcher = Fetcher(Settings(web_host_delay=0.4, web_per_host=2), cache)
    fetcher.fetch(server.url_for("/plain"))  # robots.txt read; the next body waits 0.4 s
    time.sleep(0.4)
    started = time.monotonic()
    for _ in range(12):
        assert fetcher.fetch(server.url_for("/f"), conditional=True).not_modified
    assert time.monotonic() - started < 0.4 * 3
    assert fetcher.fetch(server.url_for("/changed"), conditional=True).status == 200
    started = time.monotonic()
    fetcher.fetch(server.url_for("/f"), conditional=True)  # waits for the body before it
    fetcher.fetch(server.url_for("/plain"))
    fetcher.fetch(server.url_for("/plain"))
    assert time.monotonic() - started >= 0.4 * 2 - 0.05


def test_a_crawl_delay_spaces_conditional_requests_too(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nCrawl-delay: 1\n", content_type="text/plain"
    )
    httpserver.expect_request("/f").respond_with_data("", status=304)
    cache = ValidatorCache(tmp_path / "validators.json")
    cache.remember(httpserver.url_for("/f"), etag='"v1"')
    fetcher = Fetcher(Settings(web_host_delay=0), cache)
    started = time.monotonic()
    for _ in range(3):
        assert fetcher.fetch(httpserver.url_for("/f"), conditional=True).not_modified
    assert time.monotonic() - started >= 2 - 0.05  # the site's own word: 1 s between requests


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_is_verified_also_after_a_redirect_from_http(
    server: HTTPServer, tmp_path: Path
) -> None:
    """The https transport is built only when an https URL comes, and it checks certificates:
    a self-signed one fails in one line, reached directly or by a redirect from http."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    secure = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    secure.expect_request("/p").respond_with_data(_page(), content_type="text/html")
    secure.start()
    try:
        url = secure.url_for("/p")
        assert url.startswith("https://")
        server.expect_request("/moved").respond_with_data("", status=301, headers={"Location": url})
        fetcher = _fetcher(tmp_path)
        assert fetcher.fetch(server.url_for("/robots.txt")).status == 200  # plain http
        for start in (url, server.url_for("/moved")):
            with pytest.raises(WebError, match="CERTIFICATE_VERIFY_FAILED") as caught:
                fetcher.fetch(start)
            assert "\n" not in str(caught.value)
    finally:
        secure.stop()
