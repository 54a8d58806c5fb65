"""The no-LLM provider: answers and summaries made of sentences quoted from the passages.

Every output sentence is followed by `[n]` markers of every passage that states it (or a near-
duplicate of it: cosine > 0.9 or content-word Jaccard >= 0.7), so the citation checker and the
reader can verify it.

Relevance of a sentence to a question: 0.65 * cosine(question, sentence) + 0.35 * (share of the
question's content words found in the sentence). Selection uses MMR (lambda 0.7) over the sentence
embeddings so that two sentences saying the same thing are not both picked.

Without an embedder (`embedder=None`) hashed bag-of-words vectors of the content words stand in for
embeddings, so the module still works, only less well on paraphrases.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from bot.answer.answer_type import Needs, is_quote, read_question
from bot.answer.answerability import Quotable, answers, grounded, spans_reports
from bot.answer.citations import PASSAGES_KEPT, passage_sentences
from bot.answer.topic import about_topic
from bot.core.markers import with_markers
from bot.core.text import replace_surrogates
from bot.core.types import NO_ANSWER, Passage
from bot.core.words import content_words
from bot.sources.dateline import dateline_prefix_end, is_furniture_line, is_headline

MMR_LAMBDA = 0.7
DUPLICATE_COSINE = 0.9
DUPLICATE_JACCARD = 0.7
QUESTION_COSINE_WEIGHT = 0.65
MIN_WORDS = 3  # content words; shorter fragments ("Photo: Reuters.") are never quoted
MAX_SENTENCE_CHARS = 600  # longer "sentences" are usually tables or run-on lists
# A summary considers at most the first MAX_PER_ARTICLE sentences of each article (news puts the
# substance first) and MAX_CANDIDATES in all, so memory stays O(candidates x dimension).
MAX_PER_ARTICLE = 60
MAX_CANDIDATES = 4000
# Answer ranking: relevance plus these. Holding the asked type (a date for "when") outweighs a
# closer paraphrase without it; covering the question's rare words outweighs its topic words.
TYPE_BONUS = 0.25
SPECIFIC_BONUS = 0.3
EVIDENCE_BONUS = 0.05  # a sentence two passages state
QUOTE_BONUS = 0.15  # "what did X say" is best answered in X's own words
# A sentence that refers back ("He asked troops to...") is as relevant as this share of the
# sentence it continues.
CONTEXT_SHARE = 0.8
# A pick scoring under this share of the best answers less than it adds: left out.
KEEP_SHARE = 0.75
# A topic no sentence is about: the sentences within this cosine of the closest are summarised.
CLOSEST_MARGIN = 0.05
LEAD_BONUS = 0.3  # weight of 1 / (1 + index in article): news puts the substance first
_HASH_DIM = 1024
_WS_RE = re.compile(r"\s+")
_ENDS_SENTENCE_RE = re.compile(r"[.!?…][\"'”’)\]]*\Z")


@dataclass
class _Sentence:
    text: str
    words: frozenset[str]
    article_id: str
    published: str
    position: int  # character offset in the article
    article_rank: int  # order in which the article first appears among the passages
    index_in_article: int
    passages: list[int] = field(default_factory=list)
    before: str = ""  # the passage's sentence before this one, for what "he" or "it" refers to
    title: str = ""


def _candidates(
    passages: Sequence[Passage], *, per_article: int | None = None, limit: int | None = None
) -> list[_Sentence]:
    """Distinct quotable sentences of the passages; the same sentence in two passages cites both."""
    by_key: dict[str, _Sentence] = {}
    out: list[_Sentence] = []
    article_rank: dict[str, int] = {}
    per_article_count: dict[str, int] = {}
    for passage in passages:
        article = str(passage.article_id)
        rank = article_rank.setdefault(article, len(article_rank))
        body = replace_surrogates(passage.text)
        previous = ""
        for start, text in news_sentences(body, str(passage.title or "")):
            before, previous = previous, text
            if not text or len(text) > MAX_SENTENCE_CHARS or text[0].islower():
                continue  # a lower-case start is a fragment cut at a chunk boundary
            words = frozenset(content_words(text))
            if len(words) < MIN_WORDS:
                continue
            key = text.lower()
            existing = by_key.get(key)
            if existing is not None:
                if passage.n not in existing.passages:
                    existing.passages.append(int(passage.n))
                continue
            count = per_article_count.get(article, 0)
            if (per_article is not None and count >= per_article) or (
                limit is not None and len(out) >= limit
            ):
                continue
            per_article_count[article] = count + 1
            sentence = _Sentence(
                text=text,
                words=words,
                article_id=article,
                published=str(passage.published or ""),
                position=int(passage.start) + start,
                article_rank=rank,
                index_in_article=count,
                passages=[int(passage.n)],
                before=before,
                title=str(passage.title or ""),
            )
            by_key[key] = sentence
            out.append(sentence)
    return out


def news_sentences(body: str, title: str) -> list[tuple[int, str]]:
    """The passage's sentences without its furniture, each first sentence without its dateline.

    Furniture is the headline (a line equal to the title, unless it ends in a full stop: a `.txt`
    whose title is its lead sentence), bylines, captions and bare datelines; the quoted text stays
    an exact part of the passage.
    """
    return list(_news_sentences(body, title))


@lru_cache(maxsize=PASSAGES_KEPT)
def _news_sentences(body: str, title: str) -> tuple[tuple[int, str], ...]:
    out: list[tuple[int, str]] = []
    for start, text in passage_sentences(body):
        line_start = body.rfind("\n", 0, start) + 1
        line_end = body.find("\n", start)
        line = body[line_start : line_end if line_end >= 0 else len(body)]
        if is_furniture_line(line) or _is_title(line, title) or _is_title(text, title):
            continue
        if not body[line_start:start].strip():
            cut = dateline_prefix_end(text)
            start, text = start + cut, text[cut:]
        out.append((start, text))
    return tuple(out)


def _is_title(text: str, title: str) -> bool:
    return is_headline(text, title) and not text.rstrip().endswith(".")


def _hashed_vectors(word_sets: Sequence[frozenset[str] | set[str]]) -> np.ndarray:
    vectors = np.zeros((len(word_sets), _HASH_DIM), dtype=np.float32)
    for row, words in enumerate(word_sets):
        for word in words:
            vectors[row, zlib.crc32(word.encode("utf-8", "replace")) % _HASH_DIM] += 1.0
    return vectors


def _vectors(
    embedder: Any, texts: Sequence[str], word_sets: Sequence[frozenset[str]]
) -> np.ndarray:
    """Unit rows: the embedder's (one batch call) or hashed bag-of-words when there is none."""
    if embedder is None:
        vectors = _hashed_vectors(word_sets)
    else:
        vectors = np.asarray(embedder.embed(list(texts)), dtype=np.float32)
        vectors = np.nan_to_num(vectors.reshape(len(texts), -1))
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def _select(
    scores: np.ndarray,
    vectors: np.ndarray,
    sentences: Sequence[_Sentence],
    k: int,
    eligible: np.ndarray,
    unembedded: np.ndarray | None = None,
) -> list[int]:
    """MMR picks; a pick's near-duplicates are excluded and their passages cited by the pick.
    Rows of `unembedded` (zero vectors) are near-duplicates by their words alone."""
    available = eligible.copy()
    max_sim = np.zeros(len(sentences), dtype=np.float32)
    picked: list[int] = []
    while len(picked) < k and available.any():
        mmr = np.where(available, MMR_LAMBDA * scores - (1 - MMR_LAMBDA) * max_sim, -np.inf)
        best = int(np.argmax(mmr))
        picked.append(best)
        sims = vectors @ vectors[best]
        max_sim = np.maximum(max_sim, sims)
        available[best] = False
        chosen = sentences[best]
        near = sims > DUPLICATE_COSINE - 0.25
        if unembedded is not None:
            near |= unembedded
        for other in np.flatnonzero(near).tolist():
            if other == best:
                continue
            dup = sims[other] > DUPLICATE_COSINE or (
                _jaccard(chosen.words, sentences[other].words) >= DUPLICATE_JACCARD
            )
            if dup:
                available[other] = False
                for n in sentences[other].passages:
                    if n not in chosen.passages:
                        chosen.passages.append(n)
    return picked


