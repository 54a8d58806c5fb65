"""Finding article files and reading them as text: folders walked safely, encodings detected,
binary and oversized files refused with one line each."""

from __future__ import annotations

import codecs
import errno
import os
import re
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from bot.core.errors import IngestFileError

SUPPORTED_SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl"}


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


def _walk(top: str, found: set[str], error: Callable[[str, str], None]) -> None:
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
    guessed = _guess_encoding(data)
    if guessed is None:
        raise IngestFileError("cannot decode: not UTF-8 and no known text encoding fits")
    encoding = guessed
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


def read_text(path: Path, max_bytes: int, warnings: list[str]) -> str:
    """The text of one file: size-capped, decoded (BOM, UTF-8, else a detected encoding, with a
    warning), and refused when empty or binary."""
    data = _read_bytes(path, max_bytes)
    if not data:
        raise IngestFileError("file is empty")
    text = _decode(data, warnings)
    _check_text(text)
    return text
