"""`bot ingest URL`, `bot feeds`, `bot update` and `bot forget` against a real HTTP server on
127.0.0.1, with the real index and the bundled MiniLM. Nothing here leaves 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from rich.console import Console
from werkzeug import Request, Response

from bot.app.ask import AskOptions, answer_question
from bot.app.feeds import FollowedFeed, add_feed, load_feeds, remove_feed
from bot.app.ingest import ingest_paths, list_sources
from bot.app.ingest_run import IngestReport
from bot.app.summarise import SummariseOptions, summarise
from bot.app.web_ingest import ForgetBefore, WebIngest, update_feeds
from bot.core.errors import BotError
from bot.core.settings import Settings
from bot.sources.web.feed import parse_feed
from bot.ui.render import render_answer
from tests.web_fixtures import STORIES, article_page, atom, json_feed, rss


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return ("127.0.0.1", 0)


@pytest.fixture
def site(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[HTTPServer]:
    """Three stories at canonical URLs, an RSS feed linking them with tracking parameters, and an
    AMP copy of the first story that names it as canonical."""
    monkeypatch.setenv("BOT_WEB_HOST_DELAY", "0")
    httpserver.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nDisallow: /private\n", content_type="text/plain"
    )
    for n, (title, body) in enumerate(STORIES):
        page = article_page(title, body, canonical=httpserver.url_for(f"/story/{n}"))
        httpserver.expect_request(f"/story/{n}").respond_with_data(page, content_type="text/html")
    amp = article_page(*STORIES[0], canonical=httpserver.url_for("/story/0"))
    httpserver.expect_request("/amp/story/0").respond_with_data(amp, content_type="text/html")
    items = [
        (t, httpserver.url_for(f"/story/{n}") + "?utm_source=rss")
        for n, (t, _) in enumerate(STORIES)
    ]
    httpserver.expect_request("/rss").respond_with_data(
        rss(items), content_type="application/rss+xml"
    )
    yield httpserver


def _web(**kw: Any) -> IngestReport:
    return ingest_paths(None, web=WebIngest(Settings(), **kw))


def test_a_feed_url_ingests_its_items_under_canonical_urls(site: HTTPServer) -> None:
    report = _web(urls=[site.url_for("/rss")])
    assert (report.added, report.failed) == (3, 0)
    rows = list_sources()
    assert sorted(r["path"] for r in rows) == [site.url_for(f"/story/{n}") for n in range(3)]
    assert {r["source"] for r in rows} == {"Harbour Times"}
    assert {r["published"][:10] for r in rows} == {"2024-03-04"}
    again = _web(urls=[site.url_for("/rss"), site.url_for("/amp/story/0")])
    assert (again.added, again.updated, again.chunks_embedded) == (0, 0, 0)
    assert again.unchanged == 4  # the AMP copy is the same article
    assert len(list_sources()) == 3


def test_a_changed_page_keeps_its_article_id(httpserver: HTTPServer) -> None:
    texts = [STORIES[1][1], STORIES[1][1] + " " + STORIES[2][1] * 4]

    def handler(request: Request) -> Response:
        return Response(article_page(STORIES[1][0], texts[0]), content_type="text/html")

    httpserver.expect_request("/tram").respond_with_handler(handler)
    url = httpserver.url_for("/tram")
    assert _web(urls=[url]).added == 1
    [before] = list_sources()
    texts.pop(0)
    report = _web(urls=[url])
    assert (report.added, report.updated) == (0, 1)
    [after] = list_sources()
    assert after["article_id"] == before["article_id"]
    assert after["chars"] > before["chars"] and after["chunks"] > before["chunks"]


def test_bad_urls_fail_one_line_each_and_the_others_go_on(site: HTTPServer) -> None:
    site.expect_request("/missing").respond_with_data("no", status=404)
    site.expect_request("/img").respond_with_data(b"GIF89a", content_type="image/gif")
    urls = ["file:///etc/passwd", "javascript:alert(1)", site.url_for("/missing")]
    urls += [site.url_for("/img"), site.url_for("/private/x"), site.url_for("/story/2")]
    report = _web(urls=urls)
    assert (report.added, report.failed) == (1, 5)
    causes = {e["path"]: e["error"] for e in report.errors}
    assert "only http and https" in causes["file:///etc/passwd"]
    assert "only http and https" in causes["javascript:alert(1)"]
    assert "HTTP 404" in causes[site.url_for("/missing")]
    assert "content type image/gif" in causes[site.url_for("/img")]
    assert "robots.txt" in causes[site.url_for("/private/x")]
    assert all("\n" not in c for c in causes.values())


def test_feeds_add_list_remove(httpserver: HTTPServer) -> None:
    settings = Settings()
    add_feed(httpserver.url_for("/rss"), "harbour", settings)
    add_feed(httpserver.url_for("/atom"), None, settings)
    assert [f.name for f in load_feeds(settings)] == ["harbour", "127.0.0.1"]
    with pytest.raises(BotError, match="Already following"):
        add_feed(httpserver.url_for("/rss"), "other", settings)
    with pytest.raises(BotError, match="only http and https"):
        add_feed("file:///etc/feed.xml", None, settings)
    remove_feed("harbour", settings)
    assert [f.url for f in load_feeds(settings)] == [httpserver.url_for("/atom")]


def test_update_takes_new_items_and_a_304_feed_costs_one_request(site: HTTPServer) -> None:
    calls: list[str] = []

    def feed(request: Request) -> Response:
        calls.append(request.headers.get("If-None-Match", ""))
        if request.headers.get("If-None-Match") == '"f1"':
            return Response(status=304)
        links = [(t, site.url_for(f"/story/{n}")) for n, (t, _) in enumerate(STORIES)]
        return Response(atom(links), content_type="application/atom+xml", headers={"ETag": '"f1"'})

    site.expect_request("/atom").respond_with_handler(feed)
    site.expect_request("/broken").respond_with_data("oops", status=500)
    feeds = [
        FollowedFeed(site.url_for("/atom"), "atom"),
        FollowedFeed(site.url_for("/broken"), "b"),
    ]
    for f in feeds:
        add_feed(f.url, f.name)
    web = WebIngest(Settings(web_retries=0), feeds=load_feeds(Settings()))
    report = ingest_paths(None, web=web)
    assert report.added == 3
    atom_report, broken = (r.to_json() for r in web.feed_reports)
    assert atom_report["status"] == "ok" and atom_report["new"] == 3
    assert broken["status"] == "failed" and "HTTP 500" in broken["error"]
    pages_before = len(site.log)
    web = WebIngest(Settings(web_retries=0), feeds=load_feeds(Settings()))
    again = ingest_paths(None, web=web)
    assert again.chunks_embedded == 0 and web.feed_reports[0].status == "not modified"
    assert calls == ["", '"f1"']
    story_hits = [r for r, _ in site.log[pages_before:] if r.path.startswith("/story")]
    assert story_hits == []


def test_feed_formats_and_hostile_titles() -> None:
    links = [("One", "http://127.0.0.1/1"), ("Two", "/2")]
    for text in (rss(links), atom(links), json_feed(links)):
        feed = parse_feed("http://127.0.0.1/feed", text)
        assert [i.link for i in feed.items] == ["http://127.0.0.1/1", "http://127.0.0.1/2"]
        assert all(i.published.startswith("2024-03-0") for i in feed.items)
    hostile = rss([("\x1b]0;owned\x07<script>alert(1)</script>Bridge \x1b[31mred", "/x")])
    [item] = parse_feed("http://127.0.0.1/feed", hostile).items
    assert "\x1b" not in item.title and "\x07" not in item.title and "<script" not in item.title
    with pytest.raises(BotError, match="not a feed"):
        parse_feed("http://127.0.0.1/feed", "<html><body>hello</body></html>")
    big = rss([(f"Item {n}", f"/item/{n}") for n in range(5000)])
    assert len(parse_feed("http://127.0.0.1/feed", big).items) == 5000


def test_the_author_comes_from_the_page_else_from_the_feed_item_and_shows_with_passages(
    site: HTTPServer,
) -> None:
    """`bot sources`, and the passages of `ask` and `summarise` (JSON and terminal), give the
    stored author: the page's, else the feed item's, null when neither names one."""
    bare = "<html><head><title>Ferry strike</title></head><body><article><p>{}</p></article>"
    for n in (1, 2):  # pages that name no author
        page = bare.format(STORIES[n][1])
        site.expect_request(f"/bare/{n}").respond_with_data(page, content_type="text/html")
    feed = f"""<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>T</title><item><title>Ferry</title><link>{site.url_for("/bare/1")}</link>
