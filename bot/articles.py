"""Load article files (txt, md, html, json, jsonl) into `ArticleRecord`s.

Every whole-file failure raises `IngestFileError` with a one-line message; per-record problems
become one-line warnings. Neither names the file: the caller reports them next to its path
(`failed: PATH: ERROR`). Heavy or optional libraries (trafilatura, yaml, dateutil,
charset_normalizer) are imported inside the functions that use them.
"""

from __future__ import annotations

import codecs
import datetime as dt
import errno
import hashlib
import html as html_lib
import json
import math
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.errors import IngestFileError

__all__ = [
    "SUPPORTED_SUFFIXES",
    "ArticleRecord",
    "LoadResult",
    "discover_files",
    "load_file",
    "make_article_id",
    "normalise_date",
    "normalise_text",
    "safe_path",
    "strip_terminal_controls",
]

SUPPORTED_SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl"}
TITLE_MAX = 300


@dataclass(frozen=True)
class ArticleRecord:
    article_id: str  # "a" + sha256(text)[:16]  (same text under two paths -> same id)
    title: str
    source: str
    url: str
    published: str  # ISO 8601 or "" when unknown
    path: str  # absolute file path; for a JSON/JSONL record "path#N" (N = 1-based record/line)
    text: str  # normalised text
    content_hash: str  # sha256 hex of text


