"""OpenAI (or OpenAI-compatible) embeddings: the `Embedder` of BOT_EMBEDDING=openai.

openai and numpy are imported on first use only.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.core.errors import BotError
from bot.core.retry import Attempts, RetryRule, call_with_retries, refused_wait_message
from bot.index.embeddings import normalise_rows, text_list

if TYPE_CHECKING:
    import numpy as np

    from bot.core.settings import Settings

_OPENAI_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAIEmbedder:
    """OpenAI (or OpenAI-compatible) embeddings, 256 texts per request."""

    batch_size = 256

    def __init__(self, settings: Settings | None = None) -> None:
        from bot.core.settings import get_settings

        settings = settings or get_settings()
        if not settings.openai_api_key and not settings.openai_base_url:
            raise BotError("No OpenAI key: set OPENAI_API_KEY in .env, or set BOT_EMBEDDING=local")
        self.model = settings.openai_embedding_model
        self.name = f"openai:{self.model}"
        self._settings = settings
        self._client: Any = None
        self._lock = threading.Lock()
        self._dimension: int | None = _OPENAI_DIMENSIONS.get(self.model)

    @property
    def question_name(self) -> str:
        return self.name  # questions go through the same model

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self._request(["dimension probe"]).shape[1])
        return self._dimension

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                from openai import OpenAI

                s = self._settings
                self._client = OpenAI(
                    # A local OpenAI-compatible server often needs no key; the client insists.
                    api_key=s.openai_api_key or "not-needed",
                    base_url=s.openai_base_url,
                    timeout=s.llm_timeout,
                    max_retries=0,  # bot.core.retry retries, within the deadline
                )
            return self._client

    def _request(self, batch: list[str]) -> np.ndarray:
        import numpy as np

        client = self._get_client()
        # The API rejects empty strings; a single space embeds as "nothing".
        inputs = [t if t.strip() else " " for t in batch]
        s = self._settings
        subject = "The embedding server"
        tries = Attempts()
        try:
            response = call_with_retries(
                lambda timeout: client.embeddings.create(
                    model=self.model, input=inputs, timeout=timeout
                ),
                RetryRule(s.llm_deadline, s.llm_timeout, s.llm_max_retries, subject),
                tries,
            )
        except Exception as exc:
            refused = refused_wait_message(subject, tries, s.llm_deadline)
            if refused:
                raise BotError(refused) from None
            raise BotError(
                f"OpenAI embedding request failed ({type(exc).__name__})",
                hint="check OPENAI_API_KEY / OPENAI_BASE_URL and BOT_OPENAI_EMBEDDING_MODEL,"
                " or set BOT_EMBEDDING=local",
            ) from None  # the original may echo request details; keep messages key-free
        data = sorted(response.data, key=lambda d: d.index)
        return normalise_rows(np.asarray([d.embedding for d in data], dtype=np.float32))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        texts = text_list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = [
            self._request(texts[i : i + self.batch_size])
            for i in range(0, len(texts), self.batch_size)
        ]
        vectors = np.concatenate(parts)
        if self._dimension is None:
            self._dimension = int(vectors.shape[1])
        return vectors

    def embed_questions(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed(texts)

    # Nothing is memoised: every call asks the server, and a vector given back is not kept.
    def remember(self, texts: Sequence[str], vectors: Any) -> None: ...
    def warm(self, texts: Sequence[str]) -> None: ...
    def prepare_questions(self) -> None: ...
