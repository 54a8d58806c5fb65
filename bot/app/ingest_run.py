"""The state of one `bot ingest` run (bot.app.ingest): what it found, what it will write, and
the repair of what a killed run left.

`IngestRun.flush` writes in the order `bot.index.store` describes (chunks, then the article
records that claim them, then the file records), so a run killed between any two writes leaves
nothing the next run's `repair` cannot bring back in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from bot.core.dates import published_ts
from bot.core.settings import Settings
from bot.core.types import Progress

if TYPE_CHECKING:
    from bot.index.embeddings import Embedder
    from bot.index.records import ArticleEntry, FileEntry, StoredChunk
    from bot.sources.article import ArticleRecord
    from bot.sources.chunking import Chunk

# Chunks collected before one embedding call: large enough for length-sorted batches to be dense.
EMBED_BUFFER_CHUNKS = 512


class Tally:
    """Counting articles by what a run did to them (new, updated, unchanged, failed) in the
    fields a report names them by (`COUNTED`)."""

    COUNTED: ClassVar[dict[str, str]]

    def count(self, status: str, n: int = 1) -> None:
        name = self.COUNTED[status]
        setattr(self, name, getattr(self, name) + n)


@dataclass
class IngestReport(Tally):
    COUNTED: ClassVar[dict[str, str]] = {
        "new": "added", "updated": "updated", "unchanged": "unchanged", "failed": "failed"
    }  # fmt: skip
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    chunks_embedded: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    repaired_chunks: int = 0
    seconds: float = 0.0

    def fail(self, path: str, error: str) -> None:
        """One page, file or feed failed: counted, and its one error line kept."""
        self.failed += 1
        self.errors.append({"path": path, "error": error})

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "failed": self.failed,
            "chunks_embedded": self.chunks_embedded,
            "errors": self.errors,
            "warnings": self.warnings,
        }


class IngestRun:
    """The state of one ingest run (kept off the module so the steps read as plain functions)."""

    def __init__(self, settings: Settings, store: Any, report: IngestReport) -> None:
        self.settings = settings
        self.store = store
        self.report = report
        self.articles = store.article_entries()
        self.pending: list[tuple[Any, list[Any]]] = []  # (ArticleRecord, chunks) awaiting embedding
        self.pending_files: list[Any] = []
        self.pending_chunks = 0
        self.wrote = False
        self.dirty_entries: set[str] = set()  # article records whose path list changed
        self.doomed: set[str] = set()  # article records no path refers to any more
        self.repoint: set[str] = set()  # articles whose chunks may cite a path they lost
        self.stale: set[str] = set()  # files read again whatever their size and mtime say
        self.trim: dict[str, tuple[int, int]] = {}  # article id -> (new, old) chunk counts

    def add_path(self, article: Any, record_path: str) -> None:
        from bot.sources.chunking import chunk_text

        self.doomed.discard(article.article_id)
        entry = self.articles.get(article.article_id)
        if entry is not None:
            if record_path not in entry.paths:
                entry.paths.append(record_path)
                self.dirty_entries.add(article.article_id)
            return
        chunks = chunk_text(article.text, self.settings.chunk_size, self.settings.chunk_overlap)
        self.articles[article.article_id] = _entry(article, [record_path], len(chunks))
        self.pending.append((article, chunks))
        self.pending_chunks += len(chunks)

    def replace_text(self, article: ArticleRecord) -> None:
        """New text for an article kept under its id (a web page that changed): its chunks are
        written again over the old ones, and the old ones past the new count go after the record
        that no longer claims them (a killed run leaves them for `repair`)."""
        from bot.sources.chunking import chunk_text

        entry = self.articles[article.article_id]
        chunks = chunk_text(article.text, self.settings.chunk_size, self.settings.chunk_overlap)
        old_n = self.trim.get(article.article_id, (0, entry.n_chunks))[1]
        paths = entry.paths if article.path in entry.paths else [*entry.paths, article.path]
        self.articles[article.article_id] = _entry(article, paths, len(chunks))
        self.trim[article.article_id] = (len(chunks), old_n)
        self.pending.append((article, chunks))
        self.pending_chunks += len(chunks)

    def drop_path(self, article_id: str, record_path: str) -> None:
        entry = self.articles.get(article_id)
        if entry is None:
            return
        if record_path in entry.paths:
            entry.paths.remove(record_path)
        self.repoint.add(article_id)  # unless doomed; it may also get another path again
        if entry.paths:
            self.dirty_entries.add(article_id)
        else:
            self.doomed.add(article_id)

    def begin_write(self) -> None:
        if not self.wrote:
            self.store.set_state(dirty=True)
            self.wrote = True

    def flush(self, embedder: Embedder) -> None:
        """Embed and write the pending chunks, then the manifest records that claim them."""
        if not (
            self.pending or self.pending_files or self.doomed or self.dirty_entries or self.repoint
        ):
            return
        from bot.index.records import chunk_id

        self.begin_write()
        chunks = [
            stored for article, pieces in self.pending for stored in _stored_chunks(article, pieces)
        ]
        if chunks:
            vectors = embedder.embed([c.text for c in chunks])
            self.store.upsert_chunks(chunks, vectors)
            self.report.chunks_embedded += len(chunks)
        # Article records: new ones (their chunks are now written), changed path lists.
        touched = {a.article_id for a, _ in self.pending} | (self.dirty_entries - self.doomed)
        entries = [self.articles[i] for i in sorted(touched) if i in self.articles]
        self.store.upsert_articles(entries)
        self.store.delete_chunk_ids(
            [chunk_id(i, n) for i, (new, old) in self.trim.items() for n in range(new, old)]
        )
        self.trim = {}
        # Chunks cite a path their article holds now (a renamed file's new name).
        held = {i: self.articles[i].paths for i in self.repoint - self.doomed if i in self.articles}
        self.store.repoint_chunks(held)
        # Deleted articles: manifest first, then their chunks.
        if self.doomed:
            self.store.delete_articles(sorted(self.doomed))
            for article_id in self.doomed:
                self.articles.pop(article_id, None)
        self.store.upsert_files(self.pending_files)
        self.pending, self.pending_files, self.pending_chunks = [], [], 0
        self.dirty_entries, self.doomed, self.repoint = set(), set(), set()


def _described(article: ArticleRecord) -> dict[str, str]:
    """What the index repeats of an article on its record and on each of its chunks."""
    return {
        "article_id": article.article_id,
        "title": article.title,
        "source": article.source,
        "url": article.url,
        "published": article.published,
    }


def _entry(article: ArticleRecord, paths: list[str], n_chunks: int) -> ArticleEntry:
    """An article's record in the manifest, for its text cut into `n_chunks` chunks."""
    from bot.index.records import ArticleEntry

    return ArticleEntry(
        **_described(article),
        content_hash=article.content_hash,
        n_chunks=n_chunks,
        chars=len(article.text),
        paths=paths,
        author=article.author,
    )


