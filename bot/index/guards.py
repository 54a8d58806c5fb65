"""How the store's methods meet Chroma's failures: each call that touches Chroma turns a failure
into a one-line `BotError` (bot.index.chroma.store_failure), each write first removes the read
snapshot's pointer (bot.index.snapshot), and a write that runs out of space says "disk full" with
the space it needed."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

from bot.core.settings import Settings
from bot.index.chroma import failures_as_bot_errors
from bot.index.snapshot import retract_snapshot

if TYPE_CHECKING:
    from bot.index.lease import WriterLease

# Bytes on disk per byte written, as Chroma stores a record: its text and metadata go into the
# database, a string index and a full-text index; its vector into the write log and the HNSW files.
TEXT_DISK_FACTOR = 5
VECTOR_DISK_FACTOR = 2


class HasSettings(Protocol):
    settings: Settings


class Writes(HasSettings, Protocol):
    lease: WriterLease | None  # the writer lease on a Chroma server, checked before each write


_S = TypeVar("_S", bound=HasSettings)
_W = TypeVar("_W", bound=Writes)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def guarded(method: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
    """The method, with Chroma's failures raised as one-line BotErrors (`store_failure`)."""

    @functools.wraps(method)
    def call(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with failures_as_bot_errors(self.settings):
            return method(self, *args, **kwargs)

    return call


def writing(method: Callable[Concatenate[_W, _P], _R]) -> Callable[Concatenate[_W, _P], _R]:
    """A method that writes to Chroma: with a server, only while this process holds the writer
    lease (bot.index.lease); the snapshot's pointer is removed first (durably), so no reader
    takes the snapshot for the index from then on (bot.index.snapshot); then the method runs
    `guarded`."""
    inner = guarded(method)

    @functools.wraps(method)
    def call(self: _W, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        if self.lease is not None:
            self.lease.check()
        with failures_as_bot_errors(self.settings):
            retract_snapshot(self.settings)
        return inner(self, *args, **kwargs)

    return call


def space_for(
    settings: Settings, records: Sequence[Any] = (), vector_bytes: int = 0
) -> AbstractContextManager[None]:
    """Inside: a write of `records` (metadata dicts or texts) and vectors; a failure for lack of
    space says "disk full" with the space it needed, even when Chroma's message hides it."""
    text_bytes = sum(len(str(r).encode("utf-8", "replace")) for r in records)
    needed = TEXT_DISK_FACTOR * text_bytes + VECTOR_DISK_FACTOR * vector_bytes
    return failures_as_bot_errors(settings, max(1, needed))
