"""Generate a corpus of bad (and a few tricky-but-good) input files at test time.

`write_bad_corpus(folder)` writes the files and returns {relative name: kind}; `EXPECTED[kind]` says
what `bot ingest` must do with that kind:

  "ingest"  - indexed as an article (warnings allowed)
  "warn"    - indexed, with at least one warning naming the file
  "fail"    - not indexed; exactly one one-line error naming the file
  "skip"    - silently ignored (not an article, not an error)
  "either"  - indexed, or exactly one one-line error (the brief leaves the outcome open)

Nothing big is committed: the 50 MB file is sparse, everything else is built in memory. The 10 MB
line without spaces (`line_10mb_no_spaces`) is written by `write_long_line`, outside the main
corpus, because embedding its ~10,000 chunks takes long; `name_newline_failing` by
`write_failing_newline_name`, so the CLI's one-line-per-failure output can be checked on its own.

`unreadable_permission` (chmod 000) fails only for a process that obeys file modes: root does not,
unless started with `preexec_fn=without_file_override()`. `html_external_entity` declares an
external entity pointing at `SECRET_FILE` (inside a hidden folder discovery skips); its token
`SECRET_TOKEN` must never reach the index.
"""

from __future__ import annotations

import codecs
import ctypes
import gzip
import json
import os
import random
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

SEEDS = Path(__file__).resolve().parent.parent / "seeds"

EXPECTED: dict[str, str] = {
    "seed": "ingest",
    "empty": "fail",
    "whitespace_only": "fail",
    "binary_nul": "fail",
    "random_bytes": "fail",
    "utf16_bom": "ingest",
    "utf16_no_bom": "fail",
    "latin1": "warn",
    "invalid_utf8_mid": "either",
    "too_large_50mb": "fail",
    "html_script_style_only": "fail",
    "html_deeply_nested": "ingest",
    "html_no_body": "fail",
    "html_malformed": "ingest",
    "json_unparseable": "fail",
    "json_wrong_types": "fail",
    "json_mixed_records": "warn",
    "json_scalar": "fail",
    "json_deeply_nested": "fail",
    "jsonl_broken_lines": "warn",
    "jsonl_huge_line": "ingest",
    "jsonl_empty": "fail",
    "date_impossible": "warn",
    "dates_odd": "warn",
    "md_broken_front_matter": "warn",
    "md_only_front_matter": "fail",
    "dir_named_like_file": "skip",
    "broken_symlink": "fail",
    "symlink_loop": "fail",
    "dir_symlink_loop": "skip",
    "name_newline": "ingest",
    "name_non_ascii": "ingest",
    "name_leading_dash": "ingest",
    "png_as_txt": "fail",
    "gzip_as_txt": "fail",
    "nul_mid_text": "warn",
    "ansi_control": "ingest",
    "crlf": "ingest",
    "bom_only": "fail",
    "long_title": "ingest",
    "unsupported_suffix": "skip",
    "hidden_file": "skip",
    "unreadable_permission": "fail",
    "jsonl_wrong_types": "warn",
    "line_10mb_no_spaces": "ingest",
    "name_newline_failing": "fail",
    "fifo_named_txt": "skip",
    "symlink_to_dev_zero": "skip",
    "yaml_alias_bomb": "warn",
    "html_external_entity": "ingest",
    "utf32_bom": "ingest",
    "bidi_override": "ingest",
    "control_chars_only": "fail",
}

SECRET_FILE = ".private/token.txt"
SECRET_TOKEN = "XXE-LEAK-7f3a9c"

LONG_LINE_BYTES = 10 * 1024 * 1024


