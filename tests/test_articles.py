"""Loading article files: formats, aliases, encodings, dates, discovery, and bad input."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from bot.articles import (
    SUPPORTED_SUFFIXES,
    ArticleRecord,
    discover_files,
    load_file,
    make_article_id,
    normalise_date,
    normalise_text,
)
from bot.errors import IngestFileError

MB = 1024 * 1024


def load(path: Path, max_bytes: int = MB):
    return load_file(path, max_bytes=max_bytes)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    return p


def one(tmp_path: Path, name: str, content: str | bytes) -> ArticleRecord:
    result = load(write(tmp_path, name, content))
    assert len(result.articles) == 1
    return result.articles[0]


def assert_error(path: Path, *needles: str, max_bytes: int = MB) -> str:
    with pytest.raises(IngestFileError) as info:
        load_file(path, max_bytes=max_bytes)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


# --- text helpers ---------------------------------------------------------------------------------


def test_normalise_text() -> None:
    raw = "\ufeffa\r\nb\rc\x00d\x1b[31mred\x1b[0m \u202eevil\u2066x\u2069\x85  \n\n\n\n\n\ne\t \n"
    assert normalise_text(raw) == "a\nb\ncd[31mred[0m evilx\n\n\ne"
    assert normalise_text("  \n\t ") == ""
    assert normalise_text("keep\ttabs and ünïcödé") == "keep\ttabs and ünïcödé"


def test_article_id_and_hash(tmp_path: Path) -> None:
    rec = one(tmp_path, "a.txt", "Hello world.\n")
    assert rec.article_id == "a" + hashlib.sha256(b"Hello world.").hexdigest()[:16]
    assert rec.content_hash == hashlib.sha256(b"Hello world.").hexdigest()
    assert make_article_id(rec.text) == rec.article_id
    other = one(tmp_path, "b.txt", "Hello world.")
    assert other.article_id == rec.article_id and other.path != rec.path
    assert {".txt", ".md", ".json", ".jsonl", ".html"} <= SUPPORTED_SUFFIXES


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-11-24", "2023-11-24"),
        ("24 Nov 2023", "2023-11-24"),
        ("November 24, 2023", "2023-11-24"),
        ("Fri, 24 Nov 2023 17:01:22 GMT", "2023-11-24T17:01:22+00:00"),
        ("Fri, 24 Nov 2023 17:01:22 +0200", "2023-11-24T17:01:22+02:00"),
        ("2023-11-24T17:01:22Z", "2023-11-24T17:01:22+00:00"),
        ("2023-11-24T17:01:22", "2023-11-24T17:01:22+00:00"),
        (1700845282, "2023-11-24T17:01:22+00:00"),
        (1700845282.5, "2023-11-24T17:01:22+00:00"),
        (1700845282000, "2023-11-24T17:01:22+00:00"),
        ("1700845282", "2023-11-24T17:01:22+00:00"),
        ("2023-02-30", ""),
        ("30/02/2023", ""),
        ("1700-01-01", ""),
        ("2500-01-01", ""),
        ("garbage", ""),
        ("", ""),
        (None, ""),
        (True, ""),
        ([2023], ""),
        ("2023", ""),  # year only: incomplete
        (float("nan"), ""),
        (10**30, ""),
        ("9" * 40, ""),
    ],
)
def test_normalise_date(value: object, expected: str) -> None:
    assert normalise_date(value) == expected


# --- formats --------------------------------------------------------------------------------------


def test_txt(tmp_path: Path) -> None:
    rec = one(tmp_path, "a.txt", "\n\n  The Headline  \nBody line one.\r\nBody two.\n")
    assert rec.title == "The Headline"
    assert rec.text == "The Headline\nBody line one.\nBody two."
    assert (rec.source, rec.url, rec.published) == ("", "", "")
    assert rec.path == str((tmp_path / "a.txt").absolute())
    long_title = one(tmp_path, "b.txt", "x" * 1000)
    assert len(long_title.title) == 300


def test_markdown_front_matter(tmp_path: Path) -> None:
    md = (
        "---\ntitle: FM Title\noutlet: Reuters\nlink: https://e.com/a\n"
        "publish_date: 2023-11-24\n---\n# Heading\n\nBody text here.\n"
    )
    rec = one(tmp_path, "a.md", md)
    assert (rec.title, rec.source, rec.url, rec.published) == (
        "FM Title",
        "Reuters",
        "https://e.com/a",
        "2023-11-24",
    )
    assert rec.text == "# Heading\n\nBody text here."


@pytest.mark.parametrize(("key", "value"), [("publisher", "AP"), ("site", "AP"), ("source", "AP")])
def test_markdown_source_aliases(tmp_path: Path, key: str, value: str) -> None:
    rec = one(tmp_path, "a.markdown", f"---\n{key}: {value}\ndate: 24 Nov 2023\n---\nBody.\n")
    assert rec.source == value and rec.published == "2023-11-24" and rec.title == "Body."


def test_markdown_heading_fallback_and_bad_yaml(tmp_path: Path) -> None:
    rec = one(tmp_path, "a.md", "Intro line\n# The Title #\n\nText.")
    assert rec.title == "The Title"
    result = load(write(tmp_path, "b.md", "---\ntitle: [unclosed\n---\nBody.\n"))
    assert len(result.articles) == 1
    assert any("front matter" in w for w in result.warnings)
    assert result.articles[0].text.startswith("---")
    rec = one(tmp_path, "c.md", "---\ntitle: T\npublished: not a date\n---\nBody.")
    assert rec.published == ""


def test_html(tmp_path: Path) -> None:
    html = """<html><head><title>Page Title</title>
    <meta property="og:site_name" content="The Daily">
    <meta property="og:url" content="https://daily.example/story">
    <meta name="date" content="2023-11-24">
    <script>var tracking = 1;</script><style>p { color: red }</style></head>
    <body><nav>Home | About</nav><article><h1>Big Story</h1>
    <p>The first paragraph of the story has some words in it.</p>
    <p>The second paragraph continues with more words.</p></article></body></html>"""
    rec = one(tmp_path, "a.html", html)
    assert "first paragraph" in rec.text and "second paragraph" in rec.text
    assert "tracking" not in rec.text and "color" not in rec.text
    assert rec.source == "The Daily"
    assert rec.url == "https://daily.example/story"
    assert rec.published == "2023-11-24"
    assert rec.title in ("Big Story", "Page Title")


def test_html_short_page_and_canonical(tmp_path: Path) -> None:
    html = '<html><head><link rel="canonical" href="https://x.example/c"></head><p>Hi there.</p>'
    rec = one(tmp_path, "a.htm", html)
    assert rec.text == "Hi there."
    assert rec.url == "https://x.example/c"


def test_html_only_script_and_style(tmp_path: Path) -> None:
    p = write(tmp_path, "a.html", "<html><script>var a = 1;</script><style>p{}</style></html>")
    assert_error(p, "no extractable text")


def test_html_deeply_nested(tmp_path: Path) -> None:
    n = 100_000
    p = write(tmp_path, "deep.html", "<div>" * n + "deep words here" + "</div>" * n)
    try:
        result = load(p, max_bytes=10 * MB)
    except IngestFileError as exc:
        assert "\n" not in str(exc)
    else:
        assert "deep words here" in result.articles[0].text


def test_json_shapes_and_aliases(tmp_path: Path) -> None:
    records = [
        {
            "headline": "H1",
            "body": "Text one.",
            "source": {"name": "BBC"},
            "link": "https://b/1",
            "pubDate": "Fri, 24 Nov 2023 17:01:22 GMT",
        },
        {"name": "H2", "content": "Text two.", "outlet": "CNN", "published_at": "2023-11-24"},
        {"title": 42, "article": "Text three.", "publisher": "AP", "datetime": 1700845282},
        {"story": "Text four.", "site": "NPR", "publish_date": "24 Nov 2023"},
        {"description": "Only a description.", "date": "2023-11-24"},
        {"text": "Preferred.", "description": "Not this."},
    ]
    for name, payload in [
        ("list.json", records),
        ("wrapped.json", {"articles": records}),
        ("items.json", {"items": records}),
        ("data.json", {"data": records}),
        ("records.json", {"records": records}),
    ]:
        result = load(write(tmp_path, name, json.dumps(payload)))
        arts = result.articles
        assert [a.text for a in arts] == [
            "Text one.",
            "Text two.",
            "Text three.",
            "Text four.",
            "Only a description.",
            "Preferred.",
        ]
        assert arts[0].title == "H1" and arts[0].source == "BBC" and arts[0].url == "https://b/1"
        assert arts[0].published == "2023-11-24T17:01:22+00:00"
        assert arts[1].title == "H2" and arts[1].source == "CNN"
        assert arts[2].title == "42" and arts[2].source == "AP"
        assert arts[3].source == "NPR" and arts[3].published == "2023-11-24"
        assert arts[3].title == "Text four."
        assert arts[0].path.endswith(f"{name}#1") and arts[5].path.endswith(f"{name}#6")
    single = one(tmp_path, "single.json", json.dumps({"title": "S", "text": "Single."}))
    assert single.title == "S" and single.path.endswith("single.json#1")


def test_json_errors(tmp_path: Path) -> None:
    assert_error(write(tmp_path, "bad.json", '{"text": "x",'), "invalid JSON", "line 1")
    assert_error(write(tmp_path, "num.json", "42"), "JSON")
    assert_error(write(tmp_path, "none.json", '[{"foo": 1}, 3]'), "no article records")
    deep = "[" * 100_000 + "]" * 100_000
    assert_error(write(tmp_path, "deep.json", deep))


def test_jsonl_broken_lines_and_wrong_types(tmp_path: Path) -> None:
    lines = [
        '{"title": "One", "text": "First."}',
        "{not json",
        "",
        "[1, 2]",
        '{"text": 5}',
        '{"text": ["a", "b"]}',
        '{"title": "No text"}',
        '{"text": "Bad date.", "date": "2023-02-30"}',
        '{"text": "   "}',
        '{"title": ["x"], "text": "Last \\u2028 line.\\u0000"}',
    ]
    result = load(write(tmp_path, "a.jsonl", "\r\n".join(lines) + "\n"))
    assert [a.text for a in result.articles] == ["First.", "Bad date.", "Last \u2028 line."]
    assert [a.path.rsplit("#", 1)[1] for a in result.articles] == ["1", "8", "10"]
    assert result.articles[2].title == "['x']"
    w = result.warnings
    assert any("line 2: invalid JSON" in x for x in w)
    assert any("line 4" in x and "not a JSON object" in x for x in w)
    assert any("line 5" in x and "int" in x for x in w)
    assert any("line 6" in x and "list" in x for x in w)
    assert any("line 7" in x and "no text" in x for x in w)
    assert any("line 8" in x and "date" in x for x in w)
    assert any("line 9" in x for x in w)
    assert all("\n" not in x for x in w)
    assert_error(write(tmp_path, "allbad.jsonl", "{x\n[]\n"), "no article records")


# --- encodings ------------------------------------------------------------------------------------


def test_utf16_and_utf32_with_bom(tmp_path: Path) -> None:
    text = "Zürich ‘news’ — 東京.\nSecond line."
    for enc in ("utf-16", "utf-16-be", "utf-32", "utf-8-sig"):
        data = text.encode(enc)
        if enc == "utf-16-be":
            data = b"\xfe\xff" + data
        rec = one(tmp_path, f"{enc}.txt", data)
        assert rec.text == text, enc


def test_latin1_cp1252_and_invalid_utf8(tmp_path: Path) -> None:
    result = load(write(tmp_path, "l1.txt", "Café crème brûlée à la française.".encode("latin-1")))
    assert result.articles[0].text == "Café crème brûlée à la française."
    assert any("decoded as" in w for w in result.warnings)
    rec = load(
        write(tmp_path, "q.txt", "\u201cHello,\u201d she said \u2013 it\u2019s.".encode("cp1252"))
    )
    assert rec.articles[0].text == "\u201cHello,\u201d she said \u2013 it\u2019s."
    mixed = "Valid UTF-8 é then a stray byte: ".encode() + b"\xff end."
    result = load(write(tmp_path, "bad.txt", mixed))
    assert result.articles[0].text.startswith("Valid UTF-8")
    assert result.warnings


def test_utf8_json_with_bom(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + json.dumps({"text": "Bom."}).encode()
    assert one(tmp_path, "a.json", data).text == "Bom."


# --- whole-file failures --------------------------------------------------------------------------


def test_empty_whitespace_binary(tmp_path: Path) -> None:
    assert_error(write(tmp_path, "empty.txt", b""), "empty")
    assert_error(write(tmp_path, "ws.txt", " \n\t\r\n  "), "empty or whitespace")
    assert_error(write(tmp_path, "ws.md", "---\ntitle: x\n---\n   \n"), "no text")
    assert_error(write(tmp_path, "nul.txt", b"abc\x00def" * 10), "binary")
    assert_error(write(tmp_path, "bin.txt", bytes(range(1, 32)) * 50), "binary")
    assert_error(write(tmp_path, "x.pdf", b"%PDF"), "unsupported")


def test_too_large(tmp_path: Path) -> None:
    p = write(tmp_path, "big.txt", "word " * 1000)
    msg = assert_error(p, "too large", "BOT_MAX_FILE_MB", max_bytes=1000)
    assert "MB" in msg


def test_too_large_real_50mb_sparse_file(tmp_path: Path) -> None:
    p = tmp_path / "huge.txt"
    with open(p, "wb") as fh:
        fh.truncate(50 * MB)
    assert_error(p, "too large", "50.0 MB", "BOT_MAX_FILE_MB", max_bytes=20 * MB)


def test_unreadable_file(tmp_path: Path) -> None:
    p = write(tmp_path, "secret.txt", "Hidden text.")
    p.chmod(0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip("running as root: chmod 000 does not stop reads")
        assert_error(p, "permission denied")
    finally:
        p.chmod(0o644)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    assert_error(tmp_path / "nope.txt", "cannot read")
    d = tmp_path / "dir.txt"
    d.mkdir()
    assert_error(d, "folder")


def test_unexpected_exception_is_wrapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.articles as articles

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyError("weird\nthing")

    monkeypatch.setattr(articles, "_load_txt", boom)
    msg = assert_error(write(tmp_path, "a.txt", "text"), "could not parse: KeyError")
    assert "\n" not in msg


# --- discovery ------------------------------------------------------------------------------------


def test_discover_files(tmp_path: Path) -> None:
    root = tmp_path / "news"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    for rel in ["a.txt", "b.MD", "sub/c.json", "sub/deeper/d.jsonl", "sub/e.html", "f.htm"]:
        (root / rel).write_text("x", encoding="utf-8")
    for rel in ["skip.pdf", "notes", ".git/config.txt", ".hidden.txt", "sub/x.png"]:
        (root / rel).write_text("x", encoding="utf-8")
    explicit = write(tmp_path, "explicit.txt", "x")
    files, errors = discover_files([root, explicit, root / "a.txt", tmp_path / "missing.txt"])
    names = [f.relative_to(tmp_path).as_posix() for f in files]
    assert names == sorted(names)
    assert set(names) == {
        "explicit.txt",
        "news/a.txt",
        "news/b.MD",
        "news/f.htm",
        "news/sub/c.json",
        "news/sub/deeper/d.jsonl",
        "news/sub/e.html",
    }
    assert all(f.is_absolute() for f in files)
    assert len(errors) == 1 and "no such file" in errors[0][1]
    _, errors = discover_files([root / "skip.pdf"])
    assert len(errors) == 1 and "unsupported" in errors[0][1]


def test_discover_relative_paths_are_made_absolute(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    write(tmp_path, "rel.txt", "x")
    files, errors = discover_files([Path("rel.txt")])
    assert files == [tmp_path / "rel.txt"] and not errors


def test_discover_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    target = write(tmp_path, "target.txt", "Linked.")
    (root / "link.txt").symlink_to(target)
    (root / "broken.txt").symlink_to(tmp_path / "gone.txt")
    (root / "loop.txt").symlink_to(root / "loop.txt")
    (root / "back").symlink_to(root)  # directory loop: not followed
    (root / "sub").mkdir()
    (root / "sub" / "up").symlink_to(root)
    files, errors = discover_files([root])
    assert files == [root / "link.txt"]
    messages = " | ".join(m for _, m in errors)
    assert "broken symlink" in messages and "symlink loop" in messages
    files, errors = discover_files([root / "loop.txt", root / "broken.txt"])
    assert files == [] and len(errors) == 2
    # An explicit symlink to a folder is expanded.
    link_dir = tmp_path / "linkdir"
    link_dir.symlink_to(root)
    files, _ = discover_files([link_dir])
    assert files == [link_dir / "link.txt"]


def test_strange_file_names(tmp_path: Path) -> None:
    weird = tmp_path / "new\nline ünï 東京.txt"
    weird.write_text("Weird name text.", encoding="utf-8")
    files, errors = discover_files([tmp_path])
    assert files == [weird] and not errors
    rec = load(weird).articles[0]
    assert rec.path == str(weird) and rec.text == "Weird name text."
    _, errors = discover_files([tmp_path / "missing\nfile.txt"])
    assert "\n" not in errors[0][1] and "\\x0a" in errors[0][1]
    bad = write(tmp_path, "bad\nname.txt", b"")
    msg = assert_error(bad, "empty")
    assert "\\x0a" in msg


def test_unreadable_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    write(locked, "a.txt", "x")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as root: chmod 000 does not stop reads")
        files, errors = discover_files([tmp_path])
        assert files == [] and errors and "cannot read folder" in errors[0][1]
    finally:
        locked.chmod(0o755)


def test_permission_error_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root can read chmod-000 files, so simulate the failure the way a normal user sees it."""
    import builtins

    p = write(tmp_path, "secret.txt", "Hidden text.")
    real_open = builtins.open

    def deny(file: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if str(file) == str(p):
            raise PermissionError(13, "Permission denied", str(p))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(builtins, "open", deny)
    assert_error(p, "cannot read file: permission denied")
