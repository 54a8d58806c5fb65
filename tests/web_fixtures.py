"""Pages and feeds the web tests and bench/web.py serve on 127.0.0.1: real markup, written here."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

BOILERPLATE = """
<header><nav><a href="/">Home</a> | <a href="/world">World</a> | <a href="/sport">Sport</a>
| <a href="/subscribe">Subscribe now for unlimited access</a></nav></header>
<aside class="promo">Most read: celebrity chef opens a new restaurant. Sign up to our newsletter.
</aside>
"""
FOOTER = """<footer><p>Copyright 2024 Harbour Times Ltd. All rights reserved.</p>
<p>Cookie settings | Privacy policy | Terms of use | Contact us</p></footer>"""

STORIES = [
    (
        "Harbour bridge reopens after repairs",
        "The harbour bridge in Eastport reopened on Monday after eleven weeks of repairs to its "
        "steel cables. The city engineer, Marta Olsen, said the works cost 4.2 million euros, "
        "below the budget of 5 million. Traffic on the bridge had been limited to buses since "
        "the spring, when inspectors found corrosion in two anchor points. Commuters welcomed the "
        "reopening, which cuts the drive from the northern districts by twenty minutes.",
    ),
    (
        "Eastport council approves new tram line",
        "The Eastport city council voted 31 to 12 on Tuesday to build a tram line from the "
        "station to the university campus. The line will be 7.5 kilometres long with fourteen "
        "stops and is expected to open in 2027. The council's transport head, Jonas Berg, said "
        "the tram would carry about 40,000 passengers a day. Opponents argued that buses would "
        "serve the route at a third of the cost.",
    ),
    (
        "Fishermen report record cod catch in northern waters",
        "Fishing crews from Eastport landed 1,850 tonnes of cod in March, the largest monthly "
        "catch since records began in 1994. The fisheries cooperative said cold currents had "
        "brought the shoals closer to the coast. Marine biologists at the regional institute "
        "cautioned that one strong month did not mean the stock had recovered, and urged the "
        "ministry to keep the current quotas in place for another two seasons.",
    ),
]


def article_page(
    title: str,
    body: str,
    *,
    canonical: str = "",
    date: str = "2024-03-04",
    site: str = "Harbour Times",
    author: str = "Lena Park",
    charset: str = "utf-8",
) -> str:
    """A news page with navigation, promotions and a footer around the story."""
    paragraphs = "".join(f"<p>{s.strip()}.</p>\n" for s in body.split(". ") if s.strip())
    link = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    dated = f'<meta property="article:published_time" content="{date}">' if date else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="{charset}"><title>{title} | {site}</title>
<meta property="og:title" content="{title}"><meta property="og:site_name" content="{site}">
<meta name="author" content="{author}">{dated}{link}
</head><body>{BOILERPLATE}
<article><h1>{title}</h1><p class="byline">By {author}</p>
{paragraphs}</article>
{FOOTER}</body></html>"""


def _rfc822(day: int) -> str:
    return format_datetime(datetime(2024, 3, 1, 9, 0, tzinfo=UTC) + timedelta(days=day))


def rss(items: list[tuple[str, str]], title: str = "Harbour Times") -> str:
    """An RSS 2.0 feed of (title, link) items."""
    entries = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>{_rfc822(n)}</pubDate><description>Story {n}</description></item>\n"
        for n, (t, link) in enumerate(items)
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>{title}</title><link>http://example.invalid/</link>
<description>News</description>
{entries}</channel></rss>"""


def atom(items: list[tuple[str, str]], title: str = "Harbour Times") -> str:
    entries = "".join(
        f'<entry><title>{t}</title><link href="{link}"/><id>{link}</id>'
        f"<updated>2024-03-0{1 + n % 8}T10:00:00Z</updated></entry>\n"
        for n, (t, link) in enumerate(items)
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>{title}</title><id>urn:x</id>
<updated>2024-03-09T10:00:00Z</updated>
{entries}</feed>"""


def json_feed(items: list[tuple[str, str]], title: str = "Harbour Times") -> str:
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": title,
            "items": [
                {"id": link, "url": link, "title": t, "date_published": f"2024-03-0{1 + n % 8}"}
                for n, (t, link) in enumerate(items)
            ],
        }
    )


def gzip_bomb(unpacked_mb: int) -> bytes:
    """A gzip body of a few tens of kilobytes that unpacks to `unpacked_mb` megabytes."""
    return gzip.compress(b" " * (unpacked_mb * 1024 * 1024), compresslevel=9)
