"""Article formats: plain text, markdown with front matter, HTML (trafilatura), JSON and JSONL.

Every whole-file failure raises `IngestFileError` with a one-line message; per-record problems
become one-line warnings. Neither names the file: the caller reports them next to its path
(`failed: PATH: ERROR`). Heavy or optional libraries (trafilatura, yaml) are imported inside the
functions that use them.
"""

from __future__ import annotations

import html as html_lib
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.core.dates import is_uncertain, normalise_date
from bot.core.errors import IngestFileError
from bot.core.text import one_line, safe_path
from bot.sources.article import (
    URL_MAX,
    ArticleRecord,
    LoadResult,
    make_record,
    normalise_text,
)
from bot.sources.dateline import read_header
from bot.sources.files import SUPPORTED_SUFFIXES, read_text

__all__ = ["load_file", "load_html"]


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
        detail = safe_path(one_line(exc, 200))
        raise IngestFileError(f"could not parse: {type(exc).__name__}: {detail}") from None


def _load(path: Path, max_bytes: int) -> LoadResult:
    abs_path = os.path.abspath(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestFileError(f"unsupported file type {path.suffix or '(none)'!r}")
    result = LoadResult()
    raw = read_text(path, max_bytes, result.warnings)
    if suffix == ".txt":
        result.articles.append(_load_plain_text(raw, abs_path, result.warnings))
    elif suffix in (".md", ".markdown"):
        result.articles.append(_load_markdown(raw, abs_path, result.warnings))
    elif suffix in (".html", ".htm"):
        result.articles.append(load_html(raw, abs_path, result.warnings))
    elif suffix == ".json":
        _load_json(raw, abs_path, result)
    else:
        _load_jsonl(raw, abs_path, result)
    result.warnings = _capped(result.warnings)
    if not result.articles:
        # The records' own reasons go with the error: "no records" alone does not say what to fix.
        raise IngestFileError("no article records found", warnings=result.warnings)
    return result


# Warnings shown per file at most; the rest fold into one line: enough to see what is wrong with
# a file of bad records, not a screen of the same line.
MAX_WARNINGS_PER_FILE = 10


def _capped(warnings: list[str]) -> list[str]:
    if len(warnings) <= MAX_WARNINGS_PER_FILE:
        return warnings
    more = len(warnings) - MAX_WARNINGS_PER_FILE + 1
    return [*warnings[: MAX_WARNINGS_PER_FILE - 1], f"… and {more} more warnings like these"]


def _body(raw: str) -> str:
    text = normalise_text(raw)
    if not text:
        raise IngestFileError("file has no text")
    return text


def _load_plain_text(raw: str, abs_path: str, warnings: list[str]) -> ArticleRecord:
    """A .txt file; one that opens with a YAML front matter block is read like markdown."""
    if _FRONT_MATTER.match(raw.lstrip("\ufeff").replace("\r\n", "\n")):
        problems: list[str] = []
        record = _load_markdown(raw, abs_path, problems)
        if not problems:  # a real front matter mapping; otherwise the dashes are just text
            return record
    return _load_txt(raw, abs_path, warnings)


def _load_txt(raw: str, abs_path: str, warnings: list[str]) -> ArticleRecord:
    text = _body(raw)
    source, published = _header_metadata(text, abs_path, warnings)
    return make_record(text, title="", source=source, url="", published=published, path=abs_path)


def _header_metadata(text: str, abs_path: str, warnings: list[str]) -> tuple[str, str]:
    """(outlet, ISO date) from the byline and dateline at the top of a plain-text article."""
    try:
        mtime: float | None = os.path.getmtime(abs_path)
    except OSError:
        mtime = None
    header = read_header(text, mtime=mtime)
    doubtful = is_uncertain(header.published)
    if header.year_from_mtime:
        warnings.append(
            f"the dateline gives no year; took {header.published[:4]} from the file's "
            "modification time"
            + (", marked uncertain: the file was saved long after that day" * doubtful)
        )
    return header.outlet, header.published


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
        return "" if inner is None else one_line(inner)
    if value is None or isinstance(value, list):
        return ""
    return one_line(value)


def _at(where: str, message: str) -> str:
    """A warning, prefixed with the record it is about ("record 3: ...") when there is one."""
    return f"{where}: {message}" if where else message


def _date_value(value: Any, where: str, warnings: list[str]) -> str:
    if value is None or value == "":
        return ""
    iso = normalise_date(value)
    if not iso:
        warnings.append(_at(where, f"unrecognised date {one_line(repr(value), 60)}; left empty"))
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
            problem = one_line(getattr(exc, "problem", None) or type(exc).__name__, 80)
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
    source = _source_value(_lookup(meta, _SOURCE_KEYS))
    published = _date_value(_lookup(meta, _DATE_KEYS), "", warnings)
    if not meta:
        source, published = _header_metadata(body, abs_path, warnings)
    title = meta.get("title")
    if title is None or title == "":
        heading = _MD_HEADING.search(body)
        title = heading.group(1) if heading else ""
    return make_record(
        body,
        title=str(title),
        source=source,
        url=one_line(_lookup(meta, _URL_KEYS) or "", URL_MAX),
        published=published,
        path=abs_path,
    )


# Markup whose content is not article text (a <title> is the title, not the article).
_SCRIPT_STYLE = re.compile(
    r"<(script|style|noscript|template|title)\b.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL
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


def load_html(raw: str, abs_path: str, warnings: list[str]) -> ArticleRecord:
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
        raise IngestFileError(
            "no article text: the HTML holds only a title, markup, scripts or styles"
        )
    url = getattr(meta, "url", None) or ""
    if not url:
        m = _META_URL.search(raw[:200_000])
        url = html_lib.unescape(m.group(1) or m.group(2)) if m else ""
    return make_record(
        text,
        title=getattr(meta, "title", None) or "",
        source=getattr(meta, "sitename", None) or "",
        author=getattr(meta, "author", None) or "",
        url=url,
        published=_date_value(getattr(meta, "date", None), "", warnings),
        path=abs_path,
    )


# JSON value types as a JSON writer names them.
_JSON_KINDS = {
    bool: "true/false",
    int: "a number",
    float: "a number",
    list: "a list",
    dict: "an object",
}


def _json_record(obj: Any, n: int, label: str, abs_path: str, result: LoadResult) -> None:
    where = f"{label} {n}"
    if not isinstance(obj, dict):
        result.warnings.append(f"{where}: not a JSON object; skipped")
        return
    fields = {str(k).lower(): v for k, v in obj.items()}
    raw_text = _lookup(fields, (*_TEXT_KEYS, "description"))
    if raw_text is None:
        held = [k for k in (*_TEXT_KEYS, "description") if k in fields]
        reason = (
            f'"{held[0]}" is {"null" if fields[held[0]] is None else "empty"}'
            if held
            else "no text field (text/body/content/article/story)"
        )
        result.warnings.append(f"{where}: {reason}; skipped")
        return
    if not isinstance(raw_text, str):
        key = next(k for k in (*_TEXT_KEYS, "description") if fields.get(k) is raw_text)
        kind = _JSON_KINDS.get(type(raw_text), type(raw_text).__name__)
        result.warnings.append(f'{where}: "{key}" is {kind}, not a string; skipped')
        return
    text = normalise_text(raw_text)
    if not text:
        result.warnings.append(f"{where}: text is empty; skipped")
        return
    title = _lookup(fields, _TITLE_KEYS)
    url = _lookup(fields, _URL_KEYS)
    result.articles.append(
        make_record(
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
