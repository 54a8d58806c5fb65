"""Reading an answer's citations: the `[n]` markers of each sentence, refusals, passage sentences.

Markers inside a double-quoted span (`"..."`, `“...”`) are part of the quotation and are not
citations, unless the marker ends the quotation (`"we will stay [2]."`); they stay in the sentence
text verbatim. A marker that opens a sentence ("soldiers. [2] Then ...") closes the one before.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from bot.core.markers import MARKER_RE, marker_numbers, with_markers
from bot.core.sentences import split_sentences
from bot.core.text import replace_surrogates
from bot.core.types import NO_ANSWER, Passage

# Passage sentences the checker may embed per passage; the rest of a long passage is judged by
# the passage's own vector, which keeps one answer's embedding work bounded.
MAX_SENTENCES_PER_PASSAGE = 40
# Passages whose sentences are kept: an answer's gate, pick, check and disagreements read the
# same passages, and a server's next questions often retrieve them again.
PASSAGES_KEPT = 2048

_QUOTE_RE = re.compile(r'"[^"\n]*"|“[^”\n]*”')
_LINE_PREFIX_RE = re.compile(r"^(\s*(?:#{1,6}\s+|>\s*|[-*+•]\s+|\d{1,3}[.)]\s+)*)")
_WS_RE = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+([.,;:!?…])")
_REFUSAL_RE = re.compile(
    r"""^\W*(?:
        (?:the\s+)?(?:provided\s+|given\s+)?(?:articles?|passages?|sources?|context|documents?|texts?)
            \s+(?:do\s+not|don't|does\s+not|doesn't|did\s+not|didn't|contain\s+no|make\s+no|provide\s+no)
            (?:\s+\w+){0,2}?\s*(?:say|said|contain|mention|include|provide|discuss|cover|address|specify|
            state|answer|give|offer|report|describe|information|details?)
      | (?:i|we)\s+(?:do\s+not|don't)\s+know
      | (?:i|we)\s+(?:cannot|can't|can\s+not|am\s+unable\s+to|are\s+unable\s+to|could\s+not
            |couldn't)\s+(?:answer|find|determine|tell|say|know)
      | (?:there\s+is\s+|there's\s+)?(?:not\s+enough|insufficient)\s+(?:relevant\s+)?
            (?:information|details|evidence|data|context)
      | (?:there\s+is\s+|there's\s+)?no\s+(?:relevant\s+)?information\s+(?:in|from|within|about)
            \s+(?:the\s+)?(?:provided\s+|given\s+)?(?:articles|passages|sources|context|documents)
      | none\s+of\s+the\s+(?:provided\s+|given\s+)?(?:articles|passages|sources|documents)
      | unknown\W*$
    )""",
    re.IGNORECASE | re.VERBOSE,
)


@dataclass
class Segment:
    """One sentence of an answer: its text without markers and the numbers it cites."""

    line: int  # index of the source line; sentences of one line are re-joined with a space
    prefix: str  # markdown bullet/heading prefix of the line, kept for the cleaned answer
    text: str
    numbers: list[int]


def passage_sentences(body: str) -> list[tuple[int, str]]:
    """(offset, text) of each sentence of a passage, its markers removed and spaces tidied.

    The extractive answerer and the checker embed these same strings, so the second finds the
    first's vectors in the embedder's memo.
    """
    return list(_passage_sentences(body))


@lru_cache(maxsize=PASSAGES_KEPT)
def _passage_sentences(body: str) -> tuple[tuple[int, str], ...]:
    out = []
    for start, end in split_sentences(body):
        text = tidy(MARKER_RE.sub(" ", body[start:end]))
        if text:
            out.append((start, text))
    return tuple(out)


def sentence_texts(passages: Sequence[Passage]) -> list[str]:
    """Every passage sentence the checker may embed, as it will embed it (at most
    MAX_SENTENCES_PER_PASSAGE each): embedded ahead, they wait in the embedder's memo."""
    texts: list[str] = []
    for passage in passages:
        body = replace_surrogates(passage.text)
        texts.extend(text for _, text in passage_sentences(body)[:MAX_SENTENCES_PER_PASSAGE])
    return texts


def is_refusal(text: str) -> bool:
    """True when `text` is, or starts with, a no-answer statement."""
    text = replace_surrogates(text).replace("’", "'").strip()
    if not text:
        return True
    text = MARKER_RE.sub(" ", _LINE_PREFIX_RE.sub("", text, count=1))
    head = _WS_RE.sub(" ", text).strip().lstrip("*_\"'“ ")
    if head.lower().startswith(NO_ANSWER.rstrip(".").lower()):
        return True
    return bool(_REFUSAL_RE.match(head[:300]))


def _real_markers(text: str) -> list[re.Match[str]]:
    """Markers that are citations: not inside a quotation unless they close it."""
    quoted = [(m.start(), m.end()) for m in _QUOTE_RE.finditer(text)]  # disjoint, in order
    starts = [start for start, _ in quoted]
    markers = []
    for match in MARKER_RE.finditer(text):
        index = bisect_left(starts, match.start()) - 1  # the only quote that can contain it
        if index >= 0 and match.end() < quoted[index][1]:
            closing = quoted[index][1] - 1
            if text[match.end() : closing].strip(" .,;:!?…"):
                continue
        markers.append(match)
    return markers


def tidy(text: str) -> str:
    text = _WS_RE.sub(" ", text).strip()
    return _SPACE_BEFORE_PUNCT_RE.sub(r"\1", text)


def _dedupe(numbers: Sequence[int]) -> list[int]:
    return list(dict.fromkeys(numbers))


def segments(answer: str) -> list[Segment]:
    segments: list[Segment] = []
    for line_no, line in enumerate(replace_surrogates(answer).split("\n")):
        prefix = _LINE_PREFIX_RE.match(line).group(1)  # type: ignore[union-attr]
        body = line[len(prefix) :]
        if not body.strip() and not prefix.strip():
            continue
        pieces = [body[s:e] for s, e in split_sentences(body)] if body.strip() else []
        first_of_line = True
        for piece in pieces:
            markers = _real_markers(piece)
            numbers: list[int] = []
            kept: list[str] = []
            cursor = 0
            for match in markers:
                kept.append(piece[cursor : match.start()])
                numbers.extend(marker_numbers(match.group("body")))
                cursor = match.end()
            kept.append(piece[cursor:])
            text = tidy(" ".join(kept))
            # Markers opening a sentence ("soldiers. [2] Then ...") close the previous one.
            leading: list[int] = []
            if markers and not piece[: markers[0].start()].strip():
                head_end = markers[0].end()
                leading = marker_numbers(markers[0].group("body"))
                for match in markers[1:]:
                    if piece[head_end : match.start()].strip():
                        break
                    leading.extend(marker_numbers(match.group("body")))
                    head_end = match.end()
            same_line = segments and segments[-1].line == line_no
            if leading and segments and (same_line or not text):
                segments[-1].numbers = _dedupe(segments[-1].numbers + leading)
                numbers = numbers[len(leading) :]
            if not text and segments and (same_line or not first_of_line or not prefix.strip()):
                segments[-1].numbers = _dedupe(segments[-1].numbers + numbers)
                continue
            segments.append(
                Segment(line_no, prefix if first_of_line else "", text, _dedupe(numbers))
            )
            first_of_line = False
    return [s for s in segments if s.text or s.numbers]


def parse_citations(answer: str) -> list[tuple[str, list[int]]]:
    """Sentences of `answer` without their markers, and the numbers they cite (ordered, unique).

    Markdown bullets, numbered-list marks and heading marks are stripped from the sentence text. A
    marker with no sentence before it (an answer that is only "[3]") gives an entry with text "".
    """
    try:
        return [(s.text, list(s.numbers)) for s in segments(answer)]
    except Exception:  # noqa: BLE001 - documented to never raise
        return [(tidy(MARKER_RE.sub(" ", replace_surrogates(answer))), [])]


def join_segments(segments: Sequence[Segment], citations: Sequence[Sequence[int]]) -> str:
    lines: list[str] = []
    current = -1
    for segment, numbers in zip(segments, citations, strict=True):
        if not segment.text:
            continue
        piece = with_markers(segment.text, numbers)
        if segment.line != current:
            lines.append(segment.prefix + piece)
            current = segment.line
        else:
            lines[-1] = f"{lines[-1]} {piece}".rstrip()
    return "\n".join(line.rstrip() for line in lines).strip()
