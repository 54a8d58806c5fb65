"""Hybrid retrieval on a real index: dense + BM25 fused, MMR diversity, filters, outlet names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.app.ingest import ingest_paths
from bot.core.dates import parse_date_bound
from bot.core.errors import BotError
from bot.core.settings import get_settings
from bot.index.filters import Filters
from bot.index.keyword import load_lexical_index
from bot.index.search import mmr_select, resolve_source, retrieve_passages, rrf_fuse
from bot.index.store import open_store

ARTICLES = {
    # Three reports of one event from three outlets on three days.
    "harbour-coast.md": ("Coast Daily", "2024-03-04", "Harbour reopens after storm",
        "The harbour of Port Ellis reopened on Monday after three weeks of storm repairs. "
        "Ferries resumed at 6 a.m. and the mayor thanked the dock workers."),
    "harbour-bbc.md": ("BBC News", "2024-03-05", "Port Ellis harbour back in use",
        "Port Ellis harbour is back in use following storm damage repairs, officials said. "
        "The first ferry left at dawn with forty passengers on board."),
    "harbour-times.md": ("The Times", "2024-03-06", "Ferries return to Port Ellis",
        "Ferries returned to Port Ellis this week once the storm-damaged harbour was repaired. "
        "Repairs cost 2.5 million pounds, the council said."),
    # A long article on one topic: many chunks that could fill every slot.
    "budget-long.md": ("Coast Daily", "2024-02-01", "Council budget in detail", " ".join(
        f"Section {i}: the council budget sets aside money for harbour maintenance, roads and "
        f"schools, and the finance committee debated the harbour fund again in meeting {i}."
        for i in range(40))),
    # Only a rare code word links this one to its question (a lexical match).
    "codeword.md": ("Wire Service", "2023-12-12", "Project Kestrel-7 approved",
        "The ministry approved Project Kestrel-7, a plan for coastal radar stations. "
        "Construction will begin next year."),
}  # fmt: skip


def _write_corpus(folder: Path) -> Path:
    folder.mkdir()
    for name, (source, published, title, body) in ARTICLES.items():
        front = f"---\ntitle: {title}\nsource: {source}\npublished: {published}\n---\n"
        (folder / name).write_text(front + body + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = get_settings()
    report = ingest_paths([_write_corpus(tmp_path / "news")], settings)
    assert report.failed == 0 and report.added == len(ARTICLES)
    return open_store(settings)


def test_rrf_rewards_agreement_between_rankings() -> None:
    fused = rrf_fuse([["a", "b", "c"], ["b", "d"]])
    assert max(fused, key=fused.get) == "b"  # second and first beats first and absent
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)


def test_mmr_keeps_one_article_from_filling_every_slot() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=16)
    same = [base + rng.normal(scale=0.05, size=16) for _ in range(5)]  # near-identical chunks
    other = [rng.normal(size=16) for _ in range(3)]
    vectors = np.array(same + other)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    relevance = np.array([1.0, 0.97, 0.95, 0.93, 0.91, 0.95, 0.9, 0.88])  # fused scores are close
    groups = ["long"] * 5 + ["x", "y", "z"]
    picked = mmr_select(relevance, vectors, groups, k=4, lambda_=0.7)
    assert picked[0] == 0
    assert sum(groups[i] == "long" for i in picked) < 4
    # lambda 1.0 is plain relevance order (ties keep the earlier candidate)
    assert mmr_select(relevance, vectors, groups, k=4, lambda_=1.0) == [0, 1, 2, 5]


def _mmr_by_definition(relevance, vectors, groups, k, lambda_):  # type: ignore[no-untyped-def]
    """MMR as defined: each step takes the unchosen item with the best lambda * relevance (scaled
    to 0..1) - (1 - lambda) * (largest similarity to a chosen item, same article + bonus, at
    most 1); the earlier item on a tie."""
    from bot.index.search import SAME_ARTICLE_BONUS

    span = relevance.max() - relevance.min()
    rel = (relevance - relevance.min()) / span if span > 0 else np.ones(len(relevance))
    chosen: list[int] = []
    while len(chosen) < min(k, len(rel)):
        best, best_score = -1, -np.inf
        for i in range(len(rel)):
            if i in chosen:
                continue
            sims = [
                min(1.0, float(vectors[i] @ vectors[c]) + SAME_ARTICLE_BONUS * same)
                for c, same in ((c, groups[i] == groups[c]) for c in chosen)
            ]
            score = lambda_ * rel[i] - (1 - lambda_) * max(sims, default=0.0)
            if score > best_score:
                best, best_score = i, score
        chosen.append(best)
    return chosen


@pytest.mark.parametrize("seed", range(6))
def test_mmr_chooses_as_defined(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    vectors = rng.normal(size=(n, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    relevance = rng.choice([0.0, 0.01, 0.02, 0.03], size=n)  # ties on purpose
    groups = [f"a{int(g)}" for g in rng.integers(0, max(1, n // 3), size=n)]
    for lambda_ in (0.0, 0.5, 0.7, 1.0):
        for k in (1, 6, n + 2):
            assert mmr_select(relevance, vectors, groups, k, lambda_) == _mmr_by_definition(
                relevance, vectors, groups, k, lambda_
            )


def test_hybrid_finds_both_a_paraphrase_and_a_rare_code_word(store) -> None:  # type: ignore[no-untyped-def]
    found = retrieve_passages("When did ferries start running again at Port Ellis?", store, k=4)
    titles = [p.title for p in found.passages]
    assert sum("Port Ellis" in t or "Harbour" in t for t in titles) >= 2
    assert [p.n for p in found.passages] == list(range(1, len(found.passages) + 1))
    assert found.best_dense > 0.4
    coded = retrieve_passages("kestrel-7", store, k=3)
    assert coded.passages[0].title == "Project Kestrel-7 approved"
    bm25_only = retrieve_passages("kestrel-7", store, k=3, mode="bm25")
    assert bm25_only.passages[0].title == "Project Kestrel-7 approved"


def test_the_long_article_does_not_take_every_slot(store) -> None:  # type: ignore[no-untyped-def]
    found = retrieve_passages("harbour repairs and the harbour fund", store, k=5)
    articles = [p.article_id for p in found.passages]
    assert len(found.passages) == 5
    assert len(set(articles)) >= 3
    dense = retrieve_passages("harbour repairs and the harbour fund", store, k=5, mode="dense")
    assert len(dense.passages) == 5


def test_k_and_passage_fields_point_into_the_article(store) -> None:  # type: ignore[no-untyped-def]
    found = retrieve_passages("Port Ellis ferries", store, k=2)
    assert len(found.passages) == 2
    for passage in found.passages:
        source, published, _title, body = ARTICLES[Path(passage.path).name]
        assert passage.source == source and passage.published.startswith(published)
        assert body[passage.start : passage.end] == passage.text


def test_source_and_date_filters_apply_to_dense_and_bm25(store) -> None:  # type: ignore[no-untyped-def]
    question = "Port Ellis harbour ferries after the storm"
    for mode in ("hybrid", "dense", "bm25"):
        only_bbc = retrieve_passages(
            question, store, k=4, filters=Filters(source="BBC News"), mode=mode
        )
        assert {p.source for p in only_bbc.passages} == {"BBC News"}
        window = Filters(
            since_ts=parse_date_bound("2024-03-05", end=False),
            until_ts=parse_date_bound("2024-03-05", end=True),
        )
        day = retrieve_passages(question, store, k=4, filters=window, mode=mode)
        assert {p.published[:10] for p in day.passages} == {"2024-03-05"}
    none = retrieve_passages(question, store, k=4, filters=Filters(until_ts=0))
    assert none.passages == []


def test_term_chunks_lists_the_first_chunks_up_to_a_limit(store) -> None:  # type: ignore[no-untyped-def]
    lexical = load_lexical_index(store)
    words = ["harbour", "Kestrel", "Zanzibar"]
    full = lexical.term_chunks(words, Filters())
    assert len(full["harbour"]) > 4 and len(full["Kestrel"]) == 1 and full["Zanzibar"] == []
    assert full["harbour"] == sorted(full["harbour"], key=lexical.ids.index)  # index order
    capped = lexical.term_chunks(words, Filters(), limit=4)
    assert capped == {"harbour": full["harbour"][:4], "Kestrel": full["Kestrel"], "Zanzibar": []}
    bbc = lexical.term_chunks(["harbour"], Filters(source="BBC News"), limit=4)["harbour"]
    assert bbc and all(lexical.sources[lexical.ids.index(c)] == "BBC News" for c in bbc)


def test_outlet_names_resolve_forgivingly_or_fail_clearly(store) -> None:  # type: ignore[no-untyped-def]
    assert resolve_source(store, "BBC News") == "BBC News"
    assert resolve_source(store, "bbc news") == "BBC News"
    assert resolve_source(store, "times") == "The Times"
    assert resolve_source(store, None) is None
    with pytest.raises(BotError, match="several outlets"):
        resolve_source(store, "e")  # in "Coast Daily", "The Times", "Wire Service", ...
    with pytest.raises(BotError, match="No indexed article is from 'Reuters'") as err:
        resolve_source(store, "Reuters")
    assert "BBC News" in (err.value.hint or "")


def test_bad_dates_are_clear_errors() -> None:
    with pytest.raises(BotError, match="Cannot read the date"):
        parse_date_bound("last tuesday", end=False)
    assert (
        parse_date_bound("2024-03-05", end=True)
        - parse_date_bound(  # type: ignore[operator]
            "2024-03-05", end=False
        )
        == 86399
    )


def test_keyword_index_is_reused_in_memory_and_follows_new_generations(
    store,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    first = load_lexical_index(store)
    assert load_lexical_index(store) is first  # no reload per question
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "new.md").write_text(
        "---\ntitle: Lighthouse repainted\nsource: Coast Daily\n---\nThe Port Ellis lighthouse "
        "was repainted in red and white stripes.\n",
        encoding="utf-8",
    )
    ingest_paths([extra], get_settings())
    fresh = open_store(get_settings())
    second = load_lexical_index(fresh)
    assert second is not first and len(second.ids) == len(first.ids) + 1
    found = retrieve_passages("lighthouse stripes", fresh, k=1, mode="bm25")
    assert found.passages[0].title == "Lighthouse repainted"


def test_a_stale_keyword_index_naming_deleted_chunks_is_harmless(store) -> None:  # type: ignore[no-untyped-def]
    lexical = load_lexical_index(store)
    victim = next(
        cid
        for cid in lexical.ids
        if cid.startswith(
            next(p.article_id for p in retrieve_passages("kestrel-7", store, k=1).passages)
        )
    )
    store.delete_chunk_ids([victim])  # behind the cached BM25 index's back
    assert lexical.vectors_of([victim])  # the cache still holds its vector
    for mode in ("hybrid", "dense", "bm25"):
        found = retrieve_passages("kestrel-7 radar", store, k=3, mode=mode)
        assert victim not in {p.chunk_id for p in found.passages}
        assert all(p.text for p in found.passages)
        if mode != "bm25":  # (here BM25 finds no chunk but the victim)
            assert len(found.passages) == 3  # the gone chunk's place is taken by another


def test_cached_vectors_are_the_stored_ones_and_an_old_cache_is_rebuilt(store) -> None:  # type: ignore[no-untyped-def]
    from bot.index import keyword

    lexical = load_lexical_index(store)
    some = lexical.ids[:5]
    stored = store.chunk_vectors(some)
    assert set(stored) == set(some)
    cached = lexical.vectors_of(some + ["no-such-chunk"])
    assert set(cached) == set(some)
    for cid in some:
        np.testing.assert_array_equal(cached[cid], stored[cid])
    # A cache written before the vectors were kept (no vectors.npy) is rebuilt, not trusted.
    folder = keyword.index_folder(keyword.cache_dir(store), store.generation or "none")
    (folder / keyword.VECTORS_FILE).unlink()
    keyword.forget_loaded()
    again = load_lexical_index(store)
    assert (folder / keyword.VECTORS_FILE).is_file()
    assert again.vectors is not None and again.vectors.shape == (len(again.ids), 384)


def test_an_index_built_under_other_token_rules_is_rebuilt(  # type: ignore[no-untyped-def]
    store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.index import keyword

    load_lexical_index(store)
    base = keyword.cache_dir(store)
    before = keyword.index_folder(base, store.generation or "none")
    assert [p.name for p in base.iterdir()] == [before.name]
    keyword.forget_loaded()
    monkeypatch.setattr(keyword, "tokens_version", lambda: "other-rules")
    rebuilt = load_lexical_index(store)
    after = keyword.index_folder(base, store.generation or "none")
    assert after != before and [p.name for p in base.iterdir()] == [after.name]
    assert rebuilt.ids and (after / "chunks.json").is_file()


def test_the_outlets_of_an_index_are_read_once_distinct_in_first_seen_order(store) -> None:  # type: ignore[no-untyped-def]
    lexical = load_lexical_index(store)
    outlets = lexical.outlets()
    assert outlets == list(dict.fromkeys(str(s) for s in lexical.sources))
    assert len(outlets) < len(lexical.sources)  # one per outlet, not one per chunk
    assert lexical.outlets() is outlets  # every question reuses them