<dc:creator>Jo Lind</dc:creator></item></channel></rss>"""
    site.expect_request("/dc").respond_with_data(feed, content_type="application/rss+xml")
    items = json.loads(json_feed([("Ferry", site.url_for("/bare/2"))]))
    items["items"][0]["authors"] = [{"name": "Ana Ruiz"}]
    site.expect_request("/jf").respond_with_json(items, content_type="application/feed+json")
    plain = site.url_for("/plain")
    site.expect_request("/plain").respond_with_data(STORIES[0][1], content_type="text/plain")
    urls = [site.url_for(p) for p in ("/story/0", "/dc", "/jf")] + [plain]
    assert _web(urls=urls).failed == 0
    authors = {r["path"]: r["author"] for r in list_sources()}
    assert authors == {
        site.url_for("/story/0"): "Lena Park",  # the page's own metadata
        site.url_for("/bare/1"): "Jo Lind",  # RSS dc:creator
        site.url_for("/bare/2"): "Ana Ruiz",  # JSON Feed authors
        plain: None,
    }
    asked = answer_question("How much did the bridge repairs cost?", AskOptions(llm="extractive"))
    summary = summarise(SummariseOptions(llm="extractive", length="long"))
    for result in (asked, summary):
        shown = [p.to_json() for p in result.passages]
        assert shown and all(p["author"] == authors[p["path"]] for p in shown)
        out = io.StringIO()
        render_answer(result, Console(file=out, width=300), all_sources=True)
        for passage in shown:
            byline = f"{passage['source']} — {passage['author']} — " if passage["author"] else ""
            assert byline in out.getvalue()
    assert "Lena Park" in {p.author for p in asked.passages}
    assert {"Lena Park", "Jo Lind", "Ana Ruiz"} <= {p.author for p in summary.passages}


class _Steps:
    """A `Progress` that keeps the bar's total and done steps, in order with embedding calls."""

    def __init__(self) -> None:
        self.total = self.done = 0
        self.events: list[str] = []

    def start(self, total: int) -> None:
        self.total = total

    def more(self, n: int) -> None:
        self.total += n

    def advance(self, n: int = 1) -> None:
        self.done += n
        self.events += ["step"] * n

    def note(self, message: str) -> None: ...
    def stop(self) -> None: ...


