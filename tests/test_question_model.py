"""bot.index.question_model and LocalMiniLM.embed_questions: the fast int8 copy for questions."""

from __future__ import annotations

import numpy as np
import pytest

from bot.core.errors import BotWarning
from bot.index.embeddings import LocalMiniLM, get_embedder, local_model_files
from bot.index.question_model import SUFFIX, cache_name, fast_copy

QUESTIONS = [
    "what did Zelensky announce?",
    "Which outlet reported that foreign volunteers could join Ukraine's International Defence "
    "Legion without a visa, and when was the requirement lifted?",
    "How many prisoners with combat experience will be released to fight?",
]


def test_fast_copy_is_built_once_and_reused(model_cache) -> None:
    source, _ = local_model_files()
    path, why = fast_copy(source, model_cache)
    assert why == "" and path is not None and path.is_file()
    assert path.parent == model_cache / "models" and path.name == cache_name(source)
    assert SUFFIX in path.name
    stamp = path.stat().st_mtime_ns
    again, _ = fast_copy(source, model_cache)
    assert again == path and path.stat().st_mtime_ns == stamp  # not rebuilt
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".build-")]  # no leftovers


def test_question_vectors_are_close_to_the_index_model_but_not_the_same(model_cache) -> None:
    fast = LocalMiniLM(question_cache=model_cache)
    plain = LocalMiniLM()
    assert fast.question_name == f"{fast.name}+{SUFFIX}" and plain.question_name == plain.name
    got = fast.embed_questions(QUESTIONS)
    index = plain.embed(QUESTIONS)
    assert got.shape == (3, 384) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(got * index, axis=1)
    assert cosines.min() > 0.98, cosines  # 0.991 at worst on MultiHop-RAG's questions
    assert not np.array_equal(got, index)  # really the other model
    # Questions and texts are remembered apart: the same string embeds by each model.
    np.testing.assert_array_equal(fast.embed(QUESTIONS), index)
    np.testing.assert_array_equal(fast.embed_questions(QUESTIONS[:1])[0], got[0])
    # Without a cache folder, questions use the index model itself.
    np.testing.assert_array_equal(plain.embed_questions(QUESTIONS), index)


def test_a_question_loads_the_question_model_alone(model_cache) -> None:
    """A cold ask embeds its question while another thread loads the index model: the question
    waits for the question model and the tokenizer only."""
    fast = LocalMiniLM(question_cache=model_cache)
    vector = fast.embed_questions(QUESTIONS[:1])
    assert fast._session is None  # the index model is not loaded yet
    index = fast.embed(QUESTIONS[:1])  # loads it now
    assert fast._session is not None
    np.testing.assert_array_equal(fast.embed_questions(QUESTIONS[:1]), vector)
    np.testing.assert_array_equal(index, LocalMiniLM().embed(QUESTIONS[:1]))


def test_unwritable_cache_falls_back_to_the_index_model(tmp_path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")  # a file where the cache folder would be
    model = LocalMiniLM(question_cache=blocker / "cache")
    with pytest.warns(BotWarning, match="set BOT_CACHE_DIR to a writable folder"):
        vectors = model.embed_questions(QUESTIONS[:1])
    np.testing.assert_array_equal(vectors, LocalMiniLM().embed(QUESTIONS[:1]))
    assert model.question_model_note.startswith("cannot write")


def test_damaged_cached_copy_is_dropped_and_questions_still_embed(tmp_path) -> None:
    source, _ = local_model_files()
    target = tmp_path / "models" / cache_name(source)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not an onnx model")
    model = LocalMiniLM(question_cache=tmp_path)
    with pytest.warns(BotWarning, match="unreadable"):
        vectors = model.embed_questions(QUESTIONS[:1])
    np.testing.assert_array_equal(vectors, LocalMiniLM().embed(QUESTIONS[:1]))
    assert "unreadable" in model.question_model_note
    assert not target.exists()  # the next process builds it again


@pytest.mark.parametrize(
    ("flag", "int8_dot", "suffixed"),
    [
        ("true", False, True),
        ("TRUE", False, True),
        ("false", True, False),
        ("auto", True, True),
        ("auto", False, False),
        ("", True, True),  # empty in .env: the default, auto
    ],
)
def test_setting_chooses_the_question_model(monkeypatch, flag, int8_dot, suffixed) -> None:
    from bot.core.settings import get_settings

    monkeypatch.setenv("BOT_FAST_QUESTIONS", flag)
    if not flag:
        monkeypatch.delenv("BOT_FAST_QUESTIONS")
    monkeypatch.setattr("bot.index.question_model.cpu_has_int8_dot", lambda: int8_dot)
    get_settings.cache_clear()
    embedder = get_embedder(get_settings())
    assert embedder.question_name.endswith(f"+{SUFFIX}") is suffixed


def test_bad_setting_is_one_line_naming_the_choices(monkeypatch) -> None:
    from bot.core.errors import BotError
    from bot.core.settings import get_settings

    monkeypatch.setenv("BOT_FAST_QUESTIONS", "sometimes")
    get_settings.cache_clear()
    with pytest.raises(BotError, match="BOT_FAST_QUESTIONS") as info:
        get_settings()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu sse2 avx2 fma", False),  # AVX2 only: the int8 copy was no faster there
        ("fpu avx2 avx512f avx512_vnni", True),
        ("fpu avx2 avx_vnni", True),
    ],
)
def test_cpu_detection_reads_the_flags(tmp_path, flags, expected) -> None:
    from bot.index.question_model import cpu_has_int8_dot

    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\n", encoding="utf-8")
    assert cpu_has_int8_dot(info) is expected
    arm = tmp_path / "arm"
    arm.write_text("Features\t: fp asimd asimddp\n", encoding="utf-8")
    assert cpu_has_int8_dot(arm) is True
    assert cpu_has_int8_dot(tmp_path / "missing") is False


