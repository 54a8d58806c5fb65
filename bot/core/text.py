"""Text rules shared by every layer: what is safe to store and print, one-line forms and clipping.

Article and model text is untrusted. `strip_controls` is the stored form's rule (line breaks
unified, escape sequences removed whole, control characters dropped); `sanitize` is the same rule
for anything about to be shown, applied to any value and never raising.
"""

from __future__ import annotations

import os
import re
from typing import Any

# Terminal escape sequences, removed whole (removing only ESC would leave "[31m" in the text).
# String commands (OSC, DCS, SOS, PM, APC) go with their payload when terminated (BEL or ST) within
# 4096 characters; otherwise only the introducer goes and the rest stays as harmless text. The
# 8-bit C1 forms likewise (a lone \x9d is common mojibake, so it needs its terminator too).
ESCAPE_SEQUENCE = re.compile(
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
# C0 controls but \t and \n, DEL, C1 controls, bidi embeddings/overrides and isolates, the
# zero-width no-break space (a BOM inside text) and Unicode tag characters (invisible text).
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff\U000e0000-\U000e007f]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
# `os.fsdecode` gives an undecodable byte B as the lone surrogate U+DC00 + B (surrogateescape).
_FSDECODED_BYTE = 0xDC00
_ESCAPED_BYTE = re.compile(r"\\x([89a-fA-F][0-9a-fA-F])")
_WHITESPACE = re.compile(r"\s+")
# What a one-line message must not carry raw: controls, line separators, lone surrogates.
_UNSAFE_IN_MESSAGE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def replace_surrogates(text: Any) -> str:
    """A str in which lone surrogates are U+FFFD, so encoders, regexes and tokenizers never choke;
    None is ""."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    return _SURROGATE.sub("\ufffd", text)


def unify_line_breaks(text: str) -> str:
    """\\r\\n, \\r, U+2028 and NEL become \\n and U+2029 a blank line, as they do for a reader."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\u2028", "\n").replace("\u2029", "\n\n").replace("\x85", "\n")


def strip_controls(text: str) -> str:
    """`text` with unified line breaks and without escape sequences (removed whole) or control
    characters other than \\n and \\t."""
    return _CONTROL.sub("", ESCAPE_SEQUENCE.sub("", unify_line_breaks(text)))


def sanitize(text: Any) -> str:
    """Any value as text that is safe to print: `strip_controls` after `replace_surrogates`."""
    return strip_controls(replace_surrogates(text))


def one_line(text: Any, limit: int | None = None) -> str:
    """`text` sanitised, its whitespace runs folded to single spaces; cut to `limit` characters
    with an ellipsis when longer."""
    flat = _WHITESPACE.sub(" ", sanitize(text)).strip()
    if limit is None or len(flat) <= limit:
        return flat
    return flat[: max(0, limit - 1)].rstrip() + "…"


def clip(text: Any, limit: int) -> str:
    """`one_line(text)` cut at a word boundary to at most `limit` characters, ending in "…"."""
    flat = one_line(text)
    if len(flat) <= limit:
        return flat
    cut = flat[: max(0, limit - 1)]
    space = cut.rfind(" ")
    # Cut at the last space unless that would lose more than 40% of what fits.
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"


def path_key(path: str | os.PathLike[str]) -> str:
    """A file path as the index stores and shows it. A name that is not valid UTF-8 reaches
    Python with each undecodable byte as a lone surrogate (`os.fsdecode`), which no UTF-8 store
    or terminal takes: each such byte becomes `\\xNN`, which prints and maps back to the byte
    (`key_path`). Any other path is itself."""
    text = os.fspath(path)
    if not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub(_escape_code, text)


def key_path(key: str) -> str:
    """The file path a `path_key` names: its `\\xNN` escapes of bytes 0x80-0xFF are the bytes
    again (as `os.fsdecode` gives them), so the file can be opened."""
    return _ESCAPED_BYTE.sub(lambda m: chr(_FSDECODED_BYTE + int(m.group(1), 16)), key)


def _escape_code(match: re.Match[str]) -> str:
    code = ord(match.group())
    if _FSDECODED_BYTE + 0x80 <= code <= _FSDECODED_BYTE + 0xFF:
        code -= _FSDECODED_BYTE  # a byte `os.fsdecode` could not decode
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_path(path: str | os.PathLike[str]) -> str:
    """A path for a one-line message: controls, line separators and lone surrogates escaped
    (`\\x1b`; an undecodable byte as `path_key` stores it, `\\xe9`), so a hostile or undecodable
    file name is shown, not obeyed."""
    return _UNSAFE_IN_MESSAGE.sub(_escape_code, os.fspath(path))
