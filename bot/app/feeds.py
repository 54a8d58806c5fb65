"""The feeds a user follows (`bot feeds add/list/remove`): one small JSON file in the data
directory, with what each feed's items looked like at the last `bot update` that indexed them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.core.errors import BotError
from bot.core.settings import Settings, get_settings
from bot.core.text import one_line

NAME_MAX = 80


@dataclass
class FollowedFeed:
    url: str
    name: str
    seen: dict[str, str] = field(default_factory=dict)  # item link -> its stamp when indexed

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "name": self.name, "items_seen": len(self.seen)}


def web_dir(settings: Settings) -> Path:
    return settings.data_dir / "web"


def _path(settings: Settings) -> Path:
    return web_dir(settings) / "feeds.json"


def _lock(settings: Settings) -> Any:
    from filelock import FileLock

    web_dir(settings).mkdir(parents=True, exist_ok=True)
    return FileLock(str(web_dir(settings) / "feeds.lock"), timeout=settings.lock_timeout)


def load_feeds(settings: Settings) -> list[FollowedFeed]:
    try:
        data: Any = json.loads(_path(settings).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise BotError(f"Cannot read the feed list {_path(settings)}: {exc}") from None
    feeds = []
    for item in data if isinstance(data, list) else []:
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            seen = item.get("seen")
            seen = {str(k): str(v) for k, v in seen.items()} if isinstance(seen, dict) else {}
            feeds.append(FollowedFeed(item["url"], str(item.get("name", "")), seen))
    return feeds


def _save(settings: Settings, feeds: list[FollowedFeed]) -> None:
    data = [{"url": f.url, "name": f.name, "seen": f.seen} for f in feeds]
    path = _path(settings)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def add_feed(url: str, name: str | None = None, settings: Settings | None = None) -> FollowedFeed:
    """Follow the feed at `url` (an http(s) URL) under `name` (default: its host)."""
    from bot.sources.web.fetch import check_scheme

    settings = settings or get_settings()
    check_scheme(url)
    name = one_line(name or (urlsplit(url).hostname or url).removeprefix("www."), NAME_MAX)
    with _lock(settings):
        feeds = load_feeds(settings)
        for feed in feeds:
            if feed.url == url:
                raise BotError(f"Already following {url} (as {feed.name!r})")
            if feed.name == name:
                raise BotError(
                    f"A followed feed is named {name!r} already ({feed.url})",
                    hint="pick another with --name",
                )
        feed = FollowedFeed(url, name)
        _save(settings, [*feeds, feed])
    return feed


def remove_feed(url_or_name: str, settings: Settings | None = None) -> FollowedFeed:
    """Stop following a feed; its items stay in the index (`bot forget` removes old ones)."""
    settings = settings or get_settings()
    with _lock(settings):
        feeds = load_feeds(settings)
        matches = [f for f in feeds if url_or_name in (f.url, f.name)]
        if not matches:
            raise BotError(f"No followed feed is {url_or_name!r}", hint="see `bot feeds list`")
        _save(settings, [f for f in feeds if f is not matches[0]])
    return matches[0]


def forget_web_state(settings: Settings) -> None:
    """After the index is rebuilt: no validator or seen item vouches for an article any more,
    so the next update fetches every feed and item again."""
    (web_dir(settings) / "validators.json").unlink(missing_ok=True)
    if _path(settings).exists():
        record_seen(settings, {f.url: {} for f in load_feeds(settings)})


def record_seen(settings: Settings, seen: dict[str, dict[str, str]]) -> None:
    """Store what `bot update` indexed of each feed, keeping feeds added or removed meanwhile."""
    with _lock(settings):
        feeds = load_feeds(settings)
        for feed in feeds:
            if feed.url in seen:
                feed.seen = seen[feed.url]
        _save(settings, feeds)