class _SeenEmbedder:
    """The real bundled embedder, noting each `embed` call among the progress steps."""

    def __init__(self, steps: _Steps) -> None:
        from bot.index.embeddings import get_embedder

        self.real, self.steps = get_embedder(Settings()), steps
        self.name, self.question_name = self.real.name, self.real.question_name
        self.dimension = self.real.dimension

    def embed(self, texts: Sequence[str]) -> Any:
        self.steps.events.append("embed")
        return self.real.embed(texts)

    def embed_questions(self, texts: Sequence[str]) -> Any:
        return self.real.embed_questions(texts)

    def remember(self, texts: Sequence[str], vectors: Any) -> None:
        self.real.remember(texts, vectors)

    def warm(self, texts: Sequence[str]) -> None:
        self.real.warm(texts)

    def prepare_questions(self) -> None:
        self.real.prepare_questions()


def test_progress_counts_a_feeds_items_each_done_once_embedded(site: HTTPServer) -> None:
    steps = _Steps()
    web = WebIngest(Settings(), urls=[site.url_for("/rss")])
    ingest_paths(None, progress=steps, embedder=_SeenEmbedder(steps), web=web)
    assert (steps.total, steps.done) == (4, 4)  # the feed and its three items
    assert steps.events == ["step", "embed", "step", "step", "step"]
    again = _Steps()
    web = WebIngest(Settings(), urls=[site.url_for("/rss")])
    ingest_paths(None, progress=again, embedder=_SeenEmbedder(again), web=web)
    assert (again.total, again.done, again.events) == (4, 4, ["step"] * 4)  # nothing to embed
    add_feed(site.url_for("/rss"), "harbour")
    update = _Steps()
    update_feeds(Settings(), update)  # the feed fetched before the index opens, then its items
    assert (update.total, update.done) == (4, 4)