# --- permissions that hold for root too -----------------------------------------------------------
# Root reads and writes through chmod because it holds CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.
# A child started with `preexec_fn=without_file_override()` drops both (bounding and inheritable
# sets, like `setpriv --bounding-set=-dac_override,-dac_read_search`), so it stays uid 0, can run
# everything root owns, but meets file modes like any user: chmod 000 stops its reads, a
# read-only folder stops its writes.

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2
_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_file_override() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    caps = (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH)
    for cap in caps:
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    keep = ~sum(1 << cap for cap in caps) & 0xFFFFFFFF
    data[0].effective &= keep
    data[0].permitted &= keep
    data[0].inheritable &= keep
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def without_file_override() -> Callable[[], None] | None:
    """A `preexec_fn` that makes a child obey file modes even as root (None when not root)."""
    if os.geteuid() != 0:
        return None
    if not sys.platform.startswith("linux"):
        raise RuntimeError("running as root outside Linux: cannot drop CAP_DAC_OVERRIDE")
    return _drop_file_override


def _para(tag: str, n: int = 4) -> str:
    """Distinct, sentence-shaped English text (distinct so each file is its own article)."""
    lines = [
        f"The {tag} report describes how the harbour council met on Tuesday to discuss repairs.",
        f"Officials said the {tag} project would cost about 4 million euros over two years.",
        f"Residents of the {tag} district asked for the works to start before the winter storms.",
        f"The mayor promised a public hearing on the {tag} plan next month.",
    ]
    return "\n".join(lines[:n]) + "\n"


def _write(folder: Path, name: str, data: bytes | str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)


