"""LLM providers: OpenAI or any OpenAI-compatible server, the bundled local GGUF, or none.

`get_provider` turns `--llm` (or BOT_LLM) into a `Provider` at once and cheaply, after the checks
that let a command fail before slow work (no key, no model file); its chat model is made on first
use. Heavy libraries (langchain_openai, openai, httpx, llama_cpp) are imported inside functions
only.
"""

from __future__ import annotations

from bot.answer.providers import local
from bot.answer.providers.base import (
    ChatModel,
    Completion,
    Message,
    Provider,
    clean_completion,
    estimate_tokens,
)
from bot.answer.providers.local import LocalChatModel
from bot.answer.providers.openai_chat import NO_KEY_MESSAGE, OpenAIChatModel
from bot.core.errors import BotError
from bot.core.settings import Settings

PROVIDER_NAMES = ("auto", "openai", "local", "extractive")
EXTRACTIVE_MODEL = "none"  # what an extractive answer reports as its model

__all__ = [
    "ChatModel",
    "Completion",
    "LocalChatModel",
    "Message",
    "OpenAIChatModel",
    "Provider",
    "clean_completion",
    "estimate_tokens",
    "get_provider",
    "resolve_provider_name",
]


def resolve_provider_name(settings: Settings, override: str | None = None) -> str:
    """openai | local | extractive, from `--llm` (override) or BOT_LLM.

    auto = openai when OPENAI_API_KEY or OPENAI_BASE_URL is set, else extractive. It never picks
    local: the bundled model answers worse than extractive, and installing llama-cpp-python (as
    `scripts/test` does) must not change what `bot ask` does. `--llm local` still uses it.
    """
    choice = (override or settings.llm or "auto").strip().lower()
    if choice not in PROVIDER_NAMES:
        raise BotError(f"Unknown LLM provider '{choice}': use {', '.join(PROVIDER_NAMES)}")
    if choice in ("local", "extractive"):
        return choice  # without reading the OpenAI settings: such a run does not need them
    has_openai = bool(settings.openai_api_key or settings.openai_base_url)
    if choice == "openai" and not has_openai:
        raise BotError(NO_KEY_MESSAGE)
    return "openai" if has_openai else "extractive"


def get_provider(settings: Settings, override: str | None = None) -> Provider:
    """The provider `--llm` (override) or BOT_LLM chooses. Cheap: a missing key or model file is
    a BotError now, but nothing is imported or loaded until `Provider.llm()`."""
    name = resolve_provider_name(settings, override)
    if name == "openai":
        return Provider(name, settings.openai_model, lambda: OpenAIChatModel(settings))
    if name == "local":
        path = local.usable_local_model(settings)
        return Provider(name, path.name, lambda: LocalChatModel(settings, path))
    return Provider(name, EXTRACTIVE_MODEL)
