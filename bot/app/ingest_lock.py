"""One writer at a time per index: `bot ingest`, `bot update` and `bot forget` all write under
`write_lock`.

In a data directory a file lock keeps two runs apart. With a Chroma server, writers in other data
directories (other machines) share no file, so the lock also takes the writer lease kept in the
server (bot.index.lease). A second writer waits, saying so once, then gives up with one line.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from bot.core.diskspace import disk_full_error, says_disk_full
from bot.core.errors import BotError
from bot.core.settings import Settings
from bot.core.types import Progress

if TYPE_CHECKING:
    from bot.index.lease import WriterLease

WAITING = "Another `bot ingest` is writing to this index; waiting for it to finish…"


class WriteLock:
    """The data directory's lock file, and with a server the writer lease (`lease`)."""

    def __init__(self, file_lock: Any, lease: WriterLease | None) -> None:
        self._file_lock = file_lock
        self.lease = lease

    def release(self) -> None:
        try:
            if self.lease is not None:
                with contextlib.suppress(BotError):  # an unreachable server: the lease expires
                    self.lease.release()
        finally:
            self._file_lock.release()


def write_lock(settings: Settings, notify: Progress) -> WriteLock:
    """Wait for (up to BOT_LOCK_TIMEOUT), then hold, the right to write the index."""
    file_lock = _file_lock(settings, notify)
    if not settings.chroma_url:
        return WriteLock(file_lock, None)
    try:
        return WriteLock(file_lock, _server_lease(settings, notify))
    except BaseException:
        file_lock.release()
        raise


def _server_lease(settings: Settings, notify: Progress) -> WriterLease:
    from bot.index.chroma import open_client
    from bot.index.lease import take_lease

    def waiting(holder: str) -> None:
        notify.note(f"Another writer ({holder}) is writing to this index; waiting for it…")

    return take_lease(settings, open_client(settings), on_wait=waiting)


def _file_lock(settings: Settings, notify: Progress) -> Any:
    """One ingest at a time per data directory: a second one waits (saying so), then gives up
    clearly."""
    from filelock import FileLock, Timeout

    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _data_dir_error(settings, exc, "create", "set") from None
    target = settings.chroma_url or "embedded"
    safe = "".join(c if c.isalnum() else "_" for c in f"{target}-{settings.collection}")
    lock = FileLock(str(settings.data_dir / f"ingest-{safe}.lock"))
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            notify.note(WAITING)
            try:
                lock.acquire(timeout=settings.lock_timeout)
            except Timeout:
                raise BotError(
                    f"Another `bot ingest` kept the index locked for {settings.lock_timeout:.0f}s",
                    hint="wait for it to finish, or raise BOT_LOCK_TIMEOUT",
                ) from None
    except OSError as exc:  # Timeout is an OSError too, but is handled above
        raise _data_dir_error(settings, exc, "write to", "make it writable, or set") from None
    return lock


def _data_dir_error(settings: Settings, exc: OSError, doing: str, fix: str) -> BotError:
    """The one line for a data directory the lock file cannot be made in."""
    if says_disk_full(exc):
        return disk_full_error(settings.data_dir, 0)
    return BotError(
        f"Cannot {doing} the data directory {settings.data_dir}: "
        f"{(exc.strerror or type(exc).__name__).lower()}",
        hint=f"{fix} BOT_DATA_DIR to a writable folder",
    )
