"""Opening Chroma, and Chroma's failures as one-line errors (for bot.index.store, its only user).

chromadb is imported on first use, not when bot is: `bot --help` and the commands that never
open the index do not pay for it. Once the store is open, a failure of Chroma itself (a server
that goes away mid-command, a database that turns read-only, a full disk) becomes a one-line
`BotError` that names the server URL or the index folder and the fix (`store_failure`); our own
bugs still surface as what they are.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bot.core.diskspace import disk_full_error, lacks_space_for, says_disk_full
from bot.core.errors import BotError, BotWarning
from bot.core.settings import Settings
from bot.index.embeddings import Embedder

# The vector of every manifest record: the manifests are looked up by id, never by similarity.
MANIFEST_VECTOR = [1.0]
# Longest Chroma error text quoted in a message.
DETAIL_CHARS = 200
# Chroma's database file inside the index folder; its vector files sit in one folder per segment.
DATABASE_FILE = "chroma.sqlite3"
# The fix for an index that is damaged or that this bot cannot read (the `ingest` option).
REBUILD_FIX = "`bot ingest PATHS --rebuild` (PATHS: the files or folders you indexed)"
# How Chroma reports damaged files: SQLite's SQLITE_CORRUPT and SQLITE_NOTADB, a schema that lost
# its tables, and vector (HNSW) files that cannot be read back.
_DAMAGE_TEXTS = (
    "database disk image is malformed",
    "file is not a database",
    "no such table",
    "hnsw segment",
    "error loading hnsw",
    "deserializing pickle",
    "unique constraint failed",  # creating a collection whose lookup by name failed
    "tenant [default_tenant] not found",  # Chroma creates it with the database
    "failed to get segments",
)
# The small tables Chroma reads whenever it opens its database.
_STARTUP_TABLES = frozenset(
    {"migrations", "acquire_write", "tenants", "databases", "collections", "collection_metadata",
     "segments", "segment_metadata", "max_seq_id", "embeddings_queue_config"}
)  # fmt: skip
# Damage seen only while Chroma opens its database: a migration it finds applied and not applied.
_OPEN_DAMAGE_TEXTS = ("already exists",)


class IndexDamaged(BotError):
    """The embedded index's files are damaged: `bot ingest PATHS --rebuild` moves them aside."""

    def __init__(self, settings: Settings, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"The index in {settings.chroma_dir} is damaged: {reason}",
            hint=f"rebuild it with {REBUILD_FIX}; the damaged files are moved aside, not deleted",
        )


def import_chromadb() -> Any:
    """The chromadb module, imported on first use."""
    import chromadb

    return chromadb


def _chroma_settings() -> Any:
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def describe_location(settings: Settings) -> str:
    return settings.chroma_url or str(settings.chroma_dir)


def open_client(settings: Settings) -> Any:
    """A Chroma client for the embedded index or the server named by BOT_CHROMA_URL."""
    if settings.chroma_url:
        return _open_http_client(settings, settings.chroma_url)
    try:
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if says_disk_full(exc):
            raise disk_full_error(settings.data_dir, 0) from exc
        raise BotError(
            f"Cannot create the data directory {settings.data_dir}: {exc.strerror}",
            hint="set BOT_DATA_DIR to a writable folder",
        ) from exc
    damage = missing_database(settings.chroma_dir) or failed_check(
        settings.chroma_dir, thorough=False
    )
    if damage is not None:
        # Chroma would start a new, empty database beside the old vector files, or panic.
        raise IndexDamaged(settings, damage)
    chromadb = import_chromadb()
    try:
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=_chroma_settings())
    except BaseException as exc:
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise  # Ctrl-C, exit; a Rust panic in Chroma is a failure like any other
        # Chroma keeps a system that failed to start in its per-folder cache and would hand it to
        # every later client of the folder (after a rebuild moved it aside, say): forget it.
        chromadb.api.client.SharedSystemClient.clear_system_cache()
        raise _open_failure(settings, exc) from exc


