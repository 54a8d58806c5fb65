"""The validators of fetched URLs (ETag, Last-Modified) and the canonical URL each led to, kept in
one small JSON file in the data directory, so that a page or feed that has not changed costs one
304. A URL is remembered only once what it held is indexed: a run killed before fetches it again."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

# Validators kept at most; the oldest go first (a feed archive of years stays a small file).
MAX_ENTRIES = 50_000


class ValidatorCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, str]] = {}
        self._changed = False
        try:
            loaded: Any = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            loaded = {}
        if isinstance(loaded, dict):
            self._entries = {
                str(k): {str(a): str(b) for a, b in v.items()}
                for k, v in loaded.items()
                if isinstance(v, dict)
            }

    def get(self, url: str) -> dict[str, str]:
        with self._lock:
            return dict(self._entries.get(url, {}))

    def headers(self, url: str) -> dict[str, str]:
        """The conditional GET headers for `url` (none when it was never remembered)."""
        entry = self.get(url)
        headers = {}
        if entry.get("etag"):
            headers["If-None-Match"] = entry["etag"]
        if entry.get("last_modified"):
            headers["If-Modified-Since"] = entry["last_modified"]
        return headers

    def remember(self, url: str, **fields: str) -> None:
        with self._lock:
            self._entries.pop(url, None)
            self._entries[url] = {k: v for k, v in fields.items() if v}
            while len(self._entries) > MAX_ENTRIES:
                self._entries.pop(next(iter(self._entries)))
            self._changed = True

    def forget(self, url: str) -> None:
        with self._lock:
            self._changed |= self._entries.pop(url, None) is not None

    def save(self) -> None:
        """Write the cache atomically (a killed write leaves the previous file)."""
        with self._lock:
            if not self._changed:
                return
            data = json.dumps(self._entries, ensure_ascii=False)
            self._changed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, self.path)
