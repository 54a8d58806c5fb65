"""Sentence splitting and chunking: property tests plus examples on real prose."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.sources.chunking import Chunk, chunk_text, split_sentences
from tests.conftest import SEEDS

# Text that stresses the splitter: prose pieces, abbreviations, quotes, all kinds of whitespace and
# line breaks, unicode, and long runs without spaces.
_PIECES = st.sampled_from(
    [
        "The U.S. said so.",
        " Mr. Smith left at 5 p.m. ",
        "Why?",
        ' "Yes!" he said. ',
        "It rose 3.5%.",
        "J. K. Rowling",
        "“Quoted.” ",
        "Jan. 5",
        "...",
        ". ",
        "\n",
        "\n\n",
        "\r\n",
        "\t",
        "\u2028",
        "\x0b\x1c\x85",
        "\u00a0",
        "Ünïcödé 東京 😀",
        "x" * 50,
        " ",
    ]
)
TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(_PIECES, st.text(max_size=12)), max_size=40).map("".join),
)


def _check_chunks(text: str, chunks: list[Chunk], size: int) -> None:
    covered = bytearray(len(text))
    prev_start = -1
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert 0 < len(c.text) <= size
        assert not c.text[0].isspace() and not c.text[-1].isspace()
        assert c.start > prev_start  # progress
        prev_start = c.start
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    for i, ch in enumerate(text):
        if not ch.isspace():
            assert covered[i], f"char {i} {ch!r} not in any chunk"
    # Chunks are ordered by end too (no chunk nested inside the previous one's range twice).
    ends = [c.end for c in chunks]
    assert ends == sorted(ends)


@given(TEXT)
@settings(max_examples=300, deadline=None)
def test_sentence_span_invariants(text: str) -> None:
    spans = split_sentences(text)
    pos = 0
    covered = bytearray(len(text))
    for s, e in spans:
        assert pos <= s < e <= len(text)
        assert not text[s].isspace() and not text[e - 1].isspace()
        covered[s:e] = b"\x01" * (e - s)
        pos = e
    for i, ch in enumerate(text):
        assert covered[i] or ch.isspace()


@given(TEXT, st.integers(1, 120), st.integers(0, 150))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_chunk_invariants(text: str, size: int, overlap: int) -> None:
    chunks = chunk_text(text, size, overlap)
    _check_chunks(text, chunks, size)
    if not text.strip():
        assert chunks == []


@pytest.mark.parametrize(
    "text",
    [
        "The U.S. economy grew. Then it shrank.",
        "At 5 p.m. Monday the talks ended. Nobody spoke.",
        "Mr. Smith met Mrs. Jones and Dr. Who. They talked.",
        "Ms. Lee, Prof. Kim, St. Louis, Gen. Milley, Sen. Warren, Rep. Cruz, Gov. Newsom. End.",
        "It happened on Jan. 5 and No. 10 replied. Then more.",
        "Apple Inc. and Acme Corp. and Foo Ltd. and Bar Co. merged. Done.",
        "J. K. Rowling wrote it. Later.",
        "Compare e.g. apples vs. oranges, i.e. fruit. Next.",
        "The U.K. government said so. Fine.",
        "It rose 3.5 per cent. Then 4.2.",
    ],
)
def test_abbreviations_do_not_end_sentences(text: str) -> None:
    spans = split_sentences(text)
    assert len(spans) == 2, [text[s:e] for s, e in spans]


def test_sentence_examples() -> None:
    text = 'He said "Stop." She left! Why? “Quoted.” (Aside.) Next one.\nNew para.\n\n  Last  '
    got = [text[s:e] for s, e in split_sentences(text)]
    assert got == [
        'He said "Stop."',
        "She left!",
        "Why?",
        "“Quoted.”",
        "(Aside.)",
        "Next one.",
        "New para.",
        "Last",
    ]
    # Lower-case continuation is not a new sentence.
    assert len(split_sentences('"Why?" he asked. Fine.')) == 2
    assert split_sentences("") == [] and split_sentences(" \n\t ") == []


def test_chunks_end_on_sentence_ends_for_prose() -> None:
    text = (SEEDS / "000_2a677c025498d731.txt").read_text(encoding="utf-8")
    ends = {e for _, e in split_sentences(text)}
    starts = {s for s, _ in split_sentences(text)}
    chunks = chunk_text(text, 400, 80)
    _check_chunks(text, chunks, 400)
    for c in chunks:
        assert c.end in ends and c.start in starts


@pytest.mark.parametrize("name", ["000_2a677c025498d731.txt", "001_387126282b9e4dd5.txt"])
def test_seed_articles_chunk_sensibly(name: str) -> None:
    text = (SEEDS / name).read_text(encoding="utf-8")
    chunks = chunk_text(text, 1000, 150)
    _check_chunks(text, chunks, 1000)
    assert 2 <= len(chunks) <= 4
    assert all(len(c.text) >= 300 for c in chunks[:-1])
    starts = {s for s, _ in split_sentences(text)}
    for a, b in zip(chunks, chunks[1:], strict=False):
        # The next chunk starts at the first sentence within the overlap window (whole sentences
        # only, so a long last sentence means no overlap).
        assert b.start in starts
        assert a.end - 150 <= b.start <= a.end + 1


def test_overlap_zero_gives_disjoint_chunks() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(200))
    chunks = chunk_text(text, 300, 0)
    _check_chunks(text, chunks, 300)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start > a.end


def test_long_sentence_split_at_whitespace() -> None:
    text = " ".join(["word"] * 1000) + "."
    chunks = chunk_text(text, 100, 20)
    _check_chunks(text, chunks, 100)
    for c in chunks:
        assert c.text.startswith("word")  # never cut inside a word


def test_huge_line_without_spaces_is_linear() -> None:
    text = "x" * 10_000_000
    t0 = time.perf_counter()
    chunks = chunk_text(text, 1000, 150)
    elapsed = time.perf_counter() - t0
    assert len(chunks) == 10_000
    assert all(len(c.text) == 1000 for c in chunks)
    assert chunks[-1].end == len(text)
    assert elapsed < 10


def test_split_sentences_is_fast() -> None:
    text = (SEEDS / "000_2a677c025498d731.txt").read_text(encoding="utf-8") * 500  # ~1 MB
    t0 = time.perf_counter()
    spans = split_sentences(text)
    assert time.perf_counter() - t0 < 1.0
    assert len(spans) > 5000


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        chunk_text("abc", 0, 0)
    with pytest.raises(ValueError):
        chunk_text("abc", 10, -1)
    assert chunk_text("", 10, 0) == [] and chunk_text(" \n ", 10, 5) == []


def test_overlap_larger_than_size_still_progresses() -> None:
    text = "A b. " * 200
    chunks = chunk_text(text, 10, 50)
    _check_chunks(text, chunks, 10)
    assert len(chunks) == 199  # two 4-char sentences per chunk, advancing one sentence at a time
