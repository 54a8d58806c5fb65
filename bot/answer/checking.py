"""Checking an answer against the passages it was given: does each sentence's passage state it?

Support score of a sentence against one passage, in [0, 1]:

    lexical  = |W(sentence) & W(passage)| / |W(sentence)|
               W = content words (bot.core.words): stopwords removed, stemmed, numbers normalised
    semantic = clip((cos - COSINE_FLOOR) / COSINE_SPAN, 0, 1)
               cos = the best cosine between the sentence and the passage or one of its sentences
               (only sentences sharing MIN_SHARED_WORDS content words with an answer sentence are
               embedded)
    support  = lexical                                         without an embedder
             = LEXICAL_WEIGHT * lexical + (1 - LEXICAL_WEIGHT) * semantic   with one
    and if the sentence states a number the passage does not contain, support is capped at
    NUMBER_MISMATCH_CAP.

MiniLM cosines between a sentence and its own paraphrase sit around 0.6-0.9 and between unrelated
news sentences around 0.0-0.25, hence the rescaling. With the default threshold (0.45) and no
embedder, about half of a sentence's content words must occur in the passage; with one, a close
paraphrase still passes while an on-topic sentence that shares a few words does not. Wording-level
checks cannot see negation or swapped roles; the score is a hint for the reader, who checks the
quoted passage.

A sentence also cites every other article whose passage supports it above the threshold and within
EXTRA_CITATION_MARGIN of the best support: the same fact reported by two outlets cites both. If no
cited passage supports a sentence but another does, that one is added and the sentence counts as
supported: the reader can check it there.

A sentence that passes is then judged clause by clause (cut at , ; : dashes and brackets and
before "and", "but", "which" and the like; a piece with one content word stays with its
neighbour). Each clause needs CLAUSE_BAR x the threshold against a passage, which is then cited
too. A clause no passage supports makes the sentence unsupported and is reported as its
`unsupported_part`, so an invented trailing clause cannot ride on a well-supported one.

Last, a sentence drops the citations of passages that tell a part of it otherwise: a passage
holding MISMATCH_COVERAGE of the other words of a clause that states numbers or names, without
those numbers and names. "15 people were injured" never cites the outlet that says 12, however
close the wording; a passage cited for the other clause of a sentence joining two facts stays.
Those removed are kept in `CheckedSentence.mismatched` (the outlets that may disagree). When no
cited passage states its numbers, the sentence keeps its citations and is unsupported, its
`unsupported_part` the clause stating what none of them states; a name alone does not fail a
sentence's only citations (an article names people across its passages).

Sentences with fewer than MIN_CONTENT_WORDS content words (headings, "In short:", "Yes.") are
neutral: never marked unsupported, and no citation is attached to them, unless every number they
cited was never given.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.answer.citations import (
    MAX_SENTENCES_PER_PASSAGE,
    Segment,
    is_refusal,
    join_segments,
    passage_sentences,
    segments,
    tidy,
)
from bot.core.markers import MARKER_RE
from bot.core.text import replace_surrogates
from bot.core.types import CheckedSentence, Passage
from bot.core.values import stated_names, word_set
from bot.core.words import content_words, stated_numbers

if TYPE_CHECKING:
    from bot.index.embeddings import Embedder

# Answers longer than this many sentences are scored lexically beyond it: embedding is the cost.
MAX_EMBEDDED_SENTENCES = 200
# A passage sentence is embedded only when it shares this many content words with the answer.
MIN_SHARED_WORDS = 2
# Fewer content words than this and a sentence is a heading or a connective, not a claim.
MIN_CONTENT_WORDS = 2
# A sentence stating a number its passage lacks scores at most this: below any threshold in use.
NUMBER_MISMATCH_CAP = 0.3
# Words decide more than vectors: a wrong name shares a vector neighbourhood, not the word.
LEXICAL_WEIGHT = 0.6
# The cosine of unrelated news sentences, and the span up to a close paraphrase (see above).
COSINE_FLOOR = 0.25
COSINE_SPAN = 0.6
# Another outlet's passage is co-cited when it supports the sentence nearly as well as the best.
EXTRA_CITATION_MARGIN = 0.15
# A cited passage holding this share of a clause's other words tells the same part of the story,
# so it must state the clause's numbers and names too.
MISMATCH_COVERAGE = 0.5
# Shorter pieces of a sentence are judged together with their neighbour.
CLAUSE_MIN_WORDS = 2
# A clause needs this share of min_support; bench/check.py measures the trade-off.
CLAUSE_BAR = 0.85

# Where a sentence may be cut into clauses: after , ; : and around dashes and brackets, and
# before a conjunction or relative pronoun that usually opens a new claim.
_CLAUSE_CUT_RE = re.compile(
    r"(?<=[,;:])\s+|\s+(?=[—–-]{1,2}\s)|\s+(?=\()|(?<=\))\s+"
    r"|\s+(?=(?:and|but|while|whereas|although|though|which|who|because)\s)",
    re.IGNORECASE,
)


@dataclass
class CheckResult:
    answer: str  # the sentences re-joined, valid markers re-inserted as [n], invalid ones removed
    sentences: list[CheckedSentence] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)  # cited numbers never given, sorted unique
    refused: bool = False


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


def _cosines(
    embedder: Embedder | None, sentences: Sequence[str], passages: Sequence[Passage]
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
    embedder: Embedder | None = None,
    min_support: float = 0.45,
    attach_uncited: bool = True,
    clauses: bool = True,
    drop_mismatched: bool = True,
) -> CheckResult:
    """Check each sentence of `answer` against the passages (see module docstring). Never raises.

    `clauses=False` judges each sentence only as a whole (the clause check is then skipped);
    `drop_mismatched=False` keeps the citations of passages that tell a part of the sentence
    otherwise (a draft, checked again later)."""
    try:
        return _check(
            answer,
            passages,
            embedder,
            min_support,
            attach_uncited=attach_uncited,
            clauses=clauses,
            drop_mismatched=drop_mismatched,
        )
    except Exception:  # noqa: BLE001 - last resort: an unchecked but safe result
        text = tidy(MARKER_RE.sub(" ", replace_surrogates(answer)))
        return CheckResult(
            answer=text,
            sentences=[CheckedSentence(text, [], False, 0.0)] if text else [],
            dropped=[],
            refused=is_refusal(text),
        )


@dataclass
class _Context:
    """What every sentence of one answer is checked against."""

    by_n: dict[int, Passage]
    passage_words: dict[int, set[str]]
    passage_names: dict[int, set[str]]  # every word of the passage, where names are looked up
    cosines: list[dict[int, float]] | None
    min_support: float
    attach_uncited: bool


def _check(
    answer: str,
    passages: list[Passage],
    embedder: Embedder | None,
    min_support: float,
    *,
    attach_uncited: bool,
    clauses: bool = True,
    drop_mismatched: bool = True,
) -> CheckResult:
    found = segments(answer)
    by_n: dict[int, Passage] = {}
    for passage in passages or []:
        by_n.setdefault(int(passage.n), passage)
    context = _Context(
        by_n=by_n,
        passage_words={n: set(content_words(replace_surrogates(p.text))) for n, p in by_n.items()},
        passage_names={n: word_set(replace_surrogates(p.text)) for n, p in by_n.items()},
        cosines=_cosines(
            embedder, [s.text for s in found[:MAX_EMBEDDED_SENTENCES]], list(by_n.values())
        ),
        min_support=min_support,
        attach_uncited=attach_uncited,
    )
    first = _first_sentence(found)
    refused = first is None or is_refusal(first.text)
    checked: list[CheckedSentence] = []
    clause_checks: list[tuple[int, list[str]]] = []  # (row of `checked`, its clauses)
    for index, segment in enumerate(found):
        sentence, neutral = _check_sentence(index, segment, context, refused and segment is first)
        checked.append(sentence)
        if clauses and sentence.supported and not neutral:
            parts = clauses_of(segment.text)
            if len(parts) > 1:
                clause_checks.append((len(checked) - 1, parts))
    if clause_checks:
        _check_clauses(clause_checks, checked, context, embedder, min_support)
    for segment, sentence in zip(found, checked, strict=True):
        if drop_mismatched:
            _drop_mismatched(segment.text, sentence, context)
    return CheckResult(
        answer=join_segments(found, [c.citations for c in checked]) if found else "",
        sentences=[c for c in checked if c.text],
        dropped=sorted({n for s in found for n in s.numbers if n not in by_n}),
        refused=refused,
    )


def _first_sentence(found: list[Segment]) -> Segment | None:
    """The answer's first sentence with text, skipping a leading "## Answer" heading."""
    texts = [s for s in found if s.text]
    if texts and texts[0].prefix.lstrip().startswith("#") and len(texts) > 1:
        return texts[1]
    return texts[0] if texts else None


