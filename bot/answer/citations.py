"""Check an LLM answer against the passages it was given.

Parse the `[n]` markers of an answer, drop numbers that were never given, score how well each
sentence is supported by the passages it cites, attach uncited sentences to a passage that supports
them, and detect a no-answer ("The articles don't say.").

Support score of a sentence against one passage, in [0, 1]:

    lexical  = |W(sentence) & W(passage)| / |W(sentence)|
               W = content words: lowercased word tokens, stopwords removed, light suffix stemming,
               numbers normalised ("1,200" -> "1200", "three" -> "3")
    semantic = clip((cos - 0.25) / 0.6, 0, 1)
               cos = the best cosine between the sentence and the passage or one of its sentences
               (only sentences sharing two content words with some answer sentence are embedded)
    support  = lexical                           without an embedder
             = 0.6 * lexical + 0.4 * semantic    with one
    and if the sentence states a number the passage does not contain, support = min(support, 0.3).

Raw MiniLM cosines between a sentence and its own paraphrase sit around 0.6-0.9 and between
unrelated news sentences around 0.0-0.25, hence the rescaling. The default threshold 0.45 means,
without an embedder, that about half of a sentence's content words must occur in the passage; with
one, a close paraphrase (lexical 0.3-0.4, cosine 0.75+) still passes while an on-topic sentence
that shares a few words (lexical 0.3, cosine 0.4) does not. The number cap keeps "killed 40" from
passing on a passage that says "killed 14". Wording-level checks cannot detect negation or swapped
roles; the score is a hint for the reader, who checks the quoted passage.

A sentence also cites every other article whose passage supports it above the threshold and within
0.15 of the best support (of its cited passages if one supports it, else of all passages): the same
fact reported by two outlets cites both; a passage that is merely on the topic is not added. If no
cited passage supports a sentence but another does, that one is added and the sentence counts as
supported: the reader can check it there.

A sentence that passes is then judged clause by clause: it is cut at , ; : dashes and brackets
and before "and", "but", "which" and the like, and a piece with a single content word stays with
its neighbour. Each clause needs 0.85 x the threshold against the cited passages, or against
another passage, which is then cited too. A clause no passage supports makes the sentence
unsupported and is reported as its `unsupported_part`, so a trailing ", which is now under
international protection" no longer passes because the rest of the sentence is in the passage.
Only clauses that their words alone cannot decide are embedded. On bench/check.py this flags 91%
of on-topic clauses taken from another article (12% when sentences are judged whole), for 5.4
points fewer reference highlights and 0.2 points fewer BART sentences passing (at 0.7: 86%, and
1.9 and 0.2 points). The bar was raised after SmolLM2 wrote ", which is now under international
protection by Russia and Europe": against the passage's first sentence it scored 0.38, over 0.7's
0.315 and under 0.85's 0.3825. Against the whole passage it cited it still passes; wording is all
the checker compares.

Sentences with fewer than two content words (headings, "In short:", "Yes.") are neutral: they are
never marked unsupported and no citation is attached to them (their own valid markers are kept),
unless every number they cited was never given. "Zelensky resigned." is two words: it is checked.

Markers inside a double-quoted span (`"..."`, `“...”`) are part of the quotation and are not
citations, unless the marker ends the quotation (`"we will stay [2]."`); they stay in the sentence
text verbatim."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.core.markers import MARKER_RE, marker_numbers, with_markers
from bot.core.sentences import split_sentences
from bot.core.text import replace_surrogates
from bot.core.types import NO_ANSWER, CheckedSentence, Passage
from bot.core.words import content_words, stated_numbers

MAX_EMBEDDED_SENTENCES = 200  # longer answers: the rest is scored lexically only
MAX_SENTENCES_PER_PASSAGE = 40
MIN_SHARED_WORDS = 2  # a passage sentence is embedded only when it shares this many with the answer
MIN_CONTENT_WORDS = 2
NUMBER_MISMATCH_CAP = 0.3
LEXICAL_WEIGHT = 0.6
COSINE_FLOOR = 0.25
COSINE_SPAN = 0.6
EXTRA_CITATION_MARGIN = 0.15
CLAUSE_MIN_WORDS = 2  # shorter pieces of a sentence are judged with their neighbour
CLAUSE_BAR = 0.85  # a clause needs this share of min_support (see bench/check.py)

_QUOTE_RE = re.compile(r'"[^"\n]*"|“[^”\n]*”')
_LINE_PREFIX_RE = re.compile(r"^(\s*(?:#{1,6}\s+|>\s*|[-*+•]\s+|\d{1,3}[.)]\s+)*)")
_WS_RE = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+([.,;:!?…])")
# Where a sentence may be cut into clauses: after , ; : and around dashes and brackets, and
# before a conjunction or relative pronoun that usually opens a new claim.
_CLAUSE_CUT_RE = re.compile(
    r"(?<=[,;:])\s+|\s+(?=[—–-]{1,2}\s)|\s+(?=\()|(?<=\))\s+"
    r"|\s+(?=(?:and|but|while|whereas|although|though|which|who|because)\s)",
    re.IGNORECASE,
)

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
class CheckResult:
    answer: str  # the sentences re-joined, valid markers re-inserted as [n], invalid ones removed
    sentences: list[CheckedSentence] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)  # cited numbers never given, sorted unique
    refused: bool = False


@dataclass
class _Segment:
    line: int  # index of the source line; sentences of one line are re-joined with a space
    prefix: str  # markdown bullet/heading prefix of the line, kept for the cleaned answer
    text: str
    numbers: list[int]


# --- passage sentences (shared with bot.answer.extractive) ----------------------------------


def passage_sentences(body: str) -> list[tuple[int, str]]:
    """(offset, text) of each sentence of a passage, its markers removed and spaces tidied.

    The extractive answerer and the checker embed these same strings, so the second finds the
    first's vectors in the embedder's memo.
    """
    out = []
    for start, end in split_sentences(body):
        text = _tidy(MARKER_RE.sub(" ", body[start:end]))
        if text:
            out.append((start, text))
    return out


def sentence_texts(passages: Sequence[Passage]) -> list[str]:
    """Every passage sentence the checker may embed, as it will embed it (at most
    MAX_SENTENCES_PER_PASSAGE each): embedded ahead, they wait in the embedder's memo."""
    texts: list[str] = []
    for passage in passages:
        body = replace_surrogates(passage.text)
        texts.extend(text for _, text in passage_sentences(body)[:MAX_SENTENCES_PER_PASSAGE])
    return texts