def _stored_chunks(article: ArticleRecord, pieces: list[Chunk]) -> list[StoredChunk]:
    """An article's chunks as the index stores them."""
    from bot.index.records import StoredChunk, chunk_id

    ts = published_ts(article.published)
    return [
        StoredChunk(
            **_described(article),
            chunk_id=chunk_id(article.article_id, i),
            chunk_index=i,
            start=piece.start,
            end=piece.end,
            published_ts=ts,
            path=article.path,
            text=piece.text,
        )
        for i, piece in enumerate(pieces)
    ]


def repair(
    run: IngestRun, known_files: dict[str, FileEntry], notify: Progress, *, interrupted: bool
) -> None:
    """Bring the manifests and chunks back in step with each other, whatever a killed run left
    and whatever happened to the files since (see `bot.index.store` for the write order).

    A run writes an article's record before the record of the file that holds it, so a killed
    run can leave an article claiming a path that no file record names: the claim is dropped (and
    the article with it, unless this run finds it in a file again). A file whose record names an
    article that does not claim the path is read again, whatever its size and mtime say."""
    orphans: list[str] = []
    if interrupted:  # reading every chunk's metadata is only worth it after a killed run
        orphans, run.repoint = _chunks_out_of_step(run)
        run.store.delete_chunk_ids(orphans)
    run.report.repaired_chunks = len(orphans)
    backed = {(p, a) for entry in known_files.values() for p, a in entry.records.items()}
    claimed = {(p, a) for a, entry in run.articles.items() for p in entry.paths}
    run.stale = {
        path
        for path, entry in known_files.items()
        if any(pair not in claimed for pair in entry.records.items())
    }
    for record_path, article_id in sorted(claimed - backed):
        run.drop_path(article_id, record_path)
    repaired = [
        f"{n} {what}{'s' if n != 1 else ''}"
        for n, what in ((len(orphans), "chunk"), (len(claimed - backed), "article path"))
        if n
    ]
    if repaired:
        notify.note(
            f"Repaired the index: dropped {' and '.join(repaired)} left by an interrupted run."
        )


def _chunks_out_of_step(run: IngestRun) -> tuple[list[str], set[str]]:
    """What a killed run can leave in the chunks: (the ids of chunks no article record claims,
    the articles with a chunk whose path is not one of the article's paths)."""
    orphans: list[str] = []
    misplaced: set[str] = set()
    for chunk in run.store.iter_chunks(with_text=False):
        entry = run.articles.get(chunk.article_id)
        if entry is None or chunk.chunk_index >= entry.n_chunks:
            orphans.append(chunk.chunk_id)
        elif chunk.path not in entry.paths:
            misplaced.add(chunk.article_id)
    return orphans, misplaced
