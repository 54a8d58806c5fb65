"""Plain data passed from the pipelines to the renderer, and the `Progress` the front ends give the
long pipelines (no behaviour beyond that, no heavy imports)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

# What every answer says when the articles do not answer the question; the prompts tell the model
# to reply with exactly this, and the checker recognises it.
NO_ANSWER = "The articles don't say."


@dataclass
class Passage:
    """A retrieved chunk as shown to the model and to the reader. `n` is its 1-based number;
    `cited` says whether a sentence of the answer cites it (never, in a refusal)."""

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
    cited: bool = False
    author: str = ""  # the article's byline as stored (page, else feed item); "" when unknown

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("chunk_id")
        data.pop("dense")
        data["author"] = self.author or None
        return data


def mark_cited(passages: Iterable[Passage], sentences: Iterable[CheckedSentence]) -> list[Passage]:
    """`passages`, each with `cited` set when at least one of `sentences` cites its number."""
    cited = {n for sentence in sentences for n in sentence.citations}
    return [replace(p, cited=p.n in cited) for p in passages]


@dataclass
class CheckedSentence:
    text: str
    citations: list[int]
    supported: bool
    support: float = 0.0
    unsupported_part: str = ""  # the clause no passage supports, when that made it unsupported
    # Citations removed because their passage states other numbers or names than the sentence.
    mismatched: list[int] = field(default_factory=list)


@dataclass
class StatedValue:
    """One side of a disagreement: a value as a passage states it, where, and when published."""

    value: str
    citations: list[int]
    published: str = ""

    def to_json(self) -> dict:
        return {"value": self.value, "citations": self.citations, "published": self.published}


@dataclass
class Disagreement:
    """Articles that state different values for the same thing, newest report first."""

    about: str
    values: list[StatedValue]

    def to_json(self) -> dict:
        return {"about": self.about, "values": [v.to_json() for v in self.values]}


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
    disagreements: list[Disagreement] = field(default_factory=list)
    # A "when" question's date: {value, source: "text" | "published", citation, text}.
    answer_date: dict | None = None

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
            "disagreements": [d.to_json() for d in self.disagreements],
            "answer_date": self.answer_date,
        }


class Progress(Protocol):
    """What a long run (ingest, summarise) tells the user while it works: a bar of `total` steps,
    grown by `more` as steps become known (a feed's items), advanced as they finish, and
    one-line notes. The CLI's draws a progress bar."""

    def start(self, total: int) -> None: ...
    def more(self, n: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def note(self, message: str) -> None: ...
    def stop(self) -> None: ...


class SilentProgress:
    """A `Progress` that shows nothing: the default when a library caller passes none."""

    def start(self, total: int) -> None: ...
    def more(self, n: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def note(self, message: str) -> None: ...
    def stop(self) -> None: ...


@dataclass
class SummaryResult(AnswerResult):
    """An `AnswerResult` plus what was summarised; `--json` adds these keys to ask's."""

    topic: str | None = None
    scope: str = ""
    length: str = "medium"
    articles: int = 0  # articles in the selection
    passages_considered: int = 0  # passages in the selection (numbered globally)
    llm_calls: int = 0
    map_calls: int = 0
    merge_levels: int = 0  # 0 = no LLM, 1 = one final merge, 2+ = hierarchical

    def to_json(self) -> dict:
        data = {"kind": "summary", **super().to_json()}
        data.pop("answer_date")  # a summary answers no "when" question
        data.update(
            {
                "topic": self.topic,
                "scope": self.scope,
                "length": self.length,
                "articles": self.articles,
                "passages_considered": self.passages_considered,
                "llm_calls": self.llm_calls,
                "map_calls": self.map_calls,
                "merge_levels": self.merge_levels,
            }
        )
        return data
