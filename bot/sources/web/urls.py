"""URLs as `bot` keeps them: which command-line arguments are URLs, and the canonical form that
makes one story reached by two URLs (tracking parameters, fragments, case, ports) one article."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# A scheme of two letters or more: `C:\\news` (a Windows drive) stays a path.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def looks_like_url(arg: str) -> bool:
    """Whether a command-line argument names a URL (any scheme; only http(s) will be fetched)."""
    return bool(_SCHEME.match(arg))


def canonical_url(url: str) -> str:
    """`url` without tracking parameters, fragment, default port or upper-case host."""
    from courlan import normalize_url

    try:
        normal = normalize_url(url)
    except (ValueError, TypeError):
        normal = url
    parts = urlsplit(normal)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))


def same_site(url: str, other: str) -> bool:
    """Whether two URLs belong to one site (www. and m. variants included), so that a page may
    name the other as its canonical URL."""
    from courlan import is_external

    try:
        return not is_external(url, other, ignore_suffix=True)
    except (ValueError, TypeError):
        return False