def _check_sentence(
    index: int, segment: Segment, context: _Context, is_refusal_line: bool
) -> tuple[CheckedSentence, bool]:
    """One sentence checked: its citations (with co-cited outlets added) and support; and whether
    it is neutral (too short to be a claim, or the refusal line itself)."""
    by_n = context.by_n
    cited = [n for n in segment.numbers if n in by_n]
    words = content_words(segment.text)
    scores = _scores(index, words, segment.text, context)
    # A short sentence is neutral ("In short:"), unless it cited only numbers never given: then
    # it claimed a source it does not have.
    lost_all = bool(segment.numbers) and not cited
    neutral = (len(set(words)) < MIN_CONTENT_WORDS and not lost_all) or is_refusal_line
    if not neutral and (cited or context.attach_uncited):
        _add_co_citations(cited, scores, context)
    # Uncited: the best score over all passages, so the reader sees how close it came.
    pool = cited or list(scores)
    support = max((scores.get(n, 0.0) for n in pool), default=0.0)
    supported = neutral or (bool(cited) and support >= context.min_support)
    return CheckedSentence(segment.text, cited, supported, round(support, 4)), neutral


def _scores(index: int, words: list[str], text: str, context: _Context) -> dict[int, float]:
    """The sentence's support score against every passage."""
    scores: dict[int, float] = {}
    cosines = context.cosines
    numbers = stated_numbers(text)
    for n, passage_words in context.passage_words.items():
        lexical, numbers_ok = lexical_support(words, passage_words, numbers)
        cosine = cosines[index].get(n) if cosines and index < len(cosines) else None
        scores[n] = combine_support(lexical, cosine, numbers_ok)
    return scores


