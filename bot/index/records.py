"""The index's records as typed values: a chunk, an article and a file as the store keeps them.

Each converts to and from the metadata dict Chroma stores, here and nowhere else.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from bot.core.types import Passage


def chunk_id(article_id: str, index: int) -> str:
    """The id of an article's `index`-th chunk: `<article_id>:<index>`."""
    return f"{article_id}:{index:05d}"


def article_of(chunk_id: str) -> str:
    """The article a chunk id belongs to (see `chunk_id`)."""
    return chunk_id.rsplit(":", 1)[0]


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the index holds it: its text and where it comes from."""

    chunk_id: str
    article_id: str
    chunk_index: int
    start: int
    end: int
    title: str = ""
    source: str = ""
    url: str = ""
    published: str = ""
    published_ts: int = -1  # seconds since the epoch; -1 when the article has no date
    path: str = ""
    text: str = ""

    def to_metadata(self) -> dict[str, Any]:
        return {
            "article_id": self.article_id,
            "chunk_index": self.chunk_index,
            "start": self.start,
            "end": self.end,
            "title": self.title,
            "source": self.source,
            "url": self.url,
            "published": self.published,
            "published_ts": self.published_ts,
            "path": self.path,
        }

    @classmethod
    def from_metadata(cls, chunk_id: str, meta: dict[str, Any] | None, text: str) -> StoredChunk:
        meta = meta or {}
        return cls(
            chunk_id=chunk_id,
            article_id=str(meta.get("article_id", "")),
            chunk_index=int(meta.get("chunk_index", 0)),
            start=int(meta.get("start", 0)),
            end=int(meta.get("end", 0)),
            title=str(meta.get("title", "")),
            source=str(meta.get("source", "")),
            url=str(meta.get("url", "")),
            published=str(meta.get("published", "")),
            published_ts=int(meta.get("published_ts", -1)),
            path=str(meta.get("path", "")),
            text=text,
        )

    def to_passage(self, n: int, *, score: float = 0.0, dense: float = 0.0) -> Passage:
        """This chunk as the `n`-th passage shown to the model and the reader."""
        return Passage(
            n=n,
            chunk_id=self.chunk_id,
            article_id=self.article_id,
            title=self.title,
            source=self.source,
            url=self.url,
            published=self.published,
            path=self.path,
            start=self.start,
            end=self.end,
            text=self.text,
            score=score,
            dense=dense,
        )


@dataclass
class ArticleEntry:
    """An article as the manifest records it."""

    article_id: str
    title: str
    source: str
    url: str
    published: str
    content_hash: str
    n_chunks: int
    chars: int
    paths: list[str] = field(default_factory=list)
    author: str = ""

    def to_metadata(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "author": self.author,
            "source": self.source,
            "url": self.url,
            "published": self.published,
            "content_hash": self.content_hash,
            "n_chunks": self.n_chunks,
            "chars": self.chars,
            "paths": json.dumps(sorted(set(self.paths)), ensure_ascii=False),
        }

    @classmethod
    def from_metadata(cls, article_id: str, meta: dict[str, Any]) -> ArticleEntry:
        return cls(
            article_id=article_id,
            title=str(meta.get("title", "")),
            source=str(meta.get("source", "")),
            url=str(meta.get("url", "")),
            published=str(meta.get("published", "")),
            content_hash=str(meta.get("content_hash", "")),
            n_chunks=int(meta.get("n_chunks", 0)),
            chars=int(meta.get("chars", 0)),
            paths=list(json.loads(str(meta.get("paths", "[]")))),
            author=str(meta.get("author", "")),
        )


@dataclass
class FileEntry:
    """A file as the manifest records it: `records` maps each record path to its article id."""

    path: str
    size: int
    mtime_ns: int
    records: dict[str, str]

    @property
    def record_id(self) -> str:
        return file_record_id(self.path)

    def to_metadata(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "mtime_ns": str(self.mtime_ns),
            "records": json.dumps(self.records, ensure_ascii=False),
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> FileEntry:
        return cls(
            path=str(meta["path"]),
            size=int(meta.get("size", -1)),
            mtime_ns=int(meta.get("mtime_ns", -1)),
            records=dict(json.loads(str(meta.get("records", "{}")))),
        )


def file_record_id(path: str) -> str:
    return "f" + hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def chunks_of(got: dict[str, Any]) -> list[StoredChunk]:
    """The chunks of one Chroma `get` answer (texts empty when they were not asked for)."""
    ids = got["ids"]
    metas = got.get("metadatas") or [None] * len(ids)
    docs = got.get("documents") or [None] * len(ids)
    return [
        StoredChunk.from_metadata(i, m, d or "") for i, m, d in zip(ids, metas, docs, strict=True)
    ]