def _cite(sentence: _Sentence) -> str:
    return with_markers(sentence.text, sorted(sentence.passages))


def quotable_sentences(needs: Needs, passages: Sequence[Passage], embedder: Any) -> list[Quotable]:
    """The sentences an answer may quote (furniture left out), for the answerability gate. Only
    a "how many" question, whose gate may need it, gets each sentence's cosine with the question
    (the embedder's memo keeps the vectors for the answer); a model is not kept waiting for
    embeddings the gate does not read."""
    sentences = _candidates(passages)
    if not sentences:
        return []
    if needs.counted is None:
        return _quotables(sentences, np.zeros(len(sentences), dtype=np.float32))
    question = replace_surrogates(needs.question)
    vectors = _vectors(
        embedder,
        [question] + [s.text for s in sentences],
        [frozenset(content_words(question))] + [s.words for s in sentences],
    )
    return _quotables(sentences, vectors[1:] @ vectors[0])


def _quotables(sentences: Sequence[_Sentence], cosine: np.ndarray) -> list[Quotable]:
    return [
        Quotable(s.article_id, s.text, s.before, float(c), s.title)
        for s, c in zip(sentences, cosine, strict=True)
    ]


def extractive_answer(
    question: str,
    passages: list[Passage],
    embedder: Any,
    *,
    max_sentences: int = 3,
    min_relevance: float = 0.35,
    articles: set[str] | None = None,
    needs: Needs | None = None,
) -> str:
    """The passage sentences that best answer `question` (read as `needs` when given), each with
    its `[n]` markers, best first.

    A sentence is eligible when it is near the question (relevance >= `min_relevance`) or holds
    what the question asks for (`answerability.answers`), and comes from one of `articles` (the
    articles the answerability gate found may answer; all when None). Eligible sentences are
    ranked by relevance plus a bonus for holding the asked type and one for covering the
    question's specific words (see `_answer_scores`); picks scoring under KEEP_SHARE of the best
    are left out, and for a question of a known type so are sentences after the first that do
    not answer it by themselves (`answers`, strict: a number about something else). Returns the
    no-answer phrase ("The articles don't say.") when none is eligible.
    """
    question = replace_surrogates(question)
    sentences = _candidates(passages)
    if not sentences or max_sentences < 1:
        return NO_ANSWER
    needs = needs or read_question(question)
    question_words = frozenset(content_words(question))
    unembedded = np.array(
        [articles is not None and s.article_id not in articles for s in sentences], dtype=bool
    )
    vectors = _scoped_vectors(embedder, (question, question_words), sentences, unembedded)
    cosine = vectors[1:] @ vectors[0]
    overlap = np.array(
        [
            len(question_words & s.words) / len(question_words) if question_words else 0.0
            for s in sentences
        ],
        dtype=np.float32,
    )
    relevance = QUESTION_COSINE_WEIGHT * cosine + (1 - QUESTION_COSINE_WEIGHT) * overlap
    quotes = _quotables(sentences, cosine)
    seen = {w for s in sentences for w in s.words}
    needs = grounded(needs, seen)
    holds = np.array([answers(needs, q, seen) for q in quotes], dtype=bool)
    eligible = _eligible(needs, sentences, relevance >= min_relevance, holds, articles)
    if not eligible.any():
        return NO_ANSWER
    scores = _answer_scores(needs, sentences, relevance, holds)
    picked = _select(scores, vectors[1:], sentences, max_sentences, eligible, unembedded)
    picked.sort(key=lambda i: -float(scores[i]))
    best = float(scores[picked[0]])
    picked = [i for i in picked if float(scores[i]) >= KEEP_SHARE * best]
    if needs.kind != "other" and not spans_reports(needs):
        picked = picked[:1] + [
            i for i in picked[1:] if answers(needs, quotes[i], seen, strict=True)
        ]
    return _join_quotes([sentences[i] for i in picked])