def lexical_support(
    sentence_words: Sequence[str], passage_words: set[str], numbers: set[str] | None = None
) -> tuple[float, bool]:
    """(share of the sentence's content words found in the passage, all its `numbers` found)."""
    unique = set(sentence_words)
    if not unique:
        return 0.0, True
    found = unique & passage_words
    return len(found) / len(unique), (numbers or set()) <= passage_words


def combine_support(lexical: float, cosine: float | None, numbers_ok: bool) -> float:
    """The support formula of the module docstring."""
    score = lexical
    if cosine is not None:
        semantic = min(1.0, max(0.0, (cosine - COSINE_FLOOR) / COSINE_SPAN))
        score = LEXICAL_WEIGHT * lexical + (1.0 - LEXICAL_WEIGHT) * semantic
    if not numbers_ok:
        score = min(score, NUMBER_MISMATCH_CAP)
    return max(0.0, min(1.0, score))


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


# --- parsing --------------------------------------------------------------------------------


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


def _tidy(text: str) -> str:
    text = _WS_RE.sub(" ", text).strip()
    return _SPACE_BEFORE_PUNCT_RE.sub(r"\1", text)


def _dedupe(numbers: Sequence[int]) -> list[int]:
    return list(dict.fromkeys(numbers))


def _segments(answer: str) -> list[_Segment]:
    segments: list[_Segment] = []
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
            text = _tidy(" ".join(kept))
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
                _Segment(line_no, prefix if first_of_line else "", text, _dedupe(numbers))
            )
            first_of_line = False
    return [s for s in segments if s.text or s.numbers]


def parse_citations(answer: str) -> list[tuple[str, list[int]]]:
    """Sentences of `answer` without their markers, and the numbers they cite (ordered, unique).

    Markdown bullets, numbered-list marks and heading marks are stripped from the sentence text. A
    marker with no sentence before it (an answer that is only "[3]") gives an entry with text "".
    """
    try:
        return [(s.text, list(s.numbers)) for s in _segments(answer)]
    except Exception:  # noqa: BLE001 - documented to never raise
        return [(_tidy(MARKER_RE.sub(" ", replace_surrogates(answer))), [])]


# --- checking --------------------------------------------------------------------------------


def _join(segments: Sequence[_Segment], citations: Sequence[Sequence[int]]) -> str:
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


