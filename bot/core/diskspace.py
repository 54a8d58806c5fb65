"""Disk full, said as such: recognising a write that failed for lack of space, and the one-line
error (or warning) that names the data directory, the space free and the space needed."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from bot.core.errors import BotError

# Error numbers of a write refused for lack of space (a full disk, or a user's quota spent).
_NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# How libraries that hide the OSError say it: SQLite's SQLITE_FULL, and the C library's text.
_NO_SPACE_TEXTS = ("database or disk is full", "no space left on device", "disk quota exceeded")
# Room any write to the index needs at least: Chroma's SQLite database needs about this much to
# create its tables, or to journal one transaction, however small the records are.
MIN_WRITE_BYTES = 1 << 20
DISK_FULL_HINT = "free some space, or set BOT_DATA_DIR to a bigger disk, then run the command again"


def says_disk_full(exc: BaseException) -> bool:
    """The exception (or one it was raised from) is a write refused for lack of space."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _NO_SPACE_ERRNOS:
            return True
        if any(text in str(current).lower() for text in _NO_SPACE_TEXTS):
            return True
        current = current.__cause__ or current.__context__
    return False


def free_bytes(path: Path) -> int | None:
    """Free space on the disk that holds `path` (its nearest existing folder); None: unknown."""
    folder = path
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def folder_bytes(path: Path) -> int:
    """Bytes of the files under `path` (0 when it does not exist)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue  # deleted while walking
    return total


def human_bytes(n: int) -> str:
    """'512 bytes', '3.4 KB', '12.0 MB', '1.2 GB' (powers of 1024)."""
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


def disk_full_message(data_dir: Path, needed: int, what: str) -> str:
    """'Disk full: <data_dir> has N free, and <what> needs about M'."""
    free = free_bytes(data_dir)
    free_text = "no space left" if free is None else f"{human_bytes(free)} free"
    return f"Disk full: {data_dir} has {free_text}, and {what} needs about {human_bytes(needed)}"


def disk_full_error(data_dir: Path, needed: int, *, index_dir: Path | None = None) -> BotError:
    """The one-line error for a write to the index refused for lack of space."""
    message = disk_full_message(data_dir, max(needed, MIN_WRITE_BYTES), "writing to the index")
    if index_dir is not None:
        message += f" (the index takes {human_bytes(folder_bytes(index_dir))})"
    return BotError(message, hint=DISK_FULL_HINT)


def lacks_space_for(data_dir: Path, needed: int) -> bool:
    """The disk holding `data_dir` has less free space than a write of `needed` bytes takes: the
    likely cause of a write that failed with a message that does not say why."""
    free = free_bytes(data_dir)
    return free is not None and free < max(needed, MIN_WRITE_BYTES)
