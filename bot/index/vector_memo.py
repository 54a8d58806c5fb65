"""`VectorMemo`: the vectors of recently embedded texts, bounded and shared by threads."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from cachetools import LRUCache

if TYPE_CHECKING:
    import numpy as np


class VectorMemo:
    """The vectors of recently seen texts (LRU, bounded), so one `ask` embeds each text once.

    Retrieval hands over the stored vectors of the passages it returns and of the question; the
    extractive answerer and the citation checker then embed only what nobody has embedded yet.
    A capacity of 0 or less keeps nothing.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._lock = threading.Lock()
        self._capacity = capacity
        self._items: LRUCache[str, np.ndarray] = LRUCache(maxsize=max(1, capacity))

    @property
    def capacity(self) -> int:
        return self._capacity

    @capacity.setter
    def capacity(self, capacity: int) -> None:
        """A new bound keeps the most recently used vectors that fit, in their order of use."""
        with self._lock:
            oldest_first = [self._items.popitem() for _ in range(len(self._items))]
            self._items = LRUCache(maxsize=max(1, capacity))
            for text, vector in oldest_first[-capacity:] if capacity > 0 else []:
                self._items[text] = vector
            self._capacity = capacity

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def get(self, text: str) -> np.ndarray | None:
        with self._lock:
            return self._items.get(text)

    def put(self, text: str, vector: np.ndarray) -> None:
        if self._capacity <= 0:
            return
        with self._lock:
            self._items[text] = vector

    def __len__(self) -> int:
        return len(self._items)
