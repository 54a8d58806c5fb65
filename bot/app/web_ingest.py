"""The web part of an ingest run (`bot ingest URL`, `bot update`, `bot forget --before`).

It runs inside `bot.app.ingest.ingest_paths`, under the same lock and with the same repair and
write order: pages are fetched and read by a pool of threads while this thread embeds what they
brought; an article's path is its canonical URL, its id stays with that URL when its text
changes, and a text already held under another URL joins that article. Validators and the feeds'
seen items are stored only after the articles they vouch for are written, so a killed run fetches
them again. One bad page or feed is one error line; the others go on.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from bot.app.feeds import FollowedFeed, record_seen, web_dir
from bot.app.ingest_run import EMBED_BUFFER_CHUNKS, IngestReport, IngestRun, Tally
from bot.core.dates import parse_date_bound, published_ts
from bot.core.errors import BotError, WebError
from bot.core.settings import Settings
from bot.core.types import Progress

if TYPE_CHECKING:
    from bot.index.embeddings import Embedder
    from bot.index.records import FileEntry
    from bot.sources.article import ArticleRecord
    from bot.sources.web.feed import Feed, FeedItem
    from bot.sources.web.fetch import Fetcher, FetchResult


@dataclass
class FeedReport(Tally):
    COUNTED: ClassVar[dict[str, str]] = {s: s for s in ("new", "updated", "unchanged", "failed")}
    url: str
    name: str
    status: str = "ok"  # ok | not modified | failed
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    error: str = ""
    retry: bool = False  # an item failed in a way the next update may not: fetch it again

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "retry"}


@dataclass
class _Job:
    url: str
    feed: FeedReport | None = None  # the followed feed the URL is, or is an item of
    item: FeedItem | None = None
    is_followed_feed: bool = False


@dataclass
class _Outcome:
    job: _Job
    result: FetchResult | None = None
    article: ArticleRecord | None = None
    feed: Feed | None = None
    error: str = ""


@dataclass
class WebIngest:
    """URLs to ingest and feeds to update, run by `ingest_paths` inside its lock."""

    settings: Settings
    urls: list[str] = field(default_factory=list)
    feeds: list[FollowedFeed] = field(default_factory=list)
    feed_reports: list[FeedReport] = field(default_factory=list)
    _fetcher: Fetcher | None = None
    _prefetched: list[_Outcome] = field(default_factory=list)

    def _open(self) -> Fetcher:
        from bot.sources.web.fetch import Fetcher
        from bot.sources.web.validators import ValidatorCache

        if self._fetcher is None:
            cache = ValidatorCache(web_dir(self.settings) / "validators.json")
            self._fetcher = Fetcher(self.settings, cache)
            self.feed_reports = [FeedReport(f.url, f.name) for f in self.feeds]
        return self._fetcher

    def _feed_jobs(self) -> list[_Job]:
        return [_Job(r.url, r, is_followed_feed=True) for r in self.feed_reports]

    def prefetch_feeds(self) -> bool:
        """Fetch the followed feeds before the index is opened; True when none brought anything
        (each answered 304 or failed), so that the index need not be opened at all."""
        fetcher = self._open()
        with ThreadPoolExecutor(self.settings.web_workers) as pool:
            self._prefetched = list(
                pool.map(lambda job: _fetch(fetcher, job, True), self._feed_jobs())
            )
        return all(o.error or (o.result and o.result.not_modified) for o in self._prefetched)

    def quiet_report(self) -> IngestReport:
        """The report of an update whose feeds brought nothing (see `prefetch_feeds`)."""
        report = IngestReport()
        for outcome in self._prefetched:
            feed = outcome.job.feed
            assert feed is not None
            feed.status, feed.error = (
                ("failed", outcome.error) if outcome.error else ("not modified", "")
            )
            if outcome.error:
                report.fail(feed.url, outcome.error)
        self.close()
        return report

    def close(self) -> None:
        if self._fetcher is not None:
            self._fetcher.close()

    def run(
        self, run: IngestRun, embedder: Embedder, known: dict[str, FileEntry], notify: Progress
    ) -> list[FileEntry]:
        fetcher = self._open()
        cache = fetcher.cache
        state = _State(run, embedder, dict(known), cache)
        state.seen = {f.url: dict(f.seen) for f in self.feeds}
        jobs = [_Job(url) for url in self.urls]
        jobs += [] if self._prefetched else self._feed_jobs()
        notify.start(len(jobs) + len(self._prefetched))
        try:
            with ThreadPoolExecutor(self.settings.web_workers) as pool:
                _drive(state, pool, fetcher, jobs, self._prefetched, notify)
        finally:
            self.close()
        _flush(state, notify)
        _store_state(self.settings, state, record_feeds=bool(self.feeds))
        return []


def _store_state(settings: Settings, state: _State, *, record_feeds: bool) -> None:
    """Remember validators and seen items now that what they vouch for is written. A feed's
    304 skips its items, so it is only asked for once every item is indexed."""
    cache = state.cache
    done = [(r.url, fields) for r, fields in state.feed_validators if not r.retry]
    for url, fields in state.validators + done:
        cache.remember(url, **fields)
    for report, _ in state.feed_validators:
        if report.retry:
            cache.forget(report.url)
    cache.save()
    if record_feeds:
        record_seen(settings, state.seen)


def update_feeds(
    settings: Settings, progress: Progress | None = None
) -> tuple[IngestReport, list[FeedReport]]:
    """`bot update`: every followed feed fetched, its new and changed items indexed. When every
    feed answers 304 and no update was cut short, the index is not even opened."""
    from bot.app.feeds import load_feeds

    web = WebIngest(settings, feeds=load_feeds(settings))
    if not web.feeds:
        raise BotError("No feeds followed", hint="add one with `bot feeds add URL`")
    running = web_dir(settings) / "update.running"  # present while an update writes
    if web.prefetch_feeds() and not running.exists():
        return web.quiet_report(), web.feed_reports
    from bot.app.ingest import ingest_paths  # the index and its models: only when needed

    running.touch()
    report = ingest_paths(None, settings, progress=progress, web=web)
    running.unlink(missing_ok=True)
    return report, web.feed_reports


@dataclass
class _State:
    run: IngestRun
    embedder: Embedder
    files: dict[str, FileEntry]
    cache: Any
    by_hash: dict[str, str] = field(default_factory=dict)
    seen: dict[str, dict[str, str]] = field(default_factory=dict)
    validators: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    feed_validators: list[tuple[FeedReport, dict[str, str]]] = field(default_factory=list)
    awaiting: int = 0  # pages read whose text waits to be embedded: their progress step

    def __post_init__(self) -> None:
        self.by_hash = {e.content_hash: i for i, e in self.run.articles.items()}

    def conditional(self, url: str) -> bool:
        """Ask for a 304 only when what the URL led to is still indexed."""
        return self.cache.get(url).get("canonical", "\0") in self.files


def _drive(
    state: _State,
    pool: ThreadPoolExecutor,
    fetcher: Fetcher,
    jobs: list[_Job],
    ready: list[_Outcome],
    notify: Progress,
) -> None:
    """Fetch in the pool, take each outcome here as it comes (those `ready` first), embedding
    as the buffer fills. Each URL, feed and feed item is one step of the progress bar, done
    once it is fetched and, when its text is new or changed, embedded."""

    def submit(job: _Job) -> Future[_Outcome]:
        conditional = job.is_followed_feed or state.conditional(job.url)
        return pool.submit(_fetch, fetcher, job, conditional)

    def settle(outcome: _Outcome) -> None:
        awaiting = state.awaiting
        more = _take(state, outcome)
        notify.more(len(more))
        if state.awaiting == awaiting:
            notify.advance()
        pending.update(submit(job) for job in more)

    pending = {submit(j) for j in jobs}
    for outcome in ready:
        settle(outcome)
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            settle(future.result())
        if state.run.pending_chunks >= EMBED_BUFFER_CHUNKS:
            _flush(state, notify)


def _flush(state: _State, notify: Progress) -> None:
    """Embed and write what is pending; the pages it held are done."""
    state.run.flush(state.embedder)
    notify.advance(state.awaiting)
    state.awaiting = 0


def _fetch(fetcher: Fetcher, job: _Job, conditional: bool) -> _Outcome:
    """One URL fetched and read (in a pool thread): a page's article, a feed, a 304 or an error."""
    try:
        result = fetcher.fetch(job.url, conditional=conditional)
        if result.not_modified:
            return _Outcome(job, result)
        if job.is_followed_feed and _same_as_last_time(fetcher, job.url, result.text):
            return _Outcome(job, replace(result, status=304, text=""))
        # The readers of feeds and pages (feedparser, trafilatura) only for a body to read.
        from bot.sources.web.feed import parse_feed
        from bot.sources.web.page import is_feed, page_article

        if job.is_followed_feed or (job.item is None and is_feed(result)):
            return _Outcome(job, result, feed=parse_feed(result.final_url, result.text))
        item = job.item
        article = page_article(
            result,
            fallback_title=item.title if item else "",
            fallback_date=item.published if item else "",
            fallback_author=item.author if item else "",
        )
        return _Outcome(job, result, article=article)
    except WebError as exc:
        return _Outcome(job, error=exc.cause)
    except Exception as exc:  # noqa: BLE001 - one bad page must not stop the others
        return _Outcome(job, error=f"cannot read: {type(exc).__name__}: {exc}")