def write_long_line(folder: Path, name: str = "long_line.txt") -> Path:
    """A 10 MB single line without spaces (kept out of the main corpus: it embeds ~10k chunks)."""
    path = folder / name
    folder.mkdir(parents=True, exist_ok=True)
    block = ("abcdefghij" * 100).encode()
    with open(path, "wb") as fh:
        for _ in range(LONG_LINE_BYTES // len(block)):
            fh.write(block)
    return path


def write_failing_newline_name(folder: Path) -> Path:
    """An empty (so failing) file with a newline in its name: its `failed:` line must be one."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bad\nname.txt"
    path.write_bytes(b"")
    return path


def written_elsewhere() -> set[str]:
    """Kinds of EXPECTED that `write_bad_corpus` does not write (see the module docstring)."""
    return {"line_10mb_no_spaces", "name_newline_failing"}


def write_bad_corpus(folder: Path, *, seeds: bool = True, bad: bool = True) -> dict[str, str]:
    """Write the corpus into `folder` (created); return {name relative to folder: kind}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    kinds: dict[str, str] = {}

    def put(name: str, kind: str, data: bytes | str) -> None:
        _write(folder, name, data)
        kinds[name] = kind

    if seeds:
        (folder / "seeds").mkdir(exist_ok=True)
        for seed in sorted(SEEDS.iterdir()):
            if seed.is_file():
                shutil.copy(seed, folder / "seeds" / seed.name)
                kinds[f"seeds/{seed.name}"] = "seed"
    if not bad:
        return kinds

    rng = random.Random(1234)
    put("empty.txt", "empty", b"")
    put("whitespace.txt", "whitespace_only", " \n\t\r\n   \n")
    put("binary_nul.txt", "binary_nul", b"\x00\x01\x02\x03" * 256 + b"text\x00" * 50)
    put("random.txt", "random_bytes", rng.randbytes(8192))
    put("utf16_bom.txt", "utf16_bom", codecs.BOM_UTF16_LE + _para("Utf16bom").encode("utf-16-le"))
    put("utf16_nobom.txt", "utf16_no_bom", _para("Utf16plain").encode("utf-16-le"))
    latin = "Le café de la rue Saint-Honoré a rouvert ses portes après les travaux.\n" * 3
    put("latin1.txt", "latin1", (latin + _para("Latinone")).encode("latin-1"))
    put(
        "bad_utf8.txt",
        "invalid_utf8_mid",
        _para("Badutf").encode() + b"broken \xff\xfe\xc3 bytes here.\n" + _para("Badutf2").encode(),
    )
    with open(folder / "huge_50mb.txt", "wb") as fh:  # sparse: instant, no disk use
        fh.truncate(50 * 1024 * 1024)
    kinds["huge_50mb.txt"] = "too_large_50mb"

    # HTML
    put(
        "script_only.html",
        "html_script_style_only",
        "<html><head><style>body{color:red}</style><script>var a = 1;</script></head>"
        "<body><script>document.write('x')</script><style>p{}</style><noscript></noscript>"
        "</body></html>",
    )
    depth = 50_000
    put(
        "deep.html",
        "html_deeply_nested",
        "<html><body>" + "<div>" * depth + _para("Deepnest") + "</div>" * depth + "</body></html>",
    )
    put(
        "no_body.html",
        "html_no_body",
        "<html><head><title>Only a head</title><meta charset='utf-8'></head></html>",
    )
    put(
        "malformed.html",
        "html_malformed",
        "<html><body><p>" + _para("Malformed") + "<b>bold <i>never closed <div>"
        "<p>The council of the Malformed town voted for the new bridge plan in March.<<>>"
        "</span></table>&nbsp;&bogus; <a href='x",
    )

    # JSON / JSONL
    put("bad.json", "json_unparseable", '{"title": "x", "text": "unterminated')
    put(
        "wrong_types.json",
        "json_wrong_types",
        json.dumps({"text": 123, "title": ["a", "b"], "published": {"x": 1}}),
    )
    put(
        "mixed.json",
        "json_mixed_records",
        json.dumps(
            [
                {"title": "Good record", "text": _para("Mixedgood"), "published": "2023-05-01"},
                {"title": "Numeric text", "text": 42},
                "just a string",
                None,
                {"title": "no text"},
                {"title": ["list", "title"], "text": _para("Mixedlisttitle"), "source": {"n": 1}},
            ]
        ),
    )
    put("scalar.json", "json_scalar", "42")
    put("nested.json", "json_deeply_nested", "[" * 100_000 + "]" * 100_000)
    put(
        "broken.jsonl",
        "jsonl_broken_lines",
        json.dumps({"title": "Line one", "text": _para("Jsonlone")})
        + "\n{broken json\n\n"
        + json.dumps({"title": "Line four", "text": _para("Jsonlfour")})
        + "\n"
        + '{"title": "cut off", "text": "abc',
    )
    put(
        "huge_line.jsonl",
        "jsonl_huge_line",
        json.dumps({"title": "Huge line", "text": _para("Hugeline"), "padding": "x" * 4_000_000})
        + "\n",
    )
    put("empty.jsonl", "jsonl_empty", "")

    # dates and front matter
    put(
        "impossible_date.md",
        "date_impossible",
        "---\ntitle: Impossible date\npublished: 2023-02-30\n---\n" + _para("Impossibledate"),
    )
    put(
        "odd_dates.jsonl",
        "dates_odd",
        "\n".join(
            json.dumps({"title": f"Odd date {i}", "text": _para(f"Odddate{i}"), "date": d})
            for i, d in enumerate(["99999-01-01", "yesterday", 1700000000000, "0000-00-00"])
        ),
    )
    put(
        "broken_front_matter.md",
        "md_broken_front_matter",
        "---\ntitle: [unclosed\nsource: : :\n---\n# Heading\n" + _para("Brokenfront"),
    )
    put(
        "only_front_matter.md",
        "md_only_front_matter",
        "---\ntitle: Nothing below\npublished: 2023-01-01\n---\n",
    )

    # file-system oddities
    (folder / "dir.txt").mkdir()
    kinds["dir.txt"] = "dir_named_like_file"
    os.symlink(folder / "does-not-exist.txt", folder / "broken_link.txt")
    kinds["broken_link.txt"] = "broken_symlink"
    os.symlink(folder / "loop_b.txt", folder / "loop_a.txt")
    os.symlink(folder / "loop_a.txt", folder / "loop_b.txt")
    kinds["loop_a.txt"] = "symlink_loop"
    kinds["loop_b.txt"] = "symlink_loop"
    (folder / "sub").mkdir()
    os.symlink(folder, folder / "sub" / "loop_dir")
    kinds["sub/loop_dir"] = "dir_symlink_loop"

    # names
    put("new\nline.txt", "name_newline", _para("Newline"))
    put("café_中文_😀.txt", "name_non_ascii", _para("Nonascii"))
    put("-n.txt", "name_leading_dash", _para("Leadingdash"))

    # disguised and dirty content
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(2000)
    put("image.txt", "png_as_txt", png)
    put("archive.txt", "gzip_as_txt", gzip.compress(_para("Gzipped").encode() * 20, mtime=0))
    put("nul_mid.txt", "nul_mid_text", _para("Nulmid") + "\x00" + _para("Nulmid2"))
    put(
        "ansi.txt",
        "ansi_control",
        "\x1b[31mRed alert\x1b[0m in the Ansitown harbour.\x07\n"
        "\x1b]8;;http://evil.example\x07click\x1b]8;;\x07 here\x08\x0b\x0c.\n" + _para("Ansitown"),
    )
    put("crlf.txt", "crlf", _para("Crlfville").replace("\n", "\r\n"))
    put("bom_only.txt", "bom_only", codecs.BOM_UTF8)
    put(
        "long_title.md",
        "long_title",
        "# "
        + "Very long headline about the Longtitle harbour " * 300
        + "\n\n"
        + _para("Longtitle"),
    )
    put("notes.pdf", "unsupported_suffix", b"%PDF-1.4\n")
    put(".hidden.txt", "hidden_file", _para("Hidden"))

    # permissions, special files
    put("unreadable.txt", "unreadable_permission", _para("Unreadable"))
    (folder / "unreadable.txt").chmod(0)
    os.mkfifo(folder / "pipe.txt")  # opening it would block forever: never opened
    kinds["pipe.txt"] = "fifo_named_txt"
    os.symlink("/dev/zero", folder / "zero.txt")  # reading it would never end
    kinds["zero.txt"] = "symlink_to_dev_zero"

    # more structure and encoding oddities
    put(
        "wrong_types.jsonl",
        "jsonl_wrong_types",
        "\n".join(
            json.dumps(line)
            for line in [
                {"title": "Fine line", "text": _para("Jsonltypes")},
                {"title": "Number", "text": 7},
                {"title": "List", "text": ["a", "b"]},
                {"title": "Object", "text": {"body": "x"}},
                ["not", "an", "object"],
                {"title": {"nested": True}, "text": _para("Jsonltypes2"), "date": [2023, 1, 1]},
            ]
        ),
    )
    laughs = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        laughs.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    put(
        "alias_bomb.md",
        "yaml_alias_bomb",
        "---\n" + "\n".join(laughs) + "\ntitle: *a9\n---\n" + _para("Aliasbomb"),
    )
    _write(folder, SECRET_FILE, SECRET_TOKEN + "\n")
    put(
        "entity.html",
        "html_external_entity",
        f'<?xml version="1.0"?>\n<!DOCTYPE html [<!ENTITY leak SYSTEM "file://{folder}/'
        f'{SECRET_FILE}"><!ENTITY boom "&leak;&leak;&leak;">]>\n'
        "<html><head><title>Entity &leak;</title></head><body><article><p>"
        + _para("Entityville")
        + " &leak; &boom;</p></article></body></html>",
    )
    put("utf32_bom.txt", "utf32_bom", _para("Utf32town").encode("utf-32"))
    put(
        "bidi.txt",
        "bidi_override",
        "The \u202eevil\u202c Biditown report.\n\u2066Isolated\u2069 text.\n" + _para("Biditown"),
    )
    put("controls.txt", "control_chars_only", b"\x01\x02\x03\x04\x05\x06\n")
    return kinds
