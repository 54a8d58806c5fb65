"""Loading article files: formats, aliases, encodings, dates, discovery, and bad input."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.dates import normalise_date
from bot.core.errors import IngestFileError
from bot.sources.article import ArticleRecord, make_article_id, normalise_text
from bot.sources.files import SUPPORTED_SUFFIXES, discover_files
from bot.sources.formats import load_file
from tests.bad_input_corpus import without_file_override

MB = 1024 * 1024
REPO = Path(__file__).resolve().parent.parent


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
    assert normalise_text(raw) == "a\nb\ncdred evilx\n\n\ne"
    assert normalise_text("  \n\t ") == ""
    assert normalise_text("keep\ttabs and ünïcödé") == "keep\ttabs and ünïcödé"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("\x1b[31mRed\x1b[0m alert", "Red alert"),  # SGR colours
        ("\x1b[1;38;5;196mbold\x1b[m text", "bold text"),
        ("a\x1b[2J\x1b[Hb\x1b[10;20Hc\x1b[?25ld", "abcd"),  # clear, cursor moves, private mode
        ("\x1b]0;evil title\x07Title", "Title"),  # OSC window title, BEL-terminated
        ("\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\ here", "click here"),  # OSC 8, ST
        ("x\x1bP1$r0m\x1b\\y", "xy"),  # DCS
        ("x\x1b_private\x1b\\y", "xy"),  # APC
        ("\x1b(Bplain\x1b=\x1b>", "plain"),  # charset and keypad selection
        ("\x9b31mC1 CSI\x9b0m", "C1 CSI"),  # 8-bit CSI
        ("\x9d0;t\x07C1 OSC", "C1 OSC"),  # 8-bit OSC
        ("cut off\x1b[31", "cut off"),  # incomplete CSI at the end
        ("\x1b]8;;never terminated", "8;;never terminated"),  # only the introducer goes
        ("keep [31m and [1] as typed", "keep [31m and [1] as typed"),  # no ESC: plain text
    ],
)
def test_normalise_text_removes_whole_escape_sequences(raw: str, expected: str) -> None:
    text = normalise_text(raw)
    assert text == expected
    assert not any(ord(c) < 32 and c not in "\n\t" or 0x7F <= ord(c) <= 0x9F for c in text)


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


def test_front_matter_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    import time

    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):  # 9**10 items once expanded
        refs = ", ".join([f"*a{i - 1}"] * 9)
        levels.append(f"a{i}: &a{i} [{refs}]")
    front = "\n".join(levels) + "\ntitle: *a9\nsource: *a9\n"
    path = write(tmp_path, "bomb.md", f"---\n{front}---\nThe council met on Tuesday.\n")
    started = time.perf_counter()
    result = load(path)
    assert time.perf_counter() - started < 5
    assert result.warnings == [
        "front matter is not valid YAML (aliases (*name) are not allowed); kept as text"
    ]
    assert result.articles[0].source == "" and len(result.articles[0].title) <= 300
    # an ordinary front matter is unaffected, including the string fallback for bad dates
    rec = one(tmp_path, "ok.md", "---\ntitle: Fine\npublished: 2023-02-30\n---\nBody.")
    assert (rec.title, rec.published, rec.text) == ("Fine", "", "Body.")


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
    assert_error(p, "no article text")


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
    assert [a.text for a in result.articles] == ["First.", "Bad date.", "Last\n line."]
    assert [a.path.rsplit("#", 1)[1] for a in result.articles] == ["1", "8", "10"]
    assert result.articles[2].title == "['x']"
    w = result.warnings
    assert any("line 2: invalid JSON" in x for x in w)
    assert any("line 4" in x and "not a JSON object" in x for x in w)
    assert any("line 5" in x and '"text" is a number' in x for x in w)
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


# --- NUL bytes: a stray one in text is dropped, binary still fails --------------------------------


def test_stray_nul_is_dropped_with_a_warning(tmp_path: Path) -> None:
    body = "The harbour council met on Tuesday.\nIt approved the repairs.\n"
    result = load(write(tmp_path, "one.txt", body.replace("Tuesday", "Tues\x00day").encode()))
    assert result.articles[0].text == body.strip()
    assert result.warnings == ["dropped 1 stray NUL byte"]
    # a few strays in a short record, and in a JSON file (dropped before parsing)
    result = load(write(tmp_path, "few.txt", b"\x00Short\x00 note\x00.\x00"))
    assert result.articles[0].text == "Short note."
    assert result.warnings == ["dropped 4 stray NUL bytes"]
    data = json.dumps({"title": "T", "text": body}).encode().replace(b"council", b"coun\x00cil")
    result = load(write(tmp_path, "a.json", data))
    assert result.articles[0].text == body.strip() and "stray NUL" in result.warnings[0]
    # a zero-filled block in a long text (e.g. after a crash) is still a small share of it
    long_text = (body * 4000).encode()
    holed = long_text[:50_000] + b"\x00" * 512 + long_text[50_000:]
    result = load(write(tmp_path, "holed.txt", holed))
    assert "\x00" not in result.articles[0].text
    assert result.warnings == ["dropped 512 stray NUL bytes"]


def test_binary_with_nul_bytes_still_fails(tmp_path: Path) -> None:
    import random

    rng = random.Random(5)
    body = ("The harbour council met on Tuesday. " * 40).encode()
    cases = {
        "nul_every_few.txt": b"abc\x00def" * 10,
        "png.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(2000),
        "random.txt": rng.randbytes(8192),
        "sqlite.txt": b"SQLite format 3\x00" + b"\x00\x10\x00\x01" * 500,
        "one_percent.txt": b"".join(body[i : i + 99] + b"\x00" for i in range(0, len(body), 99)),
        "five_nuls.txt": b"Tiny\x00\x00\x00\x00\x00",
    }
    for name, data in cases.items():
        message = assert_error(write(tmp_path, name, data), "binary")
        assert name not in message
    utf16 = "The council met on Tuesday.".encode("utf-16-le")
    assert_error(write(tmp_path, "utf16.txt", utf16), "binary", "UTF-16 without a byte order mark")


# --- messages do not repeat the path ------------------------------------------------------------


def test_messages_never_name_the_file(tmp_path: Path) -> None:
    """The CLI prints `failed: PATH: ERROR`, so an error holding the path would show it twice."""
    bad = {
        "empty.txt": b"",
        "ws.txt": b"  \n ",
        "bin.txt": b"\x00\x01\x02" * 300,
        "bad.json": b'{"text": ',
        "scalar.json": b"42",
        "script.html": b"<script>x()</script>",
        "front.md": b"---\ntitle: x\n---\n",
        "x.pdf": b"%PDF",
    }
    for name, data in bad.items():
        path = write(tmp_path, name, data)
        message = assert_error(path)
        assert str(tmp_path) not in message and name not in message, message
    assert_error(tmp_path / "missing.txt", "cannot read file")
    big = write(tmp_path, "big.txt", "word " * 1000)
    assert "big.txt" not in assert_error(big, "too large", max_bytes=1000)
    warned = load(write(tmp_path, "w.jsonl", '{"text": "Fine."}\n{bad\n{"text": 5}\n'))
    assert warned.warnings == [
        "line 2: invalid JSON; skipped",
        'line 3: "text" is a number, not a string; skipped',
    ]
    dated = load(write(tmp_path, "d.md", "---\npublished: 2023-02-30\n---\nBody text."))
    assert dated.warnings == ["unrecognised date '2023-02-30'; left empty"]
    _, errors = discover_files([tmp_path / "nope.txt", tmp_path / "x.pdf"])
    assert [e[0] for e in errors] == [str(tmp_path / "nope.txt"), str(tmp_path / "x.pdf")]
    assert not any(str(tmp_path) in e[1] for e in errors), errors


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


def _as_user(code: str, *args: str) -> str:
    """Run `code` in a child that obeys file modes (as root too); return its stdout."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=without_file_override(),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_unreadable_file(tmp_path: Path) -> None:
    p = write(tmp_path, "secret.txt", "Hidden text.")
    p.chmod(0)
    try:
        message = _as_user(
            "import sys\n"
            "from bot.sources.formats import load_file\n"
            "from bot.core.errors import IngestFileError\n"
            "try:\n"
            "    load_file(sys.argv[1], max_bytes=1000)\n"
            "except IngestFileError as exc:\n"
            "    print(exc)\n",
            str(p),
        )
        assert message == "cannot read file: permission denied"
    finally:
        p.chmod(0o644)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    assert_error(tmp_path / "nope.txt", "cannot read")
    d = tmp_path / "dir.txt"
    d.mkdir()
    assert_error(d, "folder")