@dataclass
class LoadResult:
    articles: list[ArticleRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# text helpers

# Terminal escape sequences, removed whole (removing only ESC would leave "[31m" in the text).
# String commands (OSC, DCS, SOS, PM, APC) go with their payload when terminated (BEL or ST) within
# 4096 characters; otherwise only the introducer goes. The 8-bit C1 forms likewise.
_ESCAPE_SEQUENCE = re.compile(
    r"""
      \x1b\][^\x07\x1b\x9c]{0,4096}(?:\x07|\x1b\\|\x9c)      # OSC (window titles, hyperlinks)
    | \x1b[PX^_][^\x1b\x9c]{0,4096}(?:\x1b\\|\x9c)         # DCS SOS PM APC
    | \x1b\[[0-?]*[ -/]*[@-~]?                             # CSI (colours, cursor moves)
    | \x1b[ -/]*[0-~]?                                     # other ESC sequences
    | \x9d[^\x07\x1b\x9c]{0,4096}(?:\x07|\x9c)             # 8-bit OSC
    | [\x90\x98\x9e\x9f][^\x1b\x9c]{0,4096}\x9c            # 8-bit DCS SOS PM APC
    | \x9b[0-?]*[ -/]*[@-~]                                # 8-bit CSI
    """,
    re.VERBOSE,
)
# C0 controls except \t \n (\r is converted first), DEL, C1 controls, bidi embeddings/overrides and
# isolates, and the zero-width no-break space (BOM).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]")
_TRAILING_WS = re.compile(r"[^\S\n]+(?=\n|\Z)")
_MANY_BLANKS = re.compile(r"\n{4,}")
_UNSAFE_IN_MESSAGE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def strip_terminal_controls(text: str) -> str:
    """`text` without escape sequences (removed whole) and control characters but \\n and \\t;
    \\r\\n, \\r, U+2028 and NEL become \\n, U+2029 a blank line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Unicode line and paragraph separators end lines and paragraphs, as they do for a reader.
    text = text.replace("\u2028", "\n").replace("\u2029", "\n\n").replace("\x85", "\n")
    text = _ESCAPE_SEQUENCE.sub("", text)
    return _CONTROL.sub("", text)


def normalise_text(raw: str) -> str:
    """The stored form of an article's text; all chunk offsets index this string."""
    text = strip_terminal_controls(raw)
    text = _TRAILING_WS.sub("", text)
    text = _MANY_BLANKS.sub("\n\n\n", text)
    return text.strip()


def make_article_id(text: str) -> str:
    return "a" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def safe_path(path: str | os.PathLike[str]) -> str:
    """A path for a one-line message: control chars, line separators and lone surrogates escaped."""

    def esc(m: re.Match[str]) -> str:
        code = ord(m.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _UNSAFE_IN_MESSAGE.sub(esc, os.fspath(path))


def _one_line(value: object, limit: int = TITLE_MAX) -> str:
    return " ".join(str(value).split())[:limit].strip()


def _first_line(text: str) -> str:
    for line in text.split("\n"):
        if line.strip():
            return _one_line(line)
    return ""


def _record(
    text: str, *, title: str, source: str, url: str, published: str, path: str
) -> ArticleRecord:
    return ArticleRecord(
        article_id=make_article_id(text),
        title=_one_line(title) or _first_line(text),
        source=_one_line(source),
        url=_one_line(url, 2000),
        published=published,
        path=path,
        text=text,
        content_hash=_content_hash(text),
    )


# --------------------------------------------------------------------------------------------------
# dates

_EPOCH_STR = re.compile(r"[+-]?\d{9,14}(?:\.\d+)?")
_YEAR_MIN, _YEAR_MAX = 1800, 2200


def _from_datetime(value: dt.datetime, has_time: bool) -> str:
    if not _YEAR_MIN <= value.year <= _YEAR_MAX:
        return ""
    if not has_time:
        return value.date().isoformat()
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat(timespec="seconds")


def _from_epoch(seconds: float) -> str:
    if math.isnan(seconds) or math.isinf(seconds):
        return ""
    if abs(seconds) > 1e11:
        seconds /= 1000.0  # milliseconds
    try:
        value = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return ""
    return _from_datetime(value, True)


def normalise_date(value: object) -> str:
    """ISO 8601 for a date ("2023-11-24") or a date with time ("2023-11-24T17:01:22+00:00").

    Accepts datetime/date objects, ISO strings, free-form and RFC 2822 strings, and unix epochs
    (seconds; values above 1e11 are taken as milliseconds). Naive times are taken as UTC. Returns ""
    for anything impossible, incomplete (no year/month/day), outside 1800-2200 or unparseable.
    """
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, dt.datetime):
        return _from_datetime(value, True)
    if isinstance(value, dt.date):
        return value.isoformat() if _YEAR_MIN <= value.year <= _YEAR_MAX else ""
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return ""
    text = value.strip()
    if not text or len(text) > 200:
        return ""
    if _EPOCH_STR.fullmatch(text):
        return _from_epoch(float(text))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return normalise_date(dt.date.fromisoformat(text))
        except ValueError:
            return ""
    try:
        parsed = dt.datetime.fromisoformat(
            text.replace("Z", "+00:00") if text.endswith("Z") else text
        )
        return _from_datetime(parsed, True)
    except ValueError:
        pass
    return _parse_free_date(text)


def _parse_free_date(text: str) -> str:
    import warnings

    from dateutil import parser as date_parser

    # Parse twice with different defaults: a field that differs was missing from the string.
    first = dt.datetime(2000, 1, 1, 0, 0, 0)
    second = dt.datetime(2001, 2, 2, 1, 1, 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = date_parser.parse(text, default=first)
            b = date_parser.parse(text, default=second)
    except (ValueError, OverflowError, TypeError, AttributeError, IndexError):
        return ""
    if (a.year, a.month, a.day) != (b.year, b.month, b.day):
        return ""
    has_time = (a.hour, a.minute, a.second) == (b.hour, b.minute, b.second)
    return _from_datetime(a, has_time)


# --------------------------------------------------------------------------------------------------
# discovery


def _oserror_text(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


def discover_files(paths: Iterable[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files and folders into supported article files.

    Returns (absolute, deduplicated, sorted files; [(path, one-line error without the path)]).
    Folders are walked
    recursively without following directory symlinks (so symlink loops cannot recur); file symlinks
    are followed; hidden folders and files are skipped; unsupported files inside folders are
    skipped silently, but a file named explicitly with an unsupported suffix is an error.
    """
    found: set[str] = set()
    errors: list[tuple[str, str]] = []

    def error(p: str, message: str) -> None:
        errors.append((p, message))

    for given in paths:
        p = os.path.abspath(os.fspath(given))
        try:
            st = os.stat(p)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                error(p, "symlink loop")
            elif os.path.islink(p):
                error(p, "broken symlink")
            elif exc.errno == errno.ENOENT:
                error(p, "no such file or directory")
            else:
                error(p, f"cannot access: {_oserror_text(exc)}")
            continue
        if stat.S_ISDIR(st.st_mode):
            _walk(p, found, error)
        elif not stat.S_ISREG(st.st_mode):
            error(p, "not a regular file")
        elif Path(p).suffix.lower() not in SUPPORTED_SUFFIXES:
            supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
            error(
                p, f"unsupported file type {Path(p).suffix or '(none)'!r} (supported: {supported})"
            )
        else:
            found.add(p)
    return [Path(f) for f in sorted(found)], errors


def _walk(top: str, found: set[str], error: Any) -> None:
    def on_error(exc: OSError) -> None:
        where = exc.filename if isinstance(exc.filename, str) else top
        error(os.path.abspath(where), f"cannot read folder: {_oserror_text(exc)}")

    for dirpath, dirnames, filenames in os.walk(top, onerror=on_error, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            full = os.path.join(dirpath, name)
            try:
                st = os.stat(full)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    error(full, "symlink loop")
                elif os.path.islink(full):
                    error(full, "broken symlink")
                else:
                    error(full, f"cannot access: {_oserror_text(exc)}")
                continue
            if stat.S_ISREG(st.st_mode):
                found.add(full)


# --------------------------------------------------------------------------------------------------
# reading and decoding

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Single-byte Latin code pages charset detection confuses on short Western text; cp1252 wins then.
_LATIN_GUESSES = {
    "cp1250", "cp1252", "cp1254", "cp1257", "latin_1", "iso8859_2", "iso8859_9", "iso8859_13",
    "iso8859_15", "iso8859_16", "mac_roman", "mac_latin2", "cp850", "cp437",
}  # fmt: skip
_BINARYISH = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f\ufffd]")


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise IngestFileError(f"cannot read file: {_oserror_text(exc)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise IngestFileError("is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise IngestFileError("not a regular file")
    if st.st_size > max_bytes:
        raise IngestFileError(_too_large(st.st_size, max_bytes))
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except PermissionError:
        raise IngestFileError("cannot read file: permission denied") from None
    except OSError as exc:
        raise IngestFileError(f"cannot read file: {_oserror_text(exc)}") from None
    if len(data) > max_bytes:
        raise IngestFileError(_too_large(len(data), max_bytes))
    return data


def _too_large(size: int, max_bytes: int) -> str:
    mb = 1024 * 1024
    return (
        f"file is too large ({size / mb:.1f} MB, limit {max_bytes / mb:g} MB; "
        "raise BOT_MAX_FILE_MB to ingest it)"
    )


# Bytes that text never holds: C0 controls but \t \n \v \f \r and ESC (ANSI colours), and DEL.
_NON_TEXT_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F])
# A file with NUL bytes is text with stray NULs (dropped, with a warning) while its NUL and other
# non-text bytes stay within this many, or this share of its size; beyond that it is binary.
STRAY_NUL_BYTES = 4
STRAY_NUL_SHARE = 0.005


def _drop_stray_nuls(data: bytes, warnings: list[str]) -> bytes:
    """`data` without NUL bytes when they are strays in text; IngestFileError when binary."""
    if b"\x00" not in data:
        return data
    non_text = len(data) - len(data.translate(None, _NON_TEXT_BYTES))
    if non_text > max(STRAY_NUL_BYTES, len(data) * STRAY_NUL_SHARE):
        hint = ""
        if data[1::2].count(0) > len(data) // 4 or data[0::2].count(0) > len(data) // 4:
            hint = "; UTF-16 without a byte order mark? Save it as UTF-8"
        raise IngestFileError(
            f"looks like a binary file, not text ({non_text:,} of {len(data):,} bytes are NUL "
            f"or control bytes{hint})"
        )
    nuls = data.count(0)
    warnings.append(f"dropped {nuls} stray NUL byte{'' if nuls == 1 else 's'}")
    return data.replace(b"\x00", b"")


def _decode(data: bytes, warnings: list[str]) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise IngestFileError(
                    f"cannot decode as {encoding} (it starts with a {encoding} byte order "
                    f"mark): {exc.reason} at byte {exc.start}"
                ) from None
    data = _drop_stray_nuls(data, warnings)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    encoding = _guess_encoding(data)
    if encoding is None:
        raise IngestFileError("cannot decode: not UTF-8 and no known text encoding fits")
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        text = data.decode("latin-1")
        encoding = "latin-1"
    warnings.append(f"not valid UTF-8; decoded as {encoding}")
    return text


def _guess_encoding(data: bytes) -> str | None:
    guess: str | None = None
    try:
        import charset_normalizer
    except ImportError:
        charset_normalizer = None  # type: ignore[assignment]
    if charset_normalizer is not None:
        try:
            best = charset_normalizer.from_bytes(data[:2_000_000]).best()
        except Exception:
            best = None
        guess = best.encoding if best is not None else None
    if guess is None or guess in _LATIN_GUESSES:
        try:
            data.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:
            return guess or "latin-1"
    return guess


def _check_text(text: str) -> None:
    if not text.strip():
        raise IngestFileError("file is empty or whitespace only")
    sample = text[:100_000]
    if len(_BINARYISH.findall(sample)) > max(8, len(sample) // 10):
        raise IngestFileError("looks like a binary file (mostly non-text bytes), not text")


# --------------------------------------------------------------------------------------------------
# formats


def load_file(path: Path, *, max_bytes: int) -> LoadResult:
    """Load one file into articles; `IngestFileError` (one line) when the whole file fails.

    Messages and warnings do not name the file (the caller shows them next to its path); a
    warning about one record of a JSON/JSONL file starts with "record N" or "line N".
    """
    try:
        return _load(Path(path), max_bytes)
    except IngestFileError:
        raise
    except RecursionError:
        raise IngestFileError("could not parse: nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - the promise is: nothing but IngestFileError escapes
        detail = safe_path(_one_line(exc, 200))
        raise IngestFileError(f"could not parse: {type(exc).__name__}: {detail}") from None


def _load(path: Path, max_bytes: int) -> LoadResult:
    abs_path = os.path.abspath(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestFileError(f"unsupported file type {path.suffix or '(none)'!r}")
    data = _read_bytes(path, max_bytes)
    if not data:
        raise IngestFileError("file is empty")
    result = LoadResult()
    raw = _decode(data, result.warnings)
    _check_text(raw)
    if suffix == ".txt":
        result.articles.append(_load_plain_text(raw, abs_path))
    elif suffix in (".md", ".markdown"):
        result.articles.append(_load_markdown(raw, abs_path, result.warnings))
    elif suffix in (".html", ".htm"):
        result.articles.append(_load_html(raw, abs_path, result.warnings))
    elif suffix == ".json":
        _load_json(raw, abs_path, result)
    else:
        _load_jsonl(raw, abs_path, result)
    if not result.articles:
        raise IngestFileError("no article records found")
    return result


def _body(raw: str) -> str:
    text = normalise_text(raw)
    if not text:
        raise IngestFileError("file has no text")
    return text


def _load_plain_text(raw: str, abs_path: str) -> ArticleRecord:
    """A .txt file; one that opens with a YAML front matter block is read like markdown."""
    if _FRONT_MATTER.match(raw.lstrip("\ufeff").replace("\r\n", "\n")):
        problems: list[str] = []
        record = _load_markdown(raw, abs_path, problems)
        if not problems:  # a real front matter mapping; otherwise the dashes are just text
            return record
    return _load_txt(raw, abs_path)


def _load_txt(raw: str, abs_path: str) -> ArticleRecord:
    text = _body(raw)
    return _record(text, title="", source="", url="", published="", path=abs_path)


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_MD_HEADING = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)

_TITLE_KEYS = ("title", "headline", "name")
_SOURCE_KEYS = ("source", "outlet", "publisher", "site", "sitename", "site_name")
_URL_KEYS = ("url", "link", "canonical_url")
_DATE_KEYS = ("published", "published_at", "publish_date", "date", "pubdate", "datetime")
_TEXT_KEYS = ("text", "body", "content", "article", "story")


def _lookup(fields: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = fields.get(key)
        if value is not None and value != "":
            return value
    return None


def _source_value(value: Any) -> str:
    if isinstance(value, dict):
        lowered = {str(k).lower(): v for k, v in value.items()}
        inner = _lookup(lowered, ("name", "title", "id"))
        return "" if inner is None else _one_line(inner)
    if value is None or isinstance(value, list):
        return ""
    return _one_line(value)


def _at(where: str, message: str) -> str:
    """A warning, prefixed with the record it is about ("record 3: ...") when there is one."""
    return f"{where}: {message}" if where else message


def _date_value(value: Any, where: str, warnings: list[str]) -> str:
    if value is None or value == "":
        return ""
    iso = normalise_date(value)
    if not iso:
        warnings.append(_at(where, f"unrecognised date {_one_line(repr(value), 60)}; left empty"))
    return iso


@lru_cache(maxsize=1)
def _front_matter_loaders() -> tuple[Any, Any]:
    """PyYAML's SafeLoader and BaseLoader, refusing aliases (`*name`).

    Aliases share nodes, so nine nested lists of nine aliases each (a "billion laughs" front
    matter of a few hundred bytes) make a title whose text has billions of items: building it
    would take minutes and gigabytes. Article metadata never needs aliases.
    """
    import yaml

    class NoAliases:
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.events.AliasEvent):  # type: ignore[attr-defined]
                event = self.peek_event()  # type: ignore[attr-defined]
                raise yaml.composer.ComposerError(
                    None, None, "aliases (*name) are not allowed", event.start_mark
                )
            return super().compose_node(parent, index)  # type: ignore[misc]

    class SafeNoAliases(NoAliases, yaml.SafeLoader):
        pass

    class StringsNoAliases(NoAliases, yaml.BaseLoader):
        pass

    return SafeNoAliases, StringsNoAliases


def _load_markdown(raw: str, abs_path: str, warnings: list[str]) -> ArticleRecord:
    text = raw.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    meta: dict[str, Any] = {}
    m = _FRONT_MATTER.match(text)
    if m:
        import yaml

        safe_loader, string_loader = _front_matter_loaders()
        try:
            try:
                loaded = yaml.load(m.group(1), Loader=safe_loader)
            except ValueError:  # e.g. `date: 2023-02-30` fails in the timestamp constructor
                loaded = yaml.load(m.group(1), Loader=string_loader)  # all values as strings
        except yaml.YAMLError as exc:
            problem = _one_line(getattr(exc, "problem", None) or type(exc).__name__, 80)
            warnings.append(f"front matter is not valid YAML ({problem}); kept as text")
        else:
            if isinstance(loaded, dict):
                meta = {str(k).lower(): v for k, v in loaded.items()}
                text = text[m.end() :]
            elif loaded is None:
                text = text[m.end() :]
            else:
                warnings.append("front matter is not a mapping; kept as text")
    body = _body(text)
    title = meta.get("title")
    if title is None or title == "":
        heading = _MD_HEADING.search(body)
        title = heading.group(1) if heading else ""
    return _record(
        body,
        title=str(title),
        source=_source_value(_lookup(meta, _SOURCE_KEYS)),
        url=_one_line(_lookup(meta, _URL_KEYS) or "", 2000),
        published=_date_value(_lookup(meta, _DATE_KEYS), "", warnings),
        path=abs_path,
    )


_SCRIPT_STYLE = re.compile(
    r"<(script|style|noscript|template)\b.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL
)
_TAG = re.compile(r"<[^>]*>")
_BLOCK_TAG = re.compile(
    r"<(?:/?(?:p|div|br|h[1-6]|li|tr|article|section|blockquote))\b[^>]*>", re.I
)
_META_URL = re.compile(
    r"<(?:meta[^>]+property=[\"']og:url[\"'][^>]*content=[\"']([^\"']+)"
    r"|link[^>]+rel=[\"']canonical[\"'][^>]*href=[\"']([^\"']+))",
    re.IGNORECASE,
)


def _regex_html_text(raw: str) -> str:
    """Last-resort text for HTML the parsers give up on (e.g. absurdly deep nesting)."""
    text = _SCRIPT_STYLE.sub(" ", raw)
    text = _BLOCK_TAG.sub("\n", text)
    text = _TAG.sub(" ", text)
    text = html_lib.unescape(text)
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _load_html(raw: str, abs_path: str, warnings: list[str]) -> ArticleRecord:
    import trafilatura
    from trafilatura.metadata import extract_metadata

    doc = trafilatura.bare_extraction(
        raw,
        with_metadata=True,
        favor_recall=True,
        include_comments=False,
        include_tables=True,
        deduplicate=False,
    )
    meta = doc if doc is not None else extract_metadata(raw)
    text = normalise_text(getattr(doc, "text", None) or "") if doc is not None else ""
    if not text:
        text = normalise_text(trafilatura.html2txt(raw) or "")
    if not text:
        text = normalise_text(_regex_html_text(raw))
    if not text:
        raise IngestFileError("HTML has no extractable text (only markup, scripts or styles)")
    url = getattr(meta, "url", None) or ""
    if not url:
        m = _META_URL.search(raw[:200_000])
        url = html_lib.unescape(m.group(1) or m.group(2)) if m else ""
    return _record(
        text,
        title=getattr(meta, "title", None) or "",
        source=getattr(meta, "sitename", None) or "",
        url=url,
        published=_date_value(getattr(meta, "date", None), "", warnings),
        path=abs_path,
    )


def _json_record(obj: Any, n: int, label: str, abs_path: str, result: LoadResult) -> None:
    where = f"{label} {n}"
    if not isinstance(obj, dict):
        result.warnings.append(f"{where}: not a JSON object; skipped")
        return
    fields = {str(k).lower(): v for k, v in obj.items()}
    raw_text = _lookup(fields, _TEXT_KEYS)
    if raw_text is None:
        raw_text = fields.get("description")
    if raw_text is None or raw_text == "":
        result.warnings.append(f"{where}: no text field (text/body/content/article/story); skipped")
        return
    if not isinstance(raw_text, str):
        kind = type(raw_text).__name__
        result.warnings.append(f"{where}: text is a {kind}, not a string; skipped")
        return
    text = normalise_text(raw_text)
    if not text:
        result.warnings.append(f"{where}: text is empty; skipped")
        return
    title = _lookup(fields, _TITLE_KEYS)
    url = _lookup(fields, _URL_KEYS)
    result.articles.append(
        _record(
            text,
            title="" if title is None else normalise_text(str(title)),
            source=_source_value(_lookup(fields, _SOURCE_KEYS)),
            url=url if isinstance(url, str) else "",
            published=_date_value(_lookup(fields, _DATE_KEYS), where, result.warnings),
            path=f"{abs_path}#{n}",
        )
    )


def _load_json(raw: str, abs_path: str, result: LoadResult) -> None:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise IngestFileError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    records: list[Any]
    if isinstance(data, list):
        records = data
    elif isinstance(data, dict):
        lowered = {str(k).lower(): v for k, v in data.items()}
        for key in ("articles", "items", "data", "records"):
            if isinstance(lowered.get(key), list):
                records = lowered[key]
                break
        else:
            records = [data]
    else:
        raise IngestFileError(f"JSON holds a {type(data).__name__}, not article objects")
    for n, obj in enumerate(records, start=1):
        _json_record(obj, n, "record", abs_path, result)


def _load_jsonl(raw: str, abs_path: str, result: LoadResult) -> None:
    text = raw.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            result.warnings.append(f"line {n}: invalid JSON; skipped")
            continue
        except RecursionError:
            result.warnings.append(f"line {n}: JSON nested too deeply; skipped")
            continue
        _json_record(obj, n, "line", abs_path, result)