def test_the_terminal_bar_grows_with_the_items_it_learns_of() -> None:
    import io

    from rich.console import Console

    from bot.ui.cli import _BarProgress

    bar = _BarProgress("Updating", enabled=False)
    bar.enabled, bar.console = True, Console(file=io.StringIO(), force_terminal=True)
    bar.start(0)
    bar.more(3)  # a feed's items: the bar starts
    bar.advance(2)
    bar.more(2)
    [task] = bar._bar.tasks
    assert (task.total, task.completed) == (5, 2)
    bar.stop()


BIG_FEED_ITEMS = 5000


@pytest.mark.slow
def test_a_feed_of_5000_small_pages_is_ingested_and_a_repeat_embeds_nothing(
    site: HTTPServer,
) -> None:
    towns = ["Eastport", "Northam", "Westby", "Southvale", "Kirkholm"]

    def page(request: Request) -> Response:
        n = int(request.path.rsplit("/", 1)[1])
        body = (
            f"The {towns[n % 5]} council met for session {n} on Tuesday. It approved budget "
            f"line {n * 7} worth {n + 100} thousand euros. The next session is in week {n % 52}."
        )
        return Response(article_page(f"Council session {n}", body), content_type="text/html")

    site.expect_request(re.compile(r"/item/\d+")).respond_with_handler(page)
    count = [BIG_FEED_ITEMS]

    def feed(request: Request) -> Response:
        items = [(f"Session {n}", site.url_for(f"/item/{n}")) for n in range(count[0])]
        return Response(rss(items), content_type="application/rss+xml")

    site.expect_request("/big").respond_with_handler(feed)
    add_feed(site.url_for("/big"), "council")
    steps = _Steps()
    report, [big] = update_feeds(Settings(), steps)
    assert (report.added, report.failed, big.new) == (BIG_FEED_ITEMS, 0, BIG_FEED_ITEMS)
    assert report.chunks_embedded >= BIG_FEED_ITEMS
    assert (steps.total, steps.done) == (BIG_FEED_ITEMS + 1, BIG_FEED_ITEMS + 1)
    assert len(list_sources()) == BIG_FEED_ITEMS
    report, [big] = update_feeds(Settings())  # the same feed: nothing fetched but the feed
    assert (report.added, report.chunks_embedded, big.status) == (0, 0, "not modified")
    count[0] += 1  # one more item: only that page is fetched and embedded
    report, [big] = update_feeds(Settings())
    assert (big.new, big.unchanged, report.chunks_embedded) == (1, BIG_FEED_ITEMS, 1)
    assert len(list_sources()) == BIG_FEED_ITEMS + 1


def test_forget_before_drops_old_web_articles_only(site: HTTPServer, seeds_dir: Path) -> None:
    old = article_page("Old ferry timetable", STORIES[2][1] + " Old news.", date="2019-05-01")
    site.expect_request("/old").respond_with_data(old, content_type="text/html")
    _web(urls=[site.url_for("/old"), site.url_for("/story/0")])
    assert len(list_sources()) == 2
    task = ForgetBefore("2020-01-01")
    report = ingest_paths(None, web=task)
    assert task.forgotten == 1 and report.removed == 1
    assert [r["path"] for r in list_sources()] == [site.url_for("/story/0")]