def test_unexpected_exception_is_wrapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.sources.formats as articles

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
    assert errors == [(str(tmp_path / "missing\nfile.txt"), "no such file or directory")]
    bad = write(tmp_path, "bad\nname.txt", b"")
    assert assert_error(bad) == "file is empty"  # the caller shows the path next to it


def test_unreadable_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    write(locked, "a.txt", "x")
    locked.chmod(0)
    try:
        found = _as_user(
            "import json, sys\n"
            "from bot.sources.files import discover_files\n"
            "files, errors = discover_files([sys.argv[1]])\n"
            "print(json.dumps([[str(f) for f in files], errors]))\n",
            str(tmp_path),
        )
        files, errors = json.loads(found)
        assert files == [] and errors == [[str(locked), "cannot read folder: permission denied"]]
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


def test_unicode_line_and_paragraph_separators_end_lines() -> None:
    text = normalise_text("The harbour reopened on Monday\u2028The tram depot closed.\u2029Next.")
    assert text == "The harbour reopened on Monday\nThe tram depot closed.\n\nNext."


def test_txt_with_front_matter_is_read_like_markdown(tmp_path: Path) -> None:
    path = tmp_path / "story.txt"
    path.write_text(
        "---\ntitle: Harbour reopens\nsource: Coast Daily\npublished: 2024-03-05\n---\n"
        "The harbour reopened on Monday.\n",
        encoding="utf-8",
    )
    (record,) = load(path).articles
    assert (record.title, record.source) == ("Harbour reopens", "Coast Daily")
    assert record.published.startswith("2024-03-05")
    assert record.text == "The harbour reopened on Monday."
    plain = tmp_path / "dashes.txt"
    plain.write_text("---\nnot: [front matter\n---\nJust text.\n", encoding="utf-8")
    (kept,) = load(plain).articles
    assert kept.text.startswith("---") and not load(plain).warnings