def _cosines(
    embedder: Any, sentences: Sequence[str], passages: Sequence[Passage]
) -> list[dict[int, float]] | None:
    """Per answer sentence: {passage n: best cosine against the passage or one of its sentences}."""
    if embedder is None or not sentences or not passages:
        return None
    try:
        import numpy as np

        texts = list(sentences)
        answer_words = [set(content_words(s)) for s in sentences]
        ranges: dict[int, tuple[int, int]] = {}  # passage n -> its columns in the similarity matrix
        for passage in passages:
            body = replace_surrogates(passage.text)
            parts = [body] + [
                text
                for _, text in passage_sentences(body)
                if _shares_words(set(content_words(text)), answer_words)
            ][:MAX_SENTENCES_PER_PASSAGE]
            first = len(texts) - len(sentences)
            texts.extend(parts)
            ranges[int(passage.n)] = (first, first + len(parts))
        vectors = np.asarray(embedder.embed(texts), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            return None
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = np.nan_to_num(vectors / np.where(norms > 0, norms, 1.0))
        sims = vectors[: len(sentences)] @ vectors[len(sentences) :].T
        best = {n: sims[:, lo:hi].max(axis=1) for n, (lo, hi) in ranges.items()}
        return [{n: float(col[i]) for n, col in best.items()} for i in range(len(sentences))]
    except Exception:  # noqa: BLE001 - an embedder failure degrades to lexical scoring
        return None


def _shares_words(words: set[str], answer_words: Sequence[set[str]]) -> bool:
    """Whether a passage sentence could be an answer sentence's closest match: it shares at least
    MIN_SHARED_WORDS content words with one (or all of a shorter one's). Others are not embedded;
    the passage's own vector still scores the pair."""
    return any(
        len(words & answer) >= min(MIN_SHARED_WORDS, len(answer)) > 0 for answer in answer_words
    )


def check_answer(
    answer: str,
    passages: list[Passage],
    *,
    embedder: Any = None,
    min_support: float = 0.45,
    attach_uncited: bool = True,
    clauses: bool = True,
) -> CheckResult:
    """Check each sentence of `answer` against the passages (see module docstring). Never raises.

    `clauses=False` judges each sentence only as a whole (the clause check is then skipped)."""
    try:
        return _check(answer, passages, embedder, min_support, attach_uncited, clauses)
    except Exception:  # noqa: BLE001 - last resort: an unchecked but safe result
        text = _tidy(MARKER_RE.sub(" ", replace_surrogates(answer)))
        return CheckResult(
            answer=text,
            sentences=[CheckedSentence(text, [], False, 0.0)] if text else [],
            dropped=[],
            refused=is_refusal(text),
        )


def _check(
    answer: str,
    passages: list[Passage],
    embedder: Any,
    min_support: float,
    attach_uncited: bool,
    clauses: bool = True,
) -> CheckResult:
    segments = _segments(answer)
    by_n: dict[int, Passage] = {}
    for passage in passages or []:
        by_n.setdefault(int(passage.n), passage)
    dropped = sorted({n for s in segments for n in s.numbers if n not in by_n})
    passage_words = {n: set(content_words(replace_surrogates(p.text))) for n, p in by_n.items()}
    cosines = _cosines(
        embedder, [s.text for s in segments[:MAX_EMBEDDED_SENTENCES]], list(by_n.values())
    )
    texts = [s for s in segments if s.text]
    first = texts[0] if texts else None
    if first is not None and first.prefix.lstrip().startswith("#") and len(texts) > 1:
        first = texts[1]  # "## Answer" heading, then the answer
    refused = first is None or is_refusal(first.text)

    checked: list[CheckedSentence] = []
    citations: list[list[int]] = []
    clause_checks: list[tuple[int, list[str]]] = []  # (row of `checked`, its clauses)
    for index, segment in enumerate(segments):
        cited = [n for n in segment.numbers if n in by_n]
        words = content_words(segment.text)
        numbers = stated_numbers(segment.text)
        scores: dict[int, float] = {}
        for n, pwords in passage_words.items():
            lexical, numbers_ok = lexical_support(words, pwords, numbers)
            cosine = cosines[index].get(n) if cosines and index < len(cosines) else None
            scores[n] = combine_support(lexical, cosine, numbers_ok)
        # A short sentence is neutral ("In short:"), unless it cited only numbers never given:
        # then it claimed a source it does not have.
        lost_all = bool(segment.numbers) and not cited
        neutral = (len(set(words)) < MIN_CONTENT_WORDS and not lost_all) or (
            refused and segment is first
        )
        if not neutral and (cited or attach_uncited):
            cited_articles = {by_n[n].article_id for n in cited}
            ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
            cited_best = max((scores.get(n, 0.0) for n in cited), default=0.0)
            top = cited_best if cited_best >= min_support else (ranked[0][1] if ranked else 0.0)
            bar = max(min_support, top - EXTRA_CITATION_MARGIN)
            for n, score in ranked:
                if score < bar or n in cited:
                    continue
                if by_n[n].article_id not in cited_articles:
                    cited.append(n)
                    cited_articles.add(by_n[n].article_id)
        # Uncited: the best score over all passages, so the reader sees how close it came.
        pool = cited or list(scores)
        support = max((scores.get(n, 0.0) for n in pool), default=0.0)
        supported = neutral or (bool(cited) and support >= min_support)
        checked.append(CheckedSentence(segment.text, cited, supported, round(support, 4)))
        citations.append(cited)
        if clauses and supported and not neutral:
            parts = clauses_of(segment.text)
            if len(parts) > 1:
                clause_checks.append((len(checked) - 1, parts))
    if clause_checks:
        _check_clauses(clause_checks, checked, passage_words, by_n, embedder, min_support)
    return CheckResult(
        answer=_join(segments, citations) if segments else "",
        sentences=[c for c in checked if c.text],
        dropped=dropped,
        refused=refused,
    )


# --- clauses ---------------------------------------------------------------------------------


def clauses_of(text: str) -> list[str]:
    """The clauses of a sentence, each judged on its own: pieces cut at commas, semicolons,
    colons, dashes, brackets and before words like "and", "but", "which"; a piece with fewer than
    CLAUSE_MIN_WORDS content words is joined to the piece before it (the first to the one after).
    A sentence that does not split gives [text]."""
    pieces = [p.strip() for p in _CLAUSE_CUT_RE.split(text) if p and p.strip()]
    merged: list[str] = []
    carry = ""
    for piece in pieces:
        piece = f"{carry} {piece}" if carry else piece
        carry = ""
        if len(set(content_words(piece))) >= CLAUSE_MIN_WORDS:
            merged.append(piece)
        elif merged:
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            carry = piece
    if carry:
        merged.append(carry)
    return merged or [text]


def _check_clauses(
    items: list[tuple[int, list[str]]],
    checked: list[CheckedSentence],
    passage_words: dict[int, set[str]],
    by_n: dict[int, Passage],
    embedder: Any,
    min_support: float,
) -> None:
    """Judge each clause of the supported sentences in `items` like a sentence of its own.

    A clause no cited passage supports, but another passage does, adds that passage's citation
    (a sentence that joins two passages' facts). A clause no passage supports makes its sentence
    unsupported, names the clause in `unsupported_part`, and caps the sentence's support at the
    clause's. Clauses whose words alone decide are not embedded: only the doubtful ones are."""
    # (row, clause text, its per-passage lexical scores and number checks)
    rows: list[tuple[int, str, dict[int, tuple[float, bool]]]] = []
    for row, parts in items:
        for part in parts:
            words, numbers = content_words(part), stated_numbers(part)
            lexical = {n: lexical_support(words, pw, numbers) for n, pw in passage_words.items()}
            rows.append((row, part, lexical))

    def score(lexical: tuple[float, bool], cosine: float | None) -> float:
        return combine_support(lexical[0], cosine, lexical[1])

    min_support *= CLAUSE_BAR
    floor = COSINE_FLOOR if embedder is not None else None  # "no semantic support" as a cosine
    doubtful = [
        i
        for i, (row, _, lexical) in enumerate(rows)
        if max((score(lexical[n], floor) for n in checked[row].citations), default=0.0)
        < min_support
    ]
    cosines = _cosines(embedder, [rows[i][1] for i in doubtful], list(by_n.values()))
    best_cosine = {i: cosines[j] for j, i in enumerate(doubtful)} if cosines else {}
    for i, (row, part, lexical) in enumerate(rows):
        sentence = checked[row]
        if not sentence.supported:
            continue  # an earlier clause already failed it
        cos = best_cosine.get(i, {})
        scores = {n: score(lexical[n], cos.get(n) if cos else None) for n in lexical}
        if max((scores[n] for n in sentence.citations), default=0.0) >= min_support:
            continue
        n, best = max(scores.items(), key=lambda item: (item[1], -item[0]), default=(0, 0.0))
        if best >= min_support:
            sentence.citations.append(n)
            continue
        sentence.supported = False
        sentence.unsupported_part = part
        sentence.support = round(
            min(sentence.support, max((scores[n] for n in sentence.citations), default=0.0)), 4
        )
