"""The word rules: one stopword list and one stemmer for BM25 and the checker."""

from __future__ import annotations

import threading

from bot.core.words import content_words, stated_numbers, stopwords, tokenize, tokens_version


def test_inflections_share_a_stem_for_bm25_and_for_the_checker() -> None:
    for forms in (
        ("announce", "announced", "announcing", "announces"),
        ("election", "elections"),
        ("tariff", "tariffs"),
    ):
        assert len({tuple(tokenize(f)) for f in forms}) == 1, forms
        assert len({tuple(content_words(f)) for f in forms}) == 1, forms


def test_bm25_and_the_checker_drop_the_same_words() -> None:
    text = "The minister said on Monday that he would announce new tariffs, according to aides"
    assert tokenize(text) == content_words(text)
    for word in ("the", "said", "according", "would", "that", "he"):
        assert word in stopwords()


def test_news_words_the_library_list_would_drop_are_kept() -> None:
    assert content_words("Don won the vote") == tokenize("Don won the vote")
    assert len(content_words("Don won the vote")) == 3


def test_numbers_are_normalised_and_spelled_out_ones_match_digits() -> None:
    assert content_words("1,200.50 people in three towns") == ["1200.5", "peopl", "3", "town"]
    assert stated_numbers("Three towns, 1,200 people and 3.50 dollars in 2023") == {
        "1200",
        "3.5",
        "2023",
    }


def test_possessives_and_inner_apostrophes() -> None:
    assert content_words("O’Neill’s plan") == content_words("O'Neill plan")


def test_tokens_version_is_a_short_stable_name() -> None:
    version = tokens_version()
    assert version == tokens_version() and len(version) == 10
    int(version, 16)


def test_threads_get_the_same_words() -> None:
    text = "Ukrainian forces announced they had retaken several villages near Bakhmut " * 20
    expected = content_words(text), tokenize(text)
    results: list[tuple[list[str], list[str]]] = []

    def work() -> None:
        for _ in range(50):
            results.append((content_words(text), tokenize(text)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 200 and all(r == expected for r in results)


def test_content_words_kept_for_reuse_are_never_shared_with_a_caller() -> None:
    from bot.core.words import CONTENT_WORDS_KEPT_CHARS

    sentence = "The Harbour Bridge reopened on Monday after 14 months of repairs."
    first = content_words(sentence)
    first.append("tampered")
    assert content_words(sentence) == first[:-1]
    long_text = "Flood waters rose again. " * (CONTENT_WORDS_KEPT_CHARS // 20)
    assert content_words(long_text) == ["flood", "water", "rose"] * (CONTENT_WORDS_KEPT_CHARS // 20)
