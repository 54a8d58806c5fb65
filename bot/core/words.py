"""Word rules: the tokens BM25 indexes, and the content words the checker and the extractive
answerer compare (stopwords removed, light stemming, numbers normalised)."""

from __future__ import annotations

import re
from functools import lru_cache

_TOKEN_RE = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['’][^\W\d_]+)?")
_WORDS_ONLY_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")  # words, blanked to keep only numbers

_STOPWORDS_TEXT = """
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from
further had has have having he her here hers herself him himself his how i if in into is it
its itself just me more most my myself no nor not now of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them themselves
then there these they this those through to too under until up very was we were what when
where which while who whom why will with would you your yours yourself yourselves said says
say according told tell may might must shall however mr mrs ms dr s t don't doesn't didn't
isn't wasn't aren't weren't it's he's she's they're we're i'm that's there's
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
# Spelled-out numbers match digits in the lexical score; only digits are held to the number check.
_NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13",
    "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18",
    "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60",
    "seventy": "70", "eighty": "80", "ninety": "90",
}  # fmt: skip


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    if len(word) <= 3:
        return word
    for suffix, repl in (
        ("ies", "y"),
        ("ied", "y"),
        ("ing", ""),
        ("edly", ""),
        ("ed", ""),
        ("es", ""),
        ("s", ""),
        ("ly", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + repl
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]  # "stopped" -> "stopp" -> "stop"
    return word.rstrip("e") if len(word) > 4 else word


def content_words(text: str) -> list[str]:
    """Lowercased, stemmed content words of `text`; numbers as digit strings without separators."""
    words: list[str] = []
    for raw in _TOKEN_RE.findall(text.lower()):
        token = raw.replace("’", "'")
        if token[0].isdigit():
            token = token.replace(",", "")
            if "." in token:
                token = token.rstrip("0").rstrip(".") if token.count(".") == 1 else token
            words.append(token)
            continue
        if token.endswith("'s"):
            token = token[:-2]
        if token in STOPWORDS or len(token) < 2:
            continue
        words.append(_NUMBER_WORDS.get(token) or _stem(token))
    return words


def stated_numbers(text: str) -> set[str]:
    """The numbers written in digits in `text`, normalised as in `content_words`."""
    return {w for w in content_words(_WORDS_ONLY_RE.sub(" ", text)) if w[:1].isdigit()}


# --- BM25 -----------------------------------------------------------------------------------

_TOKEN = re.compile(r"\w\w+", re.UNICODE)
_BM25_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "about",
        "after",
        "again",
        "all",
        "also",
        "any",
        "because",
        "before",
        "being",
        "between",
        "both",
        "can",
        "could",
        "during",
        "each",
        "few",
        "further",
        "here",
        "just",
        "more",
        "most",
        "other",
        "over",
        "same",
        "should",
        "some",
        "such",
        "through",
        "under",
        "until",
        "up",
        "very",
    ]
)


def tokenize(text: str) -> list[str]:
    """Lowercased word tokens without stopwords, as BM25 sees them."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in _BM25_STOPWORDS]
