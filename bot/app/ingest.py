"""`bot ingest`: bring the index exactly in step with a set of files and folders.

One pass: discover files, skip those whose size and mtime match the manifest, load and chunk the
rest, embed only articles the index does not hold yet (in length-sorted batches), write chunks
before the manifest records that claim them, and forget records whose files disappeared from an
ingested folder. See `bot.index.store` for the write order that makes a killed run safe to repeat.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bot.app.ingest_lock import write_lock
from bot.app.ingest_run import EMBED_BUFFER_CHUNKS, IngestReport, IngestRun, repair
from bot.core.dates import newest_first
from bot.core.errors import IngestFileError
from bot.core.settings import Settings, bundled_seeds_dir, get_settings
from bot.core.text import key_path, path_key
from bot.core.types import Progress, SilentProgress

if TYPE_CHECKING:
    from bot.index.embeddings import Embedder
    from bot.index.records import FileEntry
    from bot.sources.article import ArticleRecord


class WebTask(Protocol):
    """Work on web articles done inside an ingest run (bot.app.web_ingest): returns the records
    of URLs whose articles it dropped, which the run then deletes."""

    def run(
        self, run: IngestRun, embedder: Embedder, known: dict[str, FileEntry], notify: Progress
    ) -> list[FileEntry]: ...


def _is_under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def ingest_paths(
    paths: Sequence[Path] | None = None,
    settings: Settings | None = None,
    *,
    rebuild: bool = False,
    progress: Progress | None = None,
    embedder: Embedder | None = None,
    web: WebTask | None = None,
) -> IngestReport:
    """Index `paths` (files or folders; the seeds when empty and there is no `web` task) and
    return what changed."""
    from bot.sources.files import discover_files

    settings = settings or get_settings()
    notify = progress or SilentProgress()
    started = time.perf_counter()
    user_paths = bool(paths) or web is not None
    paths = [Path(p) for p in paths or []] if user_paths else [bundled_seeds_dir()]
    report = IngestReport()
    lock = write_lock(settings, notify)
    try:
        if embedder is None:
            from bot.index.embeddings import get_embedder

            embedder = get_embedder(settings)
        store = _open_for_writing(settings, embedder, rebuild=rebuild)
        store.lease = lock.lease

        files, discovery_errors = discover_files(paths)
        for path, message in discovery_errors:
            report.errors.append({"path": path_key(path), "error": message})
        report.failed += len(discovery_errors)
        known_files = store.file_entries()
        run = IngestRun(settings, store, report)
        interrupted = store.dirty
        repair(run, known_files, notify, interrupted=interrupted)
        notify.start(len(files))
        for file_path in files:
            notify.advance()
            _ingest_file(run, file_path, known_files.get(path_key(file_path)))
            if run.pending_chunks >= EMBED_BUFFER_CHUNKS:
                run.flush(embedder)
        run.flush(embedder)
        notify.stop()
        gone = web.run(run, embedder, known_files, notify) if web is not None else []
        gone += _forget_vanished_files(run, known_files, {path_key(f) for f in files}, paths)
        gone += _replace_seeds(run, known_files, paths, notify) if user_paths else []
        if gone:
            run.flush(embedder)
            store.delete_files([e.path for e in gone])
        if run.wrote or gone or interrupted:
            store.set_state(dirty=False, new_generation=True)
            _build_keyword_index(store, report)
            embedder.prepare_questions()  # the fast question model, built once (a warning if not)
        _publish_snapshot(store, report)
        notify.stop()
    finally:
        lock.release()
    report.seconds = time.perf_counter() - started
    return report


def _open_for_writing(settings: Settings, embedder: Embedder, *, rebuild: bool) -> Any:
    """The store, created when missing (dropped first for a rebuild)."""
    from bot.index.store import drop_index, open_store

    if rebuild:
        from bot.app.feeds import forget_web_state

        drop_index(settings)  # also an index open_store refuses (another model, newer bot)
        forget_web_state(settings)
    return open_store(settings, embedder, create=True)


def _ingest_file(run: IngestRun, file_path: Path, old: FileEntry | None) -> None:
    """Bring one file's articles in step: skipped when its size and mtime are unchanged."""
    from bot.index.records import FileEntry
    from bot.sources.formats import load_file

    report, key = run.report, path_key(file_path)
    try:
        stat = file_path.stat()
    except OSError as exc:
        report.failed += 1
        report.errors.append({"path": key, "error": f"cannot read: {exc.strerror}"})
        return
    same = old is not None and (old.size, old.mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    if old is not None and same and key not in run.stale:
        report.unchanged += len(old.records)
        return
    try:
        loaded = load_file(file_path, max_bytes=int(run.settings.max_file_mb * 1024 * 1024))
    except IngestFileError as exc:
        # Keep what an earlier run indexed from this file: a bad read must not lose data.
        report.failed += 1
        report.errors.append({"path": key, "error": str(exc)})
        report.warnings.extend({"path": key, "warning": w} for w in exc.warnings)
        return
    for warning in loaded.warnings:
        report.warnings.append({"path": key, "warning": warning})
    # Records as the index stores their paths: a name that is not UTF-8 in its escaped form.
    articles = [replace(a, path=path_key(a.path)) for a in loaded.articles]
    new_records = _update_records(run, articles, old.records if old is not None else {})
    run.pending_files.append(FileEntry(key, stat.st_size, stat.st_mtime_ns, new_records))


def _update_records(
    run: IngestRun, articles: list[ArticleRecord], old_records: dict[str, str]
) -> dict[str, str]:
    """Add the file's new and changed articles, and drop the paths it no longer holds; returns
    the file's records (record path -> article id)."""
    report = run.report
    new_records = {a.path: a.article_id for a in articles}
    for article in articles:
        previous = old_records.get(article.path)
        entry = run.articles.get(article.article_id)
        if previous == article.article_id and entry is not None and article.path in entry.paths:
            report.unchanged += 1
            continue
        if previous is None:
            report.added += 1
        else:
            report.updated += 1
            run.drop_path(previous, article.path)
        run.add_path(article, article.path)
    for record_path, article_id in old_records.items():
        if record_path not in new_records:
            report.removed += 1
            run.drop_path(article_id, record_path)
    return new_records


def _forget_vanished_files(
    run: IngestRun, known_files: dict[str, FileEntry], seen: set[str], paths: Sequence[Path]
) -> list[FileEntry]:
    """Drop the articles of files that vanished from a folder (or a named file) ingested in this
    run; returns those files' records."""
    roots = [path_key(os.path.abspath(p)) for p in paths]
    gone = [
        entry
        for path, entry in known_files.items()
        if path not in seen and _is_under(path, roots) and not _exists(path)
    ]
    _forget(run, gone)
    return gone


def _exists(key: str) -> bool:
    """Whether the file a stored path names is there (a name that merely looks escaped, with a
    real backslash in it, is looked up as it is too)."""
    return os.path.lexists(key) or os.path.lexists(key_path(key))


def _forget(run: IngestRun, entries: Sequence[FileEntry]) -> None:
    """Drop the articles of these files' records; the next flush deletes the articles no other
    path holds (manifest records first, then their chunks)."""
    for entry in entries:
        for record_path, article_id in entry.records.items():
            run.report.removed += 1
            run.drop_path(article_id, record_path)


def _replace_seeds(
    run: IngestRun, known_files: dict[str, FileEntry], paths: Sequence[Path], notify: Progress
) -> list[FileEntry]:
    """The bundled seeds are a first-run demo: when the index held nothing else and this run
    indexed the user's own articles, drop the seed files' articles; returns those files.

    Seed files whose articles are all gone already (a replacement killed before it forgot the
    files) are returned too, so that a later `bot ingest` of the seeds indexes them again."""
    seeds = [os.path.abspath(bundled_seeds_dir())]
    if any(_is_under(os.path.abspath(p), seeds) for p in paths):
        return []
    seed_files = [entry for path, entry in known_files.items() if _is_under(path, seeds)]
    only_seeds = any(e.records for e in known_files.values()) and all(
        _is_under(path, seeds) for path in known_files
    )
    users_now = any(
        not _is_under(path, seeds) for entry in run.articles.values() for path in entry.paths
    )
    if not (only_seeds and users_now):
        held = run.articles.keys()
        return [e for e in seed_files if e.records and not set(e.records.values()) & held]
    count = sum(len(entry.records) for entry in seed_files)
    _forget(run, seed_files)
    notify.note(
        f"Removed the {count} bundled seed article{'s' if count != 1 else ''}: "
        "the index now holds your own."
    )
    return seed_files


def _build_keyword_index(store: Any, report: IngestReport) -> None:
    """Build the new generation's BM25 index now, so the first question does not wait for it."""
    from bot.index.keyword import load_lexical_index

    try:
        load_lexical_index(store)
    except Exception as exc:  # noqa: BLE001 - the index is fine; the first `ask` will retry
        report.warnings.append(
            {"path": str(store.location), "warning": f"keyword index not built yet: {exc}"}
        )


def _publish_snapshot(store: Any, report: IngestReport) -> None:
    """Write the snapshot the read commands use instead of Chroma, unless it is current already
    (bot.index.snapshot), so the first question after an ingest does not wait for it."""
    from bot.index.snapshot import publish_snapshot

    try:
        publish_snapshot(store)
    except Exception as exc:  # noqa: BLE001 - the index is fine; readers use Chroma meanwhile
        report.warnings.append(
            {"path": str(store.location), "warning": f"read snapshot not written: {exc}"}
        )


def list_sources(settings: Settings | None = None, *, store: Any = None) -> list[dict[str, Any]]:
    """The indexed articles for `bot sources`, newest first (of `store`, when given: an open
    `IndexReader`)."""
    from bot.index.store import open_reader

    settings = settings or get_settings()
    store = store or open_reader(settings)
    if not store.exists:
        return []
    rows = []
    for entry in store.article_entries().values():
        rows.append(
            {
                "article_id": entry.article_id,
                "title": entry.title,
                "source": entry.source,
                "author": entry.author or None,
                "url": entry.url,
                "published": entry.published,
                "chunks": entry.n_chunks,
                "chars": entry.chars,
                "paths": sorted(entry.paths),
                "path": sorted(entry.paths)[0] if entry.paths else "",
            }
        )
    rows.sort(key=lambda r: r["title"], reverse=True)
    rows.sort(key=lambda r: newest_first(r["published"] or ""))
    return rows


__all__ = ["IngestReport", "ingest_paths", "list_sources"]