def test_retrieval_with_fast_questions_finds_the_same_passages(monkeypatch, seeds_dir) -> None:
    """On the seeds, the fast copy and the index model retrieve the same passages in the same
    order for the seed question (bench/ask.py measures it on MultiHop-RAG)."""
    from bot.app.ingest import ingest_paths
    from bot.core.settings import get_settings
    from bot.index.search import retrieve_passages
    from bot.index.store import open_store

    settings = get_settings()
    ingest_paths([seeds_dir], settings)
    ranked = {}
    for flag in ("false", "true"):  # "true" whatever this CPU has
        monkeypatch.setenv("BOT_FAST_QUESTIONS", flag)
        get_settings.cache_clear()
        store = open_store(get_settings())
        found = retrieve_passages(QUESTIONS[0], store, k=4)
        ranked[flag] = [p.chunk_id for p in found.passages]
        assert found.best_dense > 0.3
    assert ranked["true"] == ranked["false"]


def _first_ask(tmp_path, cache, *args: str):  # type: ignore[no-untyped-def]
    """`bot ask` in a child with a fresh data dir (it indexes the seeds first) and `cache`."""
    import subprocess
    import sys

    from tests.llm_server import clean_env

    out = subprocess.run(
        [sys.executable, "-m", "bot", "ask", QUESTIONS[0], *args],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path / "data", BOT_CACHE_DIR=str(cache)),
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return out


def test_cli_warns_once_and_answers_when_the_cache_is_unwritable(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    out = _first_ask(tmp_path, blocker / "cache", "--json")
    warned = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "BOT_CACHE_DIR" in warned[0], out.stderr
    assert "Traceback" not in out.stderr
    import json

    answer = json.loads(out.stdout)
    assert not answer["refused"] and answer["sentences"]


def test_nan_guards_are_dropped_without_changing_a_vector(model_cache) -> None:
    """The fast copy has no Where(IsNaN) after its softmaxes, and padding in a batch still gives
    finite vectors close to the text's alone (not identical: dynamic quantisation takes its
    scale from the whole batch, which is why questions are embedded one at a time)."""
    import onnx

    from bot.index.question_model import drop_nan_guards

    path, _ = fast_copy(local_model_files()[0], model_cache)
    model = onnx.load(str(path))
    ops = [n.op_type for n in model.graph.node]
    assert "IsNaN" not in ops and drop_nan_guards(model) == 0
    fast = LocalMiniLM(question_cache=model_cache)
    alone = fast.embed_questions(QUESTIONS[:1])[0]
    session = fast._load_question_session()
    encodings = [fast._tokenizer.encode(q) for q in QUESTIONS]
    padded = fast._run_batch(encodings, None, session)  # padded to the longest question
    assert np.isfinite(padded).all()
    assert float(padded[0] @ alone) > 0.99


def test_ingest_prepares_the_fast_question_model(tmp_path, seeds_dir) -> None:
    from bot.app.ingest import ingest_paths
    from bot.core.settings import get_settings

    cache = tmp_path / "fresh-cache"
    model = LocalMiniLM(question_cache=cache)
    ingest_paths([seeds_dir], get_settings(), embedder=model)
    assert model._question_session  # loaded during the ingest: the first question is quick
    assert [p.suffix for p in (cache / "models").iterdir()] == [".onnx"]


def test_first_ask_builds_the_model_and_prints_no_library_logs(tmp_path) -> None:
    """onnxruntime.quantization calls logging.basicConfig() on import: the build must undo it,
    or every library's log records (bm25s's debug lines) reach the user's terminal."""
    out = _first_ask(tmp_path, tmp_path / "own-cache")
    assert list((tmp_path / "own-cache" / "models").glob("*.onnx"))  # built by this run
    assert "DEBUG" not in out.stderr and "INFO" not in out.stderr, out.stderr


def test_the_question_session_takes_its_own_thread_settings(model_cache) -> None:
    """The fast copy's session runs with `question_threads` (intra-op threads, spinning), the
    index model's with the embedder's threads and no spinning."""
    from bot.index.embeddings import QUESTION_THREADS, SessionThreads

    spin_key = "session.intra_op.allow_spinning"
    default = LocalMiniLM(question_cache=model_cache)
    assert default.question_threads == QUESTION_THREADS
    one = LocalMiniLM(question_cache=model_cache, question_threads=SessionThreads(1, True))
    vector = one.embed_questions(QUESTIONS[:1])
    options = one._question_session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.get_session_config_entry(spin_key) == "1"
    default.embed_questions(QUESTIONS[:1])
    options = default._question_session.get_session_options()
    wanted = "1" if QUESTION_THREADS.spin else "0"
    assert options.get_session_config_entry(spin_key) == wanted
    assert options.intra_op_num_threads == (QUESTION_THREADS.intra or default.threads)
    np.testing.assert_allclose(default.embed_questions(QUESTIONS[:1]), vector, atol=1e-5)
    default.embed(QUESTIONS[:1])
    options = default._session.get_session_options()
    assert options.get_session_config_entry(spin_key) == "0"
    assert options.intra_op_num_threads == default.threads