def _drop_mismatched(text: str, sentence: CheckedSentence, context: _Context) -> None:
    """Remove, in place, the citations of passages that do not state every number and name of
    the sentence; a sentence left without any is unsupported."""
    numbers, names = stated_numbers(text), stated_names(text)
    if not numbers and not names:
        return
    parts = [
        (set(content_words(part)) - nums, nums, nams)
        for part in clauses_of(text)
        if (nums := stated_numbers(part)) | (nams := stated_names(part))
    ]
    kept = [n for n in sentence.citations if not _states_otherwise(n, parts, context)]
    if len(kept) == len(sentence.citations):
        return
    if kept:
        sentence.mismatched = [n for n in sentence.citations if n not in kept]
        sentence.citations = kept
        return
    if all(numbers <= context.passage_words[n] for n in sentence.citations):
        return  # only a name differs: the wording decides, as for any other word
    # No cited passage states its numbers: it keeps the citations it claimed, flagged.
    sentence.supported = False
    sentence.support = min(sentence.support, NUMBER_MISMATCH_CAP)
    if not sentence.unsupported_part:
        sentence.unsupported_part = _clause_stating(text, numbers | names, sentence, context)


def _states_otherwise(
    n: int, parts: list[tuple[set[str], set[str], set[str]]], context: _Context
) -> bool:
    """Whether passage `n` has the words of a clause stating values (words, numbers, names) but
    not its values: it tells that part otherwise. A passage cited for another clause of a
    sentence that joins two passages' facts does not."""
    words, names = context.passage_words[n], context.passage_names[n]
    for clause_words, numbers, clause_names in parts:
        covered = len(clause_words & words) >= MISMATCH_COVERAGE * len(clause_words)
        if covered and not (numbers <= words and clause_names <= names):
            return True
    return False


def _clause_stating(
    text: str, values: set[str], sentence: CheckedSentence, context: _Context
) -> str:
    """The first clause of `text` stating a number or name that no cited passage states."""
    seen = set().union(
        *(context.passage_words[n] | context.passage_names[n] for n in sentence.citations)
    )
    missing = values - seen
    for part in clauses_of(text):
        if (stated_numbers(part) | stated_names(part)) & missing:
            return part
    return text


def _add_co_citations(cited: list[int], scores: dict[int, float], context: _Context) -> None:
    """Cite, in place, other articles' passages that support the sentence nearly as well as the
    best one (the best cited one when it passes, else the best of all)."""
    by_n = context.by_n
    cited_articles = {by_n[n].article_id for n in cited}
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    cited_best = max((scores.get(n, 0.0) for n in cited), default=0.0)
    passes = cited_best >= context.min_support
    top = cited_best if passes else (ranked[0][1] if ranked else 0.0)
    bar = max(context.min_support, top - EXTRA_CITATION_MARGIN)
    for n, score in ranked:
        if score < bar or n in cited:
            continue
        if by_n[n].article_id not in cited_articles:
            cited.append(n)
            cited_articles.add(by_n[n].article_id)


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
    context: _Context,
    embedder: Embedder | None,
    min_support: float,
) -> None:
    """Judge each clause of the supported sentences in `items` like a sentence of its own.

    A clause no cited passage supports, but another passage does, adds that passage's citation
    (a sentence that joins two passages' facts). A clause no passage supports makes its sentence
    unsupported, names the clause in `unsupported_part`, and caps the sentence's support at the
    clause's. Clauses whose words alone decide are not embedded: only the doubtful ones are."""
    passage_words = context.passage_words
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
    cosines = _cosines(embedder, [rows[i][1] for i in doubtful], list(context.by_n.values()))
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
