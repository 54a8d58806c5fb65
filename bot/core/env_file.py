"""The `.env` file's bad lines: python-dotenv skips a line it cannot parse with a log warning,
once for every reader of the file (Chroma reads `.env` too), and the setting on it silently keeps
its default. This reads the file once, names each bad line and the variable it seems to set, and
mutes python-dotenv's repeats; `bot.core.settings` decides what a bad line means."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from bot.core.secrets import is_secret_name, remember_secret, remember_secrets
from bot.core.text import safe_path

ENV_FILE = ".env"  # where Settings (and Chroma) look, relative to the working folder

_DOTENV_LOGGER = "dotenv.main"
_DOTENV_PARSE_WARNING = "python-dotenv could not parse statement"
# The variable a statement sets, read from its start: `NAME=…`, `export NAME=…`, `NAME …`.
_STATEMENT_NAME = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*(=?)(.*)", re.S)


@dataclass(frozen=True)
class BadLine:
    """A statement of the env file python-dotenv could not parse."""

    line: int
    name: str | None  # the variable it seems to set


@dataclass(frozen=True)
class EnvFileReport:
    path: Path
    bad: list[BadLine]

    def where(self, lines: list[BadLine]) -> str:
        numbers = ", ".join(str(b.line) for b in lines)
        return f"{safe_path(self.path)} line{'s' if len(lines) > 1 else ''} {numbers}"


class _MuteDotenvParseWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_DOTENV_PARSE_WARNING)


_MUTE = _MuteDotenvParseWarnings()


def check_env_file(path: Path | None = None) -> EnvFileReport:
    """The bad lines of `path` (default: `.env` in the working folder; none when it is absent).
    The values of its secret-named entries are redacted from then on, and python-dotenv's own
    warnings about bad lines are muted for the rest of the process (this report says it once)."""
    logging.getLogger(_DOTENV_LOGGER).addFilter(_MUTE)  # adding the same filter twice is a no-op
    path = Path(path or ENV_FILE)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:  # absent or unreadable: Settings read nothing from it either
        return EnvFileReport(path, [])
    from io import StringIO

    from dotenv.parser import parse_stream

    bad: list[BadLine] = []
    good: dict[str, str | None] = {}
    for binding in parse_stream(StringIO(text)):
        if not binding.error:
            if binding.key:
                good[binding.key] = binding.value
            continue
        match = _STATEMENT_NAME.match(binding.original.string)
        name = match.group(1) if match else None
        if match and name and is_secret_name(name) and match.group(2):
            remember_secret(match.group(3).strip().strip("'\"").strip())
        bad.append(BadLine(binding.original.line, name))
    remember_secrets(good)
    return EnvFileReport(path.resolve(), bad)