def _same_as_last_time(fetcher: Fetcher, url: str, text: str) -> bool:
    """Whether a feed's body is the one its items were indexed from: for a server that sends
    no validators, the same body counts as a 304."""
    remembered = fetcher.cache.get(url).get("digest") if fetcher.cache is not None else None
    return remembered == body_digest(text)


def body_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _take(state: _State, outcome: _Outcome) -> list[_Job]:
    """Record one outcome; returns the item pages a feed brings to fetch next."""
    job, report = outcome.job, state.run.report
    feed_report = job.feed
    if outcome.error:
        report.fail(job.url, outcome.error)
        if job.is_followed_feed and feed_report is not None:
            feed_report.status, feed_report.error = "failed", outcome.error
        elif feed_report is not None:
            feed_report.count("failed")
            feed_report.retry = True
        return []
    assert outcome.result is not None
    if outcome.result.not_modified:
        if job.is_followed_feed and feed_report is not None:
            feed_report.status = "not modified"
        else:
            _count(state, job, "unchanged")
        return []
    if outcome.feed is not None:
        return _feed_items(state, job, outcome.feed, outcome.result)
    assert outcome.article is not None
    for warning in outcome.result.warnings:
        report.warnings.append({"path": job.url, "warning": warning})
    status = _add_article(state, outcome.article)
    state.awaiting += status != "unchanged"
    _count(state, job, status)
    fields = {"etag": outcome.result.etag, "last_modified": outcome.result.last_modified}
    state.validators.append((job.url, {**fields, "canonical": outcome.article.path}))
    return []


