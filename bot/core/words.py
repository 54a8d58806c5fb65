"""Word rules: the tokens BM25 indexes, and the content words the checker and the extractive
answerer compare. Both drop the same stopwords (bm25s's English list plus the words every news
sentence carries) and stem with the Snowball English stemmer (PyStemmer); content words also
normalise numbers."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import Stemmer

# A word (letters, with inner apostrophes: "o'neill's") or a number ("1,200.5").
WORD_RE = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['’][^\W\d_]+)*")
_LETTERS_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")  # words, blanked to keep only numbers

# Reporting verbs, modals, titles and contractions that nearly every news sentence carries: they
# say nothing about what a sentence states, so a passage need not repeat them to support it.
_NEWS_STOPWORDS = frozenset(
    {"said", "says", "say", "told", "tell", "according", "also", "however"}
    | {"would", "could", "may", "might", "must", "shall", "mr", "mrs", "ms", "dr"}
    | {"he's", "i'm", "that's", "there's", "they're", "we're"}
)
# Words of news ("Don Lemon", "won the vote"), not the fragments of "don't" and "won't" the
# library's list means them as.
_NOT_STOPWORDS = frozenset({"don", "won"})
STEMMER_LANGUAGE = "english"
_LIBRARY_LIST = "STOPWORDS_EN_PLUS"  # the name of bm25s's English list
# Raise when `tokenize` changes how it turns text into terms, so BM25 indexes built before are
# rebuilt (the library versions and the stopword list are part of `tokens_version` already).
_TOKENS_REVISION = 2

# Spelled-out numbers match digits in the lexical score; only digits are held to the number check.
_NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13",
    "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18",
    "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60",
    "seventy": "70", "eighty": "80", "ninety": "90",
}  # fmt: skip


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """The words neither BM25 nor the checker counts: bm25s's English list (NLTK's) plus
    `_NEWS_STOPWORDS`, less `_NOT_STOPWORDS`."""
    return (frozenset(_library_stopwords()) - _NOT_STOPWORDS) | _NEWS_STOPWORDS


def _library_stopwords() -> tuple[str, ...]:
    """bm25s's English list, from its `stopwords` module run on its own: that module holds only
    word lists, while importing it through the package runs bm25s's `__init__` (numpy, scipy,
    progress bars, asyncio, multiprocessing), which a question never needs. Through the package
    when the module is not a plain file."""
    spec = importlib.util.find_spec("bm25s")  # finds the package without importing it
    folder = next(iter(spec.submodule_search_locations or []), None) if spec else None
    path = Path(folder or "", "stopwords.py")
    words: Any = None
    if folder and path.is_file():
        module_spec = importlib.util.spec_from_file_location("_bm25s_stopwords", path)
        if module_spec is not None and module_spec.loader is not None:
            module = importlib.util.module_from_spec(module_spec)  # not added to sys.modules
            module_spec.loader.exec_module(module)
            words = getattr(module, _LIBRARY_LIST, None)
    if not isinstance(words, tuple | list):
        from bm25s import stopwords as library

        words = getattr(library, _LIBRARY_LIST)
    return tuple(str(w) for w in words)


_LOCAL = threading.local()


def _stemmer() -> Stemmer.Stemmer:
    """This thread's stemmer: a PyStemmer object keeps state, so threads must not share one."""
    try:
        return _LOCAL.stemmer
    except AttributeError:
        _LOCAL.stemmer = Stemmer.Stemmer(STEMMER_LANGUAGE)
        return _LOCAL.stemmer


@lru_cache(maxsize=65536)  # news repeats its words: each is stemmed once, not at every use
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


# Texts whose content words are kept: one answer reads each passage and sentence several times
# (the gate, the pick, the check, the disagreements), and a server's next answers reread them.
CONTENT_WORDS_KEPT = 8192
# Longer texts (whole articles) are read once: keeping them would hold megabytes for nothing.
CONTENT_WORDS_KEPT_CHARS = 4000


def content_words(text: str) -> list[str]:
    """Lowercased, stemmed content words of `text`; numbers as digit strings without separators."""
    if len(text) > CONTENT_WORDS_KEPT_CHARS:
        return list(_words_of(text))
    return list(_kept_words_of(text))


@lru_cache(maxsize=CONTENT_WORDS_KEPT)
def _kept_words_of(text: str) -> tuple[str, ...]:
    return _words_of(text)


def _words_of(text: str) -> tuple[str, ...]:
    stops = stopwords()
    words: list[str] = []
    for raw in WORD_RE.findall(text.lower()):
        token = raw.replace("’", "'")
        if token[0].isdigit():
            token = token.replace(",", "")
            if "." in token:
                token = token.rstrip("0").rstrip(".") if token.count(".") == 1 else token
            words.append(token)
            continue
        if token.endswith("'s"):
            token = token[:-2]
        if token in stops or len(token) < 2:
            continue
        words.append(_NUMBER_WORDS.get(token) or _stem(token))
    return tuple(words)


def stated_numbers(text: str) -> set[str]:
    """The numbers written in digits in `text`, normalised as in `content_words`."""
    return {w for w in content_words(_LETTERS_RE.sub(" ", text)) if w[:1].isdigit()}


# --- BM25 -----------------------------------------------------------------------------------

_TOKEN = re.compile(r"\w\w+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lowercased, stemmed word tokens without stopwords, as BM25 sees them."""
    stops = stopwords()
    return [_stem(t) for t in _TOKEN.findall(text.lower()) if t not in stops]


@lru_cache(maxsize=1)
def tokens_version() -> str:
    """A short name of the rules `tokenize` follows: a BM25 index built under other rules has
    terms the questions' tokens no longer match, so it must be rebuilt, not reused."""
    stemmer = importlib.metadata.version("PyStemmer")  # Snowball releases change some stems
    rules = [str(_TOKENS_REVISION), _TOKEN.pattern, STEMMER_LANGUAGE, stemmer]
    rules += sorted(stopwords())
    return hashlib.sha256("\n".join(rules).encode("utf-8")).hexdigest()[:10]


# Words news uses for one counted quantity ("the toll rose to 16" and "12 people were killed"
# give one figure). Kept small and unambiguous: a class joins words only where news never means
# two quantities by them (the killed and the injured stay apart).
QUANTITY_CLASSES: dict[str, tuple[str, ...]] = {
    "deaths": ("death", "deaths", "dead", "die", "died", "killed", "toll", "fatalities"),
    "injuries": ("injured", "injuries", "injury", "wounded", "hurt"),
    "evacuations": ("evacuated", "evacuees", "evacuation"),
    "arrests": ("arrested", "arrests", "detained"),
}
QUANTITY_MARK = "~"  # prefix of a class key: no stem starts with it, so keys never meet stems


@lru_cache(maxsize=1)
def _quantity_stems() -> dict[str, str]:
    return {
        _stem(word): QUANTITY_MARK + name
        for name, words in QUANTITY_CLASSES.items()
        for word in words
    }


def quantity_class(stem: str) -> str | None:
    """The key of the quantity class (QUANTITY_CLASSES) a content word's stem belongs to."""
    return _quantity_stems().get(stem)
