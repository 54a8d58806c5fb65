"""Plain data passed from the pipelines to the renderer, and the `Progress` the front ends give the
long pipelines (no behaviour beyond that, no heavy imports)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol

# What every answer says when the articles do not answer the question; the prompts tell the model
# to reply with exactly this, and the checker recognises it.
NO_ANSWER = "The articles don't say."


@dataclass
class Passage:
    """A retrieved chunk as shown to the model and to the reader. `n` is its 1-based number."""

    n: int
    chunk_id: str
    article_id: str
    title: str
    source: str
    url: str
    published: str
    path: str
    start: int
    end: int
    text: str
    score: float = 0.0
    dense: float = 0.0

    @classmethod
    def from_chunk(cls, n: int, chunk_id: str, meta: dict, text: str, **scores: float) -> Passage:
        """A passage from a chunk's id, Chroma metadata and text."""
        return cls(
            n=n,
            chunk_id=chunk_id,
            article_id=str(meta.get("article_id", "")),
            title=str(meta.get("title", "")),
            source=str(meta.get("source", "")),
            url=str(meta.get("url", "")),
            published=str(meta.get("published", "")),
            path=str(meta.get("path", "")),
            start=int(meta.get("start", 0)),
            end=int(meta.get("end", 0)),
            text=text,
            **scores,
        )

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("chunk_id")
        data.pop("dense")
        return data


@dataclass
class CheckedSentence:
    text: str
    citations: list[int]
    supported: bool
    support: float = 0.0
    unsupported_part: str = ""  # the clause no passage supports, when that made it unsupported


@dataclass
class AnswerResult:
    """What `ask` (and a `summarise` run) produced; `--json` prints `to_json()`."""

    question: str
    answer: str
    refused: bool
    provider: str
    model: str
    prompt_hash: str
    sentences: list[CheckedSentence] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    dropped_citations: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "provider": self.provider,
            "model": self.model,
            "prompt_hash": self.prompt_hash,
            "sentences": [
                {
                    "text": s.text,
                    "citations": s.citations,
                    "supported": s.supported,
                    "unsupported_part": s.unsupported_part or None,
                }
                for s in self.sentences
            ],
            "passages": [p.to_json() for p in self.passages],
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
            "usage": self.usage,
            "dropped_citations": self.dropped_citations,
            "warnings": self.warnings,
        }


class Progress(Protocol):
    """What a long run (ingest, summarise) tells the user while it works: a bar of `total` steps,
    advanced as they finish, and one-line notes. The CLI's draws a progress bar."""

    def start(self, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def note(self, message: str) -> None: ...
    def stop(self) -> None: ...


class SilentProgress:
    """A `Progress` that shows nothing: the default when a library caller passes none."""

    def start(self, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def note(self, message: str) -> None: ...
    def stop(self) -> None: ...
