"""The text of a fetched body: its charset read from a byte order mark, the Content-Type header,
or the markup (an XML declaration or a meta tag); a declaration the bytes do not fit gives way to
the next one, with a warning; bytes no declared charset nor UTF-8 fits are one `bad charset`
line."""

from __future__ import annotations

import codecs
import re

from bot.core.errors import WebError

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)
_XML_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9_.:-]+)", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)
# Markup declares its charset near the top; HTML requires it within the first 1024 bytes, and
# this leaves room for pages that put it a little later.
MARKUP_SNIFF_BYTES = 4096


def declared_charsets(body: bytes, content_type: str) -> list[str]:
    """The charsets the header and the markup declare, header first, without repeats."""
    found: list[str] = []
    header = _HEADER_CHARSET.search(content_type or "")
    if header:
        found.append(header.group(1))
    head = body[:MARKUP_SNIFF_BYTES]
    for pattern in (_XML_ENCODING, _META_CHARSET):
        m = pattern.search(head)
        if m:
            found.append(m.group(1).decode("ascii", "replace"))
    unique: list[str] = []
    for name in found:
        if name.lower() not in (u.lower() for u in unique):
            unique.append(name)
    return unique


def decode_body(url: str, body: bytes, content_type: str, warnings: list[str]) -> str:
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return body.decode(encoding, "replace")
    declared = declared_charsets(body, content_type)
    tried: list[str] = []
    for name in [*declared, "utf-8"]:
        try:
            text = body.decode(name)
        except LookupError:
            tried.append(f"unknown charset {name!r}")
            continue
        except UnicodeDecodeError:
            tried.append(f"not valid {name}")
            continue
        if tried:
            warnings.append(f"{'; '.join(tried)}; decoded as {name}")
        return text
    raise WebError(url, f"bad charset: {'; '.join(tried)}")