def _scoped_vectors(
    embedder: Any,
    question: tuple[str, frozenset[str]],
    sentences: Sequence[_Sentence],
    unembedded: np.ndarray,
) -> np.ndarray:
    """Unit rows for the question (text, content words), then one per sentence; the sentences
    of `unembedded` (of articles no answer may quote: embedding them is most of an answer's
    cost) get zero rows, near nothing."""
    wanted = np.flatnonzero(~unembedded)
    kept = [sentences[i] for i in wanted.tolist()]
    embedded = _vectors(
        embedder, [question[0]] + [s.text for s in kept], [question[1]] + [s.words for s in kept]
    )
    if len(wanted) == len(sentences):
        return embedded
    out = np.zeros((len(sentences) + 1, embedded.shape[1]), dtype=np.float32)
    out[0] = embedded[0]
    out[wanted + 1] = embedded[1:]
    return out


def _eligible(
    needs: Needs,
    sentences: Sequence[_Sentence],
    relevant: np.ndarray,
    holds: np.ndarray,
    articles: set[str] | None,
) -> np.ndarray:
    """The sentences an answer may quote: relevant or holding the answer, from `articles` (all
    when None); only those holding it for a question of a known type, when there are any."""
    eligible = relevant | holds
    if articles is not None:
        eligible &= np.array([s.article_id in articles for s in sentences], dtype=bool)
    if needs.kind != "other" and (eligible & holds).any():
        eligible &= holds  # a question of a known type is answered by sentences of that type
    if not eligible.any() and articles and spans_reports(needs):
        # The gate found the reports a comparison spans: quote the closest of theirs.
        eligible = np.array([s.article_id in articles for s in sentences], dtype=bool)
    return eligible


