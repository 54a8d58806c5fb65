"""Prompt templates (`prompts/<name>.txt`), passage formatting and the prompt hash.

Templates use `str.format` placeholders such as `{question}`; literal braces are written `{{` `}}`.
Every template's placeholders must be exactly the names in `PROMPT_VARIABLES` (a test checks it),
so a renamed variable fails loudly instead of silently sending a half-filled prompt.

Article text is untrusted: `format_passages` escapes it so that an article can neither close its
own `<passage>` element, open a fake one, nor show the model a citation marker such as `[2]`.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from bot.answer.providers import Message
from bot.core.errors import BotError
from bot.core.markers import neutralise_markers
from bot.core.settings import PACKAGE_DIR
from bot.core.types import NO_ANSWER, Passage

# The exact reply the model is told to give when the passages do not answer the question.
# citations.py uses it for refusal detection.

# name -> the variables the code passes to `render` (and so the placeholders the file must use).
PROMPT_VARIABLES: dict[str, frozenset[str]] = {
    "answer_system": frozenset({"no_answer"}),
    "answer_user": frozenset({"question", "passages", "no_answer"}),
    "rewrite_question": frozenset({"history", "question"}),
    "summarise_notes": frozenset({"topic", "passages", "no_answer"}),
    "summarise_merge": frozenset({"topic", "notes", "length_instructions", "no_answer"}),
}

_FORMATTER = string.Formatter()


def prompts_dir() -> Path:
    """`prompts/` beside the package in a checkout, `bot/_prompts` in an installed wheel."""
    for candidate in (PACKAGE_DIR.parent / "prompts", PACKAGE_DIR / "_prompts"):
        if candidate.is_dir():
            return candidate
    return PACKAGE_DIR.parent / "prompts"


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class PromptTemplate:
    """One prompt file. `render` fills every placeholder and refuses missing or unknown values."""

    name: str
    text: str
    variables: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "variables", frozenset(_placeholders(self.name, self.text)))

    @property
    def hash(self) -> str:
        """Short sha256 of the template text (12 hex chars)."""
        return _text_hash(self.text)

    def render(self, **values: object) -> str:
        missing = self.variables - values.keys()
        unknown = values.keys() - self.variables
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(sorted(missing))}")
            if unknown:
                parts.append(f"unknown {', '.join(sorted(unknown))}")
            raise BotError(
                f"Prompt '{self.name}' got wrong variables ({'; '.join(parts)}); "
                f"it uses {', '.join(sorted(self.variables)) or 'none'}"
            )
        return self.text.format(**{k: str(v) for k, v in values.items()})


def _placeholders(name: str, text: str) -> set[str]:
    found: set[str] = set()
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as exc:
        raise BotError(
            f"Prompt '{name}' has a malformed placeholder ({exc}); "
            "write literal braces as {{ and }}"
        ) from None
    for _literal, field_name, format_spec, conversion in parsed:
        if field_name is None:
            continue
        if not field_name.isidentifier() or format_spec or conversion:
            raise BotError(
                f"Prompt '{name}' has an unsupported placeholder {{{field_name}}}; "
                "use plain names such as {question}"
            )
        found.add(field_name)
    return found


@lru_cache(maxsize=64)
def _load(path: Path, mtime_ns: int) -> PromptTemplate:
    text = path.read_text(encoding="utf-8")
    return PromptTemplate(name=path.stem, text=text.rstrip("\n") + "\n")


def load_prompt(name: str) -> PromptTemplate:
    """Load `prompts/<name>.txt`; BotError when it is missing."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise BotError(f"Invalid prompt name {name!r}: use lowercase letters, digits and _")
    path = prompts_dir() / f"{name}.txt"
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        raise BotError(
            f"Prompt file {path} is missing; reinstall bot or restore prompts/{name}.txt"
        ) from None
    try:
        return _load(path, mtime)
    except (OSError, UnicodeDecodeError) as exc:
        raise BotError(f"Cannot read prompt file {path} ({exc}); restore it") from None


def prompt_hash(*parts: str) -> str:
    """12 hex chars identifying prompt texts plus the settings that shape an answer."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))  # length-prefixed: ("ab","c") != ("a","bc")
        digest.update(data)
    return digest.hexdigest()[:12]


# --- passages --------------------------------------------------------------------------

# Body text needs only & < > escaped to stay inside its element; attribute values also need ".
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ATTR_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})
_SPACES = re.compile(r"\s+")


def _escape(text: str) -> str:
    return neutralise_markers(text).translate(_ESCAPES)


def _attr(value: str) -> str:
    return neutralise_markers(_SPACES.sub(" ", value).strip()).translate(_ATTR_ESCAPES)


def format_passages(passages: list[Passage]) -> str:
    """Passages as `<passage id="n" ...>` elements that article text cannot close or spoof."""
    blocks = []
    for p in passages:
        attrs = f'id="{int(p.n)}" title="{_attr(p.title)}" source="{_attr(p.source)}"'
        attrs += f' published="{_attr(p.published)}"'
        blocks.append(f"<passage {attrs}>\n{_escape(p.text.strip())}\n</passage>")
    return "\n\n".join(blocks)


# --- messages --------------------------------------------------------------------------


def build_answer_messages(question: str, passages: list[Passage]) -> list[Message]:
    """System + user messages asking for a cited answer to `question` from `passages`."""
    system = load_prompt("answer_system").render(no_answer=NO_ANSWER)
    user = load_prompt("answer_user").render(
        question=_SPACES.sub(" ", question).strip(),
        passages=format_passages(passages),
        no_answer=NO_ANSWER,
    )
    return [Message("system", system), Message("user", user)]


def answer_prompt_texts() -> tuple[str, str]:
    """The texts of the answer prompts, for `prompt_hash`."""
    return load_prompt("answer_system").text, load_prompt("answer_user").text


def format_history(turns: list[Message], max_turns: int = 6) -> str:
    """The last `max_turns` turns as `User: ...` / `Assistant: ...` lines."""
    lines = []
    for turn in turns[-max_turns:]:
        who = "User" if turn.role == "user" else "Assistant"
        lines.append(f"{who}: {_SPACES.sub(' ', turn.content).strip()}")
    return "\n".join(lines) if lines else "(none)"


def build_rewrite_messages(history: list[Message], question: str) -> list[Message]:
    """One user message asking to rewrite a follow-up into a standalone question."""
    text = load_prompt("rewrite_question").render(
        history=format_history(history), question=_SPACES.sub(" ", question).strip()
    )
    return [Message("user", text)]


def build_summarise_notes_messages(topic: str, passages: list[Passage]) -> list[Message]:
    """Map step of `summarise`: cited notes from one batch of passages."""
    text = load_prompt("summarise_notes").render(
        topic=topic, passages=format_passages(passages), no_answer=NO_ANSWER
    )
    return [Message("user", text)]


def build_summarise_merge_messages(
    topic: str, notes: str, length_instructions: str
) -> list[Message]:
    """Reduce step of `summarise`: one summary from the notes of every batch."""
    text = load_prompt("summarise_merge").render(
        topic=topic, notes=notes, length_instructions=length_instructions, no_answer=NO_ANSWER
    )
    return [Message("user", text)]