def _bot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.ui.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_update_json_and_a_killed_update_is_repaired(site: HTTPServer) -> None:
    assert _bot("feeds", "add", site.url_for("/rss"), "--name", "harbour").returncode == 0
    killed = _bot("update", env={"BOT_TEST_KILL_AT_WRITE": "3"})
    assert killed.returncode == -9
    done = _bot("update", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert {"added", "updated", "unchanged", "failed", "chunks_embedded", "feeds"} <= set(data)
    [feed] = data["feeds"]
    assert set(feed) == {"url", "name", "status", "new", "updated", "unchanged", "failed", "error"}
    assert feed["new"] + feed["unchanged"] == 3
    rows = json.loads(_bot("sources", "--json").stdout)
    assert sorted(r["path"] for r in rows) == [site.url_for(f"/story/{n}") for n in range(3)]
    assert all(r["chunks"] >= 1 for r in rows) and {r["author"] for r in rows} == {"Lena Park"}
    listed = json.loads(_bot("feeds", "list", "--json").stdout)
    assert listed == [{"url": site.url_for("/rss"), "name": "harbour", "items_seen": 3}]
    asked = json.loads(_bot("ask", "How much did the bridge repairs cost?", "--json").stdout)
    cited = [p for p in asked["passages"] if p["cited"]]
    assert cited and cited[0]["path"] == site.url_for("/story/0")
    assert "4.2 million" in asked["answer"]


def test_a_failed_item_is_fetched_again_and_bad_links_fail_alone(site: HTTPServer) -> None:
    page = article_page(*STORIES[2])
    answers = [Response("busy", status=404), Response(page, content_type="text/html")]
    site.expect_request("/late").respond_with_handler(lambda request: answers.pop(0))
    links = [
        ("Late", site.url_for("/late")),
        ("Bad", "javascript:alert(1)"),
        ("Local", "file:///etc/passwd"),
    ]
    site.expect_request("/mixed").respond_with_response(
        Response(rss(links), content_type="application/rss+xml", headers={"ETag": '"m"'})
    )
    add_feed(site.url_for("/mixed"), "mixed")
    first = WebIngest(Settings(), feeds=load_feeds(Settings()))
    ingest_paths(None, web=first)
    assert first.feed_reports[0].failed == 3 and first.feed_reports[0].new == 0
    second = WebIngest(Settings(), feeds=load_feeds(Settings()))
    report = ingest_paths(None, web=second)
    assert second.feed_reports[0].status == "ok" and second.feed_reports[0].new == 1
    assert report.failed == 2
    assert sorted(e["path"].split(":")[0] for e in report.errors) == ["file", "javascript"]


def test_an_update_where_every_feed_answers_304_does_not_open_the_index(
    site: HTTPServer,
) -> None:
    def feed(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"f1"':
            return Response(status=304)
        links = [(t, site.url_for(f"/story/{n}")) for n, (t, _) in enumerate(STORIES)]
        return Response(rss(links), content_type="application/rss+xml", headers={"ETag": '"f1"'})

    site.expect_request("/etag").respond_with_handler(feed)
    add_feed(site.url_for("/etag"), "harbour")
    report, _ = update_feeds(Settings())
    assert report.added == 3
    # An index server nobody runs: opening the index would fail.
    elsewhere = Settings(chroma_url="http://127.0.0.1:9")
    report, feeds = update_feeds(elsewhere)
    assert report.failed == 0 and [f.status for f in feeds] == ["not modified"]
    (elsewhere.data_dir / "web" / "update.running").touch()  # as a killed update leaves it
    with pytest.raises(BotError):
        update_feeds(elsewhere)


def test_boilerplate_hostile_titles_and_a_text_under_two_urls(httpserver: HTTPServer) -> None:
    hostile = "\x1b]0;owned\x07Bridge \x1b[31mreopens\x1b[0m &lt;script&gt;alert(1)&lt;/script&gt;"
    page = article_page(hostile, STORIES[0][1])  # no canonical link: each URL is its own
    for path in ("/a", "/b"):
        httpserver.expect_request(path).respond_with_data(page, content_type="text/html")
    report = _web(urls=[httpserver.url_for("/a"), httpserver.url_for("/b")])
    assert (report.added, report.chunks_embedded) == (2, 1)
    [row] = list_sources()
    assert row["paths"] == [httpserver.url_for("/a"), httpserver.url_for("/b")]
    assert "\x1b" not in row["title"] and "\x07" not in row["title"]
    from bot.index.store import open_reader

    [chunk] = list(open_reader(Settings()).chunks_where())
    assert "harbour bridge in Eastport reopened" in chunk.text
    for boilerplate in ("Subscribe now", "Most read", "Cookie settings", "All rights reserved"):
        assert boilerplate not in chunk.text


def test_a_rebuild_makes_the_next_update_fetch_everything_again(site: HTTPServer) -> None:
    add_feed(site.url_for("/rss"), "harbour")
    first, _ = update_feeds(Settings())
    assert first.added == 3
    ingest_paths([], rebuild=True, web=WebIngest(Settings()))
    assert list_sources() == []
    again, feeds = update_feeds(Settings())
    assert again.added == 3 and feeds[0].new == 3


def test_a_feed_without_validators_that_did_not_change_counts_as_304(site: HTTPServer) -> None:
    add_feed(site.url_for("/rss"), "harbour")  # served without ETag or Last-Modified
    update_feeds(Settings())
    report, feeds = update_feeds(Settings(chroma_url="http://127.0.0.1:9"))  # index not opened
    assert report.failed == 0 and feeds[0].status == "not modified"


def test_an_update_waits_for_a_running_ingest_or_update(site: HTTPServer) -> None:
    from bot.app.ingest_lock import write_lock
    from bot.core.types import SilentProgress

    add_feed(site.url_for("/rss"), "harbour")
    held = write_lock(Settings(), SilentProgress())  # what a running ingest or update holds
    try:
        with pytest.raises(BotError, match="kept the index locked"):
            update_feeds(Settings(lock_timeout=0.5))
    finally:
        held.release()
    report, _ = update_feeds(Settings())
    assert report.added == 3


# Modules an update has no use for when no feed changed: the index, the models, the readers.
HEAVY_MODULES = ("chromadb", "onnxruntime", "numpy", "trafilatura", "feedparser", "lxml")
QUIET_FEEDS = 8

_QUIET_UPDATE = """
import json, sys, time
from bot.app.web_ingest import update_feeds
from bot.core.settings import Settings
started = time.monotonic()
report, feeds = update_feeds(Settings())
print(json.dumps({"seconds": time.monotonic() - started,
                  "statuses": sorted({f.status for f in feeds}),
                  "heavy": sorted(m for m in sys.argv[1:] if m in sys.modules)}))
"""


def test_an_update_with_nothing_new_is_quick_imports_no_model_and_writes_nothing(
    site: HTTPServer,
) -> None:
    """Every feed on one host answers 304: with the default host delay, the conditional requests
    are not spaced out, nothing heavy is imported, and no file is written or touched."""

    def feed(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"f1"':
            return Response(status=304)
        links = [(t, site.url_for(f"/story/{n}")) for n, (t, _) in enumerate(STORIES)]
        return Response(rss(links), content_type="application/rss+xml", headers={"ETag": '"f1"'})

    for k in range(QUIET_FEEDS):
        site.expect_request(f"/desk/{k}").respond_with_handler(feed)
        add_feed(site.url_for(f"/desk/{k}"), f"desk{k}")
    assert update_feeds(Settings())[0].added == 3
    data = Settings().data_dir
    before = {p: p.stat().st_mtime_ns for p in data.rglob("*")}
    env = {k: v for k, v in os.environ.items() if k != "BOT_WEB_HOST_DELAY"}  # the default
    proc = subprocess.run(
        [sys.executable, "-c", _QUIET_UPDATE, *HEAVY_MODULES],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    out = json.loads(proc.stdout)
    assert out["statuses"] == ["not modified"] and out["heavy"] == []
    # Spaced by the default delay, the feeds would take 0.5 s each.
    default_delay = Settings.model_fields["web_host_delay"].default
    assert out["seconds"] < default_delay * (QUIET_FEEDS - 1) / 2
    assert {p: p.stat().st_mtime_ns for p in data.rglob("*")} == before