def _open_failure(settings: Settings, exc: BaseException) -> BotError:
    """The one-line error for an embedded index that Chroma could not open."""
    detail = short_detail(exc)
    if says_disk_full(exc):
        return disk_full_error(settings.data_dir, 0, index_dir=settings.chroma_dir)
    if is_damage(exc) or any(text in detail.lower() for text in _OPEN_DAMAGE_TEXTS):
        return IndexDamaged(settings, detail)
    if "readonly" in detail.lower() or "read-only" in detail.lower():
        # Chroma writes to its database whenever it opens it, even to read.
        return BotError(
            f"The index in {settings.chroma_dir} is read-only ({detail})",
            hint="make the folder writable, or set BOT_DATA_DIR to a writable folder",
        )
    if _accessible(settings.chroma_dir):
        # Readable and writable, yet Chroma cannot open it: its files are what is wrong.
        return IndexDamaged(settings, detail)
    return BotError(
        f"Cannot open the index in {settings.chroma_dir}: {detail}",
        hint="check the folder's permissions, or set BOT_DATA_DIR",
    )


def _accessible(chroma_dir: Path) -> bool:
    """This process may read and write the index folder and its database."""
    database = chroma_dir / DATABASE_FILE
    full = os.R_OK | os.W_OK
    return os.access(chroma_dir, full | os.X_OK) and (
        not database.exists() or os.access(database, full)
    )


def _segment_folders(chroma_dir: Path) -> list[Path]:
    """The vector folders of an embedded index (Chroma names each after its segment's UUID)."""
    found = []
    for child in chroma_dir.iterdir() if chroma_dir.is_dir() else []:
        with contextlib.suppress(ValueError):
            if child.is_dir() and uuid.UUID(child.name):
                found.append(child)
    return found


def missing_database(chroma_dir: Path) -> str | None:
    """Why the index folder is damaged when its database is missing or empty while vector
    folders remain (None: it is not). A new index has neither."""
    folders = _segment_folders(chroma_dir)
    database = chroma_dir / DATABASE_FILE
    if not folders or (database.is_file() and database.stat().st_size > 0):
        return None
    state = "empty" if database.exists() else "missing"
    plural = "s remain" if len(folders) != 1 else " remains"
    return f"its database {DATABASE_FILE} is {state} while {len(folders)} vector folder{plural}"


_SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


def damage_at_a_glance(chroma_dir: Path) -> str | None:
    """Damage seen without opening the database (None: none seen): a missing or empty database
    beside vector folders, or a file that does not start as a SQLite database does. Cheap enough
    for every read, including one served from the read snapshot, which never opens Chroma."""
    problem = missing_database(chroma_dir)
    database = chroma_dir / DATABASE_FILE
    if problem is None and database.is_file():
        with database.open("rb") as file:
            if file.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
                problem = f"{DATABASE_FILE}: it is not a SQLite database (its header is damaged)"
    return problem


def failed_check(chroma_dir: Path, *, thorough: bool) -> str | None:
    """What SQLite finds wrong with the index database (None: nothing, or no database). Quick:
    read the small tables Chroma reads when it opens the database, where damage makes it panic
    with lines of its own on stderr. Thorough: check every page (for a rebuild, or to tell damage
    from another failure). Either way a database that holds no table at all is damage: Chroma
    would start a new, empty index over it."""
    database = chroma_dir / DATABASE_FILE
    if not database.is_file() or database.stat().st_size == 0:
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            problem = None if tables else "it holds no tables"
            if thorough and problem is None:
                rows = db.execute("PRAGMA quick_check").fetchall()
                found = [line for row in rows for line in str(row[0]).splitlines()]
                if found != ["ok"]:
                    problem = next((ln for ln in found if not ln.startswith("***")), found[0])
            elif problem is None:
                for table in sorted(tables & _STARTUP_TABLES):
                    db.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 - known names
    except sqlite3.DatabaseError as exc:
        problem = short_detail(exc) if is_damage(exc) else None
    return None if problem is None else f"{DATABASE_FILE}: {short_detail(Exception(problem))}"


def damage_found(settings: Settings) -> str | None:
    """Why the embedded index is damaged, checking every page (None: it is not, or the index is
    on a server): before loading anything into an index that looks empty, or to tell damage from
    another failure."""
    if settings.chroma_url:
        return None
    return missing_database(settings.chroma_dir) or failed_check(settings.chroma_dir, thorough=True)


def is_damage(exc: BaseException) -> bool:
    """Chroma failed because the files of the index are damaged."""
    text = " ".join(str(e) for e in _chain(exc)).lower()
    return any(marker in text for marker in _DAMAGE_TEXTS)


