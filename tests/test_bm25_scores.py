"""bot.index.bm25_scores: the numpy reader of bm25s's saved index ranks exactly as bm25s does."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import bm25s
import bm25s.stopwords
import numpy as np
import pytest

from bot.core.words import _library_stopwords, tokenize
from bot.index.bm25_scores import Bm25Scores

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def _corpus() -> list[list[str]]:
    """The seed articles' paragraphs plus random mixes of their words: many ties and repeats."""
    paragraphs = [p for f in sorted(SEEDS.rglob("*.*")) for p in f.read_text("utf-8").split("\n\n")]
    docs = [tokenize(p) for p in paragraphs if tokenize(p)]
    words = sorted({w for d in docs for w in d})
    rng = random.Random(7)
    docs += [rng.choices(words[:40], k=rng.randint(1, 12)) for _ in range(300)]
    return docs


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[bm25s.BM25, Bm25Scores, list[str]]:
    folder = tmp_path_factory.mktemp("bm25")
    docs = _corpus()
    retriever = bm25s.BM25()
    retriever.index(docs, show_progress=False)
    retriever.save(str(folder))
    loaded = bm25s.BM25.load(str(folder), show_progress=False)
    words = sorted(w for w in retriever.vocab_dict if w)  # not its empty placeholder term
    return loaded, Bm25Scores.load(folder), words


def test_the_reader_ranks_as_bm25s_does(saved) -> None:  # type: ignore[no-untyped-def]
    retriever, scores, words = saved
    rng = random.Random(3)
    n = scores.num_docs
    for trial in range(200):
        query = rng.choices(words, k=rng.randint(1, 6))  # repeats included
        k = rng.choice([1, 4, 10, 40, n])
        mask = None
        if trial % 3 == 0:
            mask = (np.arange(n) % rng.randint(2, 5) == 0).astype(np.float32)
        docs, expected = retriever.retrieve(
            [query], k=k, show_progress=False, weight_mask=mask, n_threads=0
        )
        got = scores.top(query, k, mask)
        assert [row for row, _ in got] == [int(d) for d in docs[0]]
        assert [score for _, score in got] == [float(s) for s in expected[0]]


def test_a_term_the_index_lacks_adds_nothing(saved) -> None:  # type: ignore[no-untyped-def]
    _, scores, words = saved
    assert np.array_equal(scores.scores([words[0], "zzzqqq"]), scores.scores([words[0]]))


def test_a_variant_with_non_occurrence_scores_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    retriever = bm25s.BM25(method="bm25+")
    retriever.index([["a", "b"], ["b", "c"]], show_progress=False)
    retriever.save(str(tmp_path))
    with pytest.raises(ValueError, match="bm25\\+"):
        Bm25Scores.load(tmp_path)


def test_stopwords_are_bm25s_list_read_without_importing_bm25s() -> None:
    assert _library_stopwords() == tuple(bm25s.stopwords.STOPWORDS_EN_PLUS)
    code = (
        "import sys; from bot.core.words import stopwords; stopwords(); "
        "print('bm25s' in sys.modules, '_bm25s_stopwords' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
