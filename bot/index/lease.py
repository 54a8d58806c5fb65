"""One writer at a time on a Chroma server: a lease kept in the server itself.

Replicas with their own data directories share no file system, so a file lock cannot keep two of
them from writing the same index at once. The lease lives beside the index, in the collection
`<name>__writer`, as one record per holder with a rising version: id `v000000000007`, metadata
`owner` (a random token), `holder` (who: host, pid, data directory, for the waiting message),
`expires` (seconds since the epoch) and `released`.

Taking it is a compare-and-set on the version. A writer reads the newest record; when it is
released, or expired on this machine's clock (with `CLOCK_SKEW_SECONDS` to spare), it adds record
n+1. Chroma keeps the first record added under an id and ignores later ones, so of two writers
that race for n+1 one wins, and each reads n+1 back to see which. A writer then checks that n+1 is
still the newest record (a writer that read a stale n can only add a record below the newest) and
otherwise gives way.

While it writes, a thread renews the lease every third of its length and checks that no newer
record appeared. A writer that crashes stops renewing, and its lease frees once it expires. A
writer that stalls past its expiry (and may have been replaced) finds that out before its next
write: `check` raises, and nothing more is written (bot.index.guards).

This module touches the lease collection only; bot.index.store alone touches the index's own.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.core.errors import BotError
from bot.core.settings import Settings
from bot.index.chroma import MANIFEST_VECTOR, embedding_function, failures_as_bot_errors

# How long a lease lasts unless renewed: a crashed writer blocks others at most this long, and a
# live one renews it a few times within it, even while a large batch is being written.
LEASE_SECONDS = 30.0
# Clocks of two machines may disagree by this much; a lease is taken over only this long after it
# expired by the taker's clock.
CLOCK_SKEW_SECONDS = 5.0
# A writer that could not renew its lease stops writing this share of the lease before it ends
# (renewals come every third of it, so a live writer never gets this close).
STOP_SHARE = 0.2
# How often a waiting writer looks at the lease again.
POLL_SECONDS = 0.5
# Released records kept below the newest (the rest are deleted when a lease is taken).
KEEP_RECORDS = 3
VERSION_DIGITS = 12


def lease_collection_name(collection: str) -> str:
    return f"{collection}__writer"


@dataclass(frozen=True)
class LeaseRecord:
    version: int
    owner: str
    holder: str
    expires: float
    released: bool

    @classmethod
    def from_row(cls, record_id: str, meta: dict[str, Any]) -> LeaseRecord:
        return cls(
            version=int(record_id[1:]),
            owner=str(meta.get("owner", "")),
            holder=str(meta.get("holder", "another writer")),
            expires=float(meta.get("expires", 0.0)),
            released=bool(meta.get("released", False)),
        )

    @property
    def record_id(self) -> str:
        return f"v{self.version:0{VERSION_DIGITS}d}"

    def metadata(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "holder": self.holder,
            "expires": self.expires,
            "released": self.released,
        }

    def free(self, now: float) -> bool:
        """Another writer may take the lease over this record."""
        return self.released or now > self.expires + CLOCK_SKEW_SECONDS


class LeaseRecords:
    """The lease collection of one index on one server."""

    def __init__(self, settings: Settings, client: Any) -> None:
        self.settings = settings
        with warnings.catch_warnings(), failures_as_bot_errors(settings):
            warnings.simplefilter("ignore")
            self._collection = client.get_or_create_collection(
                name=lease_collection_name(settings.collection),
                embedding_function=embedding_function(None),
            )

    def all(self) -> list[LeaseRecord]:
        """Every record, oldest first."""
        with failures_as_bot_errors(self.settings):
            got = self._collection.get(include=["metadatas"])
        rows = zip(got["ids"], got["metadatas"], strict=True)
        return sorted((LeaseRecord.from_row(i, m or {}) for i, m in rows), key=lambda r: r.version)

    def add(self, record: LeaseRecord) -> LeaseRecord | None:
        """Add `record` unless its id is taken; the record stored under that id, as read back."""
        with failures_as_bot_errors(self.settings):
            self._collection.add(
                ids=[record.record_id],
                embeddings=[list(MANIFEST_VECTOR)],
                metadatas=[record.metadata()],
            )
            got = self._collection.get(ids=[record.record_id], include=["metadatas"])
        found = zip(got["ids"], got["metadatas"], strict=True)
        return next((LeaseRecord.from_row(i, m or {}) for i, m in found), None)

    def put(self, record: LeaseRecord) -> None:
        with failures_as_bot_errors(self.settings):
            self._collection.update(ids=[record.record_id], metadatas=[record.metadata()])

    def delete(self, records: list[LeaseRecord]) -> None:
        if records:
            with failures_as_bot_errors(self.settings):
                self._collection.delete(ids=[r.record_id for r in records])


def describe_holder(settings: Settings) -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}, data dir {settings.data_dir}"


class WriterLease:
    """The lease, once taken (`take_lease`): renewed by a thread until `release`."""

    def __init__(self, records: LeaseRecords, held: LeaseRecord, seconds: float) -> None:
        self._records = records
        self._held = held
        self._seconds = seconds
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, name="writer-lease", daemon=True)
        self._thread.start()

    @property
    def version(self) -> int:
        return self._held.version

    def check(self) -> None:
        """Raise before a write once this writer may no longer hold the lease."""
        if self._lost is None and time.time() > self._held.expires - self._seconds * STOP_SHARE:
            self._lost = "it expired before it could be renewed"
        if self._lost is not None:
            raise BotError(
                f"Stopped writing to {self._records.settings.chroma_url}: this writer's lease "
                f"on the index was lost ({self._lost})",
                hint="run the command again; `bot ingest` repairs what an interrupted run left",
            )

    def _renew_loop(self) -> None:
        while not self._stop.wait(self._seconds / 3):
            try:
                self._renew()
            except BotError:
                continue  # the server is away: `check` stops the writes once the lease runs out
            if self._lost is not None:
                return

    def _renew(self) -> None:
        renewed = LeaseRecord(
            self._held.version,
            self._held.owner,
            self._held.holder,
            time.time() + self._seconds,
            released=False,
        )
        newer = [r for r in self._records.all() if r.version > self._held.version]
        if newer:
            self._lost = f"{newer[-1].holder} took it over"
            return
        self._records.put(renewed)
        self._held = renewed

    def release(self) -> None:
        """Stop renewing, and mark the lease released so the next writer need not wait."""
        self._stop.set()
        self._thread.join()
        if self._lost is not None:
            return
        done = LeaseRecord(
            self._held.version, self._held.owner, self._held.holder, time.time(), released=True
        )
        self._records.put(done)


def _try_take(records: LeaseRecords, owner: str, seconds: float) -> LeaseRecord:
    """Take the lease when it is free: the record now in force (ours when `owner` matches)."""
    existing = records.all()
    newest = existing[-1] if existing else None
    now = time.time()
    if newest is not None and not newest.free(now):
        return newest
    version = newest.version + 1 if newest is not None else 1
    holder = describe_holder(records.settings)
    mine = LeaseRecord(version, owner, holder, now + seconds, released=False)
    stored = records.add(mine)
    if stored is None or stored.owner != owner:
        return stored or mine
    after = records.all()
    if after[-1].version != version:  # we read a stale newest record: give way
        records.put(LeaseRecord(version, owner, holder, now, released=True))
        return after[-1]
    records.delete([r for r in after[: -1 - KEEP_RECORDS]])
    return stored


def take_lease(
    settings: Settings,
    client: Any,
    *,
    on_wait: Callable[[str], None],
    seconds: float = LEASE_SECONDS,
) -> WriterLease:
    """The writer lease of the index on the server, waiting up to BOT_LOCK_TIMEOUT for it; calls
    `on_wait(holder)` once if it must wait. One clear BotError when the wait runs out."""
    records = LeaseRecords(settings, client)
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + settings.lock_timeout
    waited = False
    while True:
        current = _try_take(records, owner, seconds)
        if current.owner == owner:
            return WriterLease(records, current, seconds)
        if time.monotonic() >= deadline:
            raise BotError(
                f"Another writer ({current.holder}) kept the index on {settings.chroma_url} "
                f"locked for {settings.lock_timeout:.0f}s",
                hint="wait for it to finish, or raise BOT_LOCK_TIMEOUT; a crashed writer's "
                f"lease frees after {seconds:.0f}s",
            )
        if not waited:
            on_wait(current.holder)
            waited = True
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