def is_missing_collection(exc: BaseException) -> bool:
    """Chroma failed because the collection asked for does not exist."""
    names = ("NotFoundError", "InvalidCollectionException")
    return "does not exist" in str(exc).lower() or type(exc).__name__ in names


def lost_collection(settings: Settings, client: Any, name: str) -> str | None:
    """Why an embedded index whose collection `name` Chroma cannot find is damaged rather than
    new (None: it is new): Chroma still lists that collection."""
    if settings.chroma_url:
        return None
    if name in {collection.name for collection in client.list_collections()}:
        return f"Chroma lists collection {name!r} but cannot open it"
    return None


def is_read_only(exc: BaseException) -> bool:
    """Chroma failed because the index folder or its files cannot be written."""
    text = " ".join(str(e) for e in _chain(exc)).lower()
    return any(marker in text for marker in ("readonly", "read-only", "permission"))


def move_aside(settings: Settings) -> Path:
    """Rename the embedded index folder to a timestamped one beside it (never delete a user's
    data: a damaged index may still be worth reading); returns the new folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = settings.data_dir / f"chroma.damaged-{stamp}"
    n = 1
    while target.exists():
        n += 1
        target = settings.data_dir / f"chroma.damaged-{stamp}-{n}"
    try:
        settings.chroma_dir.rename(target)
    except OSError as exc:
        raise BotError(
            f"Cannot move the damaged index {settings.chroma_dir} aside: "
            f"{(exc.strerror or type(exc).__name__).lower()}",
            hint=f"move or delete that folder yourself, then run {REBUILD_FIX}",
        ) from exc
    return target


def _open_http_client(settings: Settings, chroma_url: str) -> Any:
    url = urlparse(chroma_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise BotError(
            f"BOT_CHROMA_URL={chroma_url!r} is not an http(s) URL",
            hint="use e.g. http://127.0.0.1:8000",
        )
    port = url.port or (443 if url.scheme == "https" else 8000)
    chromadb = import_chromadb()
    try:
        client = chromadb.HttpClient(
            host=url.hostname, port=port, ssl=url.scheme == "https", settings=_chroma_settings()
        )
        client.heartbeat()
    except Exception as exc:  # chromadb raises several unrelated types for a dead server
        raise BotError(
            f"Cannot reach the Chroma server at {chroma_url}",
            hint="start it with `chroma run`, or unset BOT_CHROMA_URL to use the embedded index",
        ) from exc
    return client


def short_detail(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none), shortened."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:DETAIL_CHARS]


# Libraries whose exceptions mean "Chroma or the way to it failed" (not a bug in bot).
_STORE_ERROR_ROOTS = frozenset(
    {"chromadb", "chromadb_rust_bindings", "httpx", "httpcore", "httpx2", "httpcore2", "sqlite3"}
)
_CONNECTION_REASONS = (
    ("connection refused", "connection refused"),
    ("server disconnected", "the server disconnected"),
    ("peer closed connection", "the server disconnected"),
    ("incomplete chunked read", "the server disconnected"),
    ("connection reset", "connection reset"),
    ("broken pipe", "connection reset"),
    ("timed out", "timed out"),
    ("name or service not known", "host not found"),
)


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _is_store_error(exc: BaseException) -> bool:
    for err in _chain(exc):
        if isinstance(err, OSError):
            return True
        if {cls.__module__.split(".")[0] for cls in type(err).__mro__} & _STORE_ERROR_ROOTS:
            return True
    return False


def connection_reason(exc: BaseException) -> str | None:
    """'connection refused', 'the server disconnected'...; None when not a connection failure."""
    chain = _chain(exc)
    text = " ".join(f"{type(e).__name__} {e}" for e in chain).lower()
    for needle, reason in _CONNECTION_REASONS:
        if needle in text:
            return reason
    names = " ".join(type(e).__name__ for e in chain)
    if any(k in names for k in ("ConnectError", "RemoteProtocolError", "ReadError", "WriteError")):
        return "the connection failed"
    if any(isinstance(e, ConnectionError) for e in chain):
        return "the connection failed"
    return None


def store_failure(settings: Settings, exc: BaseException, needed: int = 0) -> BotError | None:
    """A one-line BotError for a Chroma failure while the store is in use (None: not one).
    `needed`: the bytes the failed call was writing (0: it was reading)."""
    if isinstance(exc, BotError):
        return exc
    if not _is_store_error(exc):
        return None
    if settings.chroma_url:
        reason = connection_reason(exc)
        if reason is not None:
            return BotError(
                f"Lost the Chroma server at {settings.chroma_url} ({reason})",
                hint="is it still running? Start it again and re-run the command; "
                "`bot ingest` repairs what an interrupted run left",
            )
        return BotError(
            f"The Chroma server at {settings.chroma_url} failed: {short_detail(exc)}",
            hint="check the server's log, then re-run the command",
        )
    detail = short_detail(exc)
    # Chroma's compaction reports a write the disk refused only as a failure to apply its log.
    if says_disk_full(exc) or (needed > 0 and lacks_space_for(settings.data_dir, needed)):
        return disk_full_error(settings.data_dir, needed, index_dir=settings.chroma_dir)
    if is_damage(exc):
        return IndexDamaged(settings, detail)
    if is_read_only(exc):
        hint = "make the folder writable, or set BOT_DATA_DIR to a writable folder"
    else:
        # Chroma names some damage only by what then failed ("Failed to pull logs..."): ask SQLite.
        damage = damage_found(settings)
        if damage is not None:
            return IndexDamaged(settings, damage)
        hint = f"run the command again; if it keeps failing, rebuild with {REBUILD_FIX}"
    return BotError(f"The index in {settings.chroma_dir} failed: {detail}", hint=hint)


@contextlib.contextmanager
def failures_as_bot_errors(settings: Settings, needed: int = 0) -> Iterator[None]:
    """Inside: a Chroma failure is raised as its one-line BotError (`store_failure`); `needed`:
    the bytes written inside, for a failure whose message hides a full disk."""
    try:
        yield
    except Exception as exc:
        mapped = store_failure(settings, exc, needed)
        if mapped is None or mapped is exc:
            raise
        raise mapped from exc


def embedding_function(embedder: Embedder | None) -> Any:
    """Our embedder as Chroma's embedding function (None: the manifests' constant vector), so
    Chroma never falls back to its own default function, which downloads a model."""
    from chromadb.api.types import EmbeddingFunction

    class BotEmbeddingFunction(EmbeddingFunction):
        def __init__(self, inner: Embedder | None) -> None:
            self._inner = inner

        def __call__(self, input: Sequence[str]) -> Any:  # noqa: A002 - Chroma's parameter name
            if self._inner is None:
                return [list(MANIFEST_VECTOR) for _ in input]
            return list(self._inner.embed(list(input)))

    return BotEmbeddingFunction(embedder)


def collection_names(name: str) -> tuple[str, str, str]:
    """The chunk collection and the two manifests of the index called `name`."""
    return name, f"{name}__articles", f"{name}__files"


def drop_collections(client: Any, name: str) -> None:
    """Delete the index called `name`, as far as it exists."""
    for collection in collection_names(name):
        with contextlib.suppress(Exception):  # a collection that was never created
            client.delete_collection(collection)


def rebuild_from_scratch(settings: Settings) -> None:
    """Delete the index named by the settings (its three collections). An embedded index whose
    files are damaged is moved aside whole instead, and a warning says where."""
    if settings.chroma_url:
        drop_collections(open_client(settings), settings.collection)
        return
    reason = damage_found(settings)
    if reason is None:
        try:
            _drop_embedded(settings)
            return
        except IndexDamaged as exc:
            reason = exc.reason
    moved = move_aside(settings)
    warnings.warn(
        f"The index in {settings.chroma_dir} was damaged ({reason}): moved it to {moved}; "
        "building a fresh one",
        BotWarning,
        stacklevel=2,
    )


def _drop_embedded(settings: Settings) -> None:
    """Drop the embedded index's collections and check that they are gone (a damaged file can
    make Chroma keep a collection it was told to delete); IndexDamaged when they are not."""
    client = open_client(settings)
    names = set(collection_names(settings.collection))
    try:
        drop_collections(client, settings.collection)
        left = sorted(names & {c.name for c in client.list_collections()})
    except Exception as exc:
        client.close()  # the folder may be moved next: nothing may keep its database open
        mapped = store_failure(settings, exc)
        if mapped is None:
            raise
        if says_disk_full(exc) or is_read_only(exc):
            raise mapped from exc
        raise IndexDamaged(settings, short_detail(exc)) from exc
    if left:
        client.close()
        raise IndexDamaged(settings, f"Chroma kept {', '.join(left)} after deleting it")