def _count(state: _State, job: _Job, status: str) -> None:
    """Count one page as new, updated or unchanged, for the run and for its feed."""
    state.run.report.count(status)
    if job.feed is not None:
        job.feed.count(status)
        if job.item is not None:
            state.seen.setdefault(job.feed.url, {})[job.item.link] = job.item.stamp


def _feed_items(state: _State, job: _Job, feed: Feed, result: FetchResult) -> list[_Job]:
    """The items of a fetched feed to fetch: all of them for `bot ingest`, and for a followed
    feed those it did not list before or whose stamp changed."""
    from bot.sources.web.fetch import check_scheme

    for warning in feed.warnings:
        state.run.report.warnings.append({"path": job.url, "warning": warning})
    fields = {"etag": result.etag, "last_modified": result.last_modified}
    fields["digest"] = body_digest(result.text)
    if job.is_followed_feed and job.feed is not None:
        state.feed_validators.append((job.feed, fields))
    report = job.feed or FeedReport(job.url, "")
    seen = state.seen.get(report.url, {}) if job.is_followed_feed else {}
    jobs, links = [], set()
    for item in feed.items:
        if item.link in links:
            continue
        links.add(item.link)
        if item.link in seen and seen[item.link] == item.stamp:
            report.count("unchanged")
            state.run.report.count("unchanged")
            continue
        try:
            check_scheme(item.link)
        except WebError as exc:  # a javascript: or file: link fails the same way every time
            report.count("failed")
            state.run.report.fail(item.link, exc.cause)
            continue
        jobs.append(_Job(item.link, job.feed, item))
    return jobs


def _add_article(state: _State, article: ArticleRecord) -> str:
    """Bring one page's article in step: new, updated (same id, new text) or unchanged."""
    from bot.index.records import FileEntry

    run, canonical = state.run, article.path
    old = state.files.get(canonical)
    old_id = old.records.get(canonical) if old is not None else None
    entry = run.articles.get(old_id) if old_id else None
    if entry is not None and old_id is not None:
        if entry.content_hash == article.content_hash and canonical in entry.paths:
            return "unchanged"
        article = replace(article, article_id=old_id)
        run.replace_text(article)
        status = "updated"
    else:
        twin = state.by_hash.get(article.content_hash)
        if twin is not None and twin in run.articles:
            article = replace(article, article_id=twin)  # the same story under another URL
        run.add_path(article, canonical)
        status = "new"
    state.by_hash[article.content_hash] = article.article_id
    entry_file = FileEntry(canonical, len(article.text), 0, {canonical: article.article_id})
    run.pending_files.append(entry_file)
    state.files[canonical] = entry_file
    return status


@dataclass
class ForgetBefore:
    """`bot forget --before DATE`: drop the web articles published before DATE (files stay: the
    next ingest of their folder would bring them back)."""

    before: str
    forgotten: int = 0

    def run(
        self, run: IngestRun, embedder: Embedder, known: dict[str, FileEntry], notify: Progress
    ) -> list[FileEntry]:
        from bot.sources.web.urls import looks_like_url

        bound = parse_date_bound(self.before, end=False)
        gone: list[FileEntry] = []
        for article_id, entry in list(run.articles.items()):
            ts = published_ts(entry.published)
            if ts < 0 or bound is None or ts >= bound:
                continue
            if not entry.paths or not all(looks_like_url(p) for p in entry.paths):
                continue
            self.forgotten += 1
            for path in list(entry.paths):
                run.report.removed += 1
                run.drop_path(article_id, path)
                if path in known:
                    gone.append(known[path])
        return gone