def _answer_scores(
    needs: Needs, sentences: Sequence[_Sentence], relevance: np.ndarray, holds: np.ndarray
) -> np.ndarray:
    """The ranking score of each sentence as an answer:

    - its relevance, or CONTEXT_SHARE of the relevance of the sentence before it when that is
      higher and the sentence does not name the question's anchors itself ("Zelensky went on to
      address Russian soldiers." then "He asked troops to 'save your lives and leave.'");
    - TYPE_BONUS when it holds what is asked (`holds`), QUOTE_BONUS more for a direct quote
      answering "what did X say";
    - SPECIFIC_BONUS x the share of the question's words it covers, each weighted by its rarity
      among the candidates (a word every sentence has is the topic, not the point); a word of
      the sentence before counts half;
    - EVIDENCE_BONUS when more than one passage states it.
    """
    asked = set(needs.terms) | {stem for a in needs.anchors for stem in a.stems}
    named = {stem for a in needs.anchors for stem in a.stems}
    n = len(sentences)
    weight = {t: math.log(1 + n / (1 + sum(t in s.words for s in sentences))) for t in asked}
    total = sum(weight.values())
    row = {s.text: i for i, s in enumerate(sentences)}
    out = relevance.astype(np.float32).copy()
    for i, sentence in enumerate(sentences):
        prior = row.get(sentence.before)
        if prior is not None and not named <= sentence.words:
            out[i] = max(out[i], CONTEXT_SHARE * float(relevance[prior]))
        if total:
            before = set(content_words(sentence.before)) if sentence.before else set()
            covered = sum(
                w if t in sentence.words else 0.5 * w if t in before else 0.0
                for t, w in weight.items()
            )
            out[i] += SPECIFIC_BONUS * covered / total
        if holds[i]:
            out[i] += TYPE_BONUS
            out[i] += QUOTE_BONUS * (needs.kind == "say" and is_quote(sentence.text))
        out[i] += EVIDENCE_BONUS * (len(sentence.passages) > 1)
    return out


def _join_quotes(quotes: Sequence[_Sentence]) -> str:
    """The cited quotes as one answer; a quote without an end mark ends its line, so the citation
    checker never reads it and the next quote as one sentence."""
    answer = ""
    for quote in quotes:
        if answer:
            answer += " " if _ENDS_SENTENCE_RE.search(answer) else "\n"
        answer += _cite(quote)
    return answer


def extractive_summary(
    passages: list[Passage],
    embedder: Any,
    *,
    max_sentences: int,
    query: str | None = None,
) -> str:
    """A multi-document extractive summary as markdown bullets: `- sentence [1][3]`, one per line.

    Central sentences (cosine to the centroid of the per-article centroids, so a long article does
    not outweigh a short one; a bonus for an article's first sentences), optionally biased
    toward `query` (half the score) and then only from the sentences about it (bot.answer.topic),
    redundancy removed with MMR; near-duplicates across articles
    cite all their passages. Bullets are ordered by article date (undated last), then by position
    in the article.
    Only the first MAX_PER_ARTICLE sentences per article and MAX_CANDIDATES overall are considered.
    Returns the no-answer phrase when the passages hold no quotable sentence.
    """
    sentences = _candidates(passages, per_article=MAX_PER_ARTICLE, limit=MAX_CANDIDATES)
    if not sentences:
        return NO_ANSWER
    query = replace_surrogates(query).strip() if query else ""
    texts = [s.text for s in sentences]
    word_sets = [s.words for s in sentences]
    if query:
        texts.append(query)
        word_sets.append(frozenset(content_words(query)))
    vectors = _vectors(embedder, texts, word_sets)
    sentence_vectors = vectors[: len(sentences)]

    articles = np.array([s.article_rank for s in sentences])
    centroids = [sentence_vectors[articles == a].mean(axis=0) for a in np.unique(articles)]
    centroid = np.mean(centroids, axis=0)
    norm = float(np.linalg.norm(centroid))
    centrality = sentence_vectors @ (centroid / norm) if norm > 0 else np.zeros(len(sentences))
    lead = np.array([1.0 / (1 + s.index_in_article) for s in sentences], dtype=np.float32)
    scores = centrality + LEAD_BONUS * lead
    eligible = np.ones(len(sentences), dtype=bool)
    if query:
        closeness = sentence_vectors @ vectors[-1]
        scores = 0.5 * scores + 0.5 * closeness
        eligible = _on_topic(query, word_sets[: len(sentences)], closeness)
    picked = _select(
        scores.astype(np.float32), sentence_vectors, sentences, max(1, max_sentences), eligible
    )
    picked.sort(
        key=lambda i: (
            sentences[i].published == "",
            sentences[i].published,
            sentences[i].article_rank,
            sentences[i].position,
        )
    )
    return "\n".join(f"- {_cite(sentences[i])}" for i in picked)


def _on_topic(topic: str, word_sets: Sequence[frozenset[str]], closeness: np.ndarray) -> np.ndarray:
    """The sentences about the topic (bot.answer.topic); when none is, the closest ones, so a
    topic worded unlike its articles still gets the sentences nearest to it."""
    eligible = about_topic(topic, word_sets, closeness)
    if eligible.any():
        return eligible
    return closeness >= float(closeness.max()) - CLOSEST_MARGIN
