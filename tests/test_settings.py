"""bot.core.settings: .env.example documents every setting; unknown BOT_* variables are reported."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.core.settings import Settings, get_settings, unknown_environment
from bot.ui import cli

EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"


def test_env_example_lists_every_setting_with_its_default(monkeypatch, tmp_path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    listed = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", text, flags=re.M))
    aliases = {str(f.validation_alias): name for name, f in Settings.model_fields.items()}
    assert set(listed) == set(aliases)
    # The example, used as a .env, gives the defaults (BOT_DATA_DIR is empty there: the default).
    monkeypatch.chdir(tmp_path)
    for alias in aliases:
        monkeypatch.delenv(alias, raising=False)
    (tmp_path / ".env").write_text(text, encoding="utf-8")
    from_example = Settings()
    (tmp_path / ".env").unlink()
    assert from_example.model_dump() == Settings().model_dump()
    assert "# BOT_DEBUG=" in text  # the one environment-only switch is documented too


def test_unknown_environment_names_the_closest_setting() -> None:
    lines = unknown_environment(
        {
            "BOT_LLM_RETRIES": "1",
            "BOT_LLM": "extractive",
            "bot_top_k": "3",
            "BOT_ZZZ": "1",
            "BOT_DEBUG": "1",
            "OPENAI_RETRIES": "2",
        }
    )
    assert lines == [
        "BOT_LLM_RETRIES is not a bot setting and is ignored; did you mean BOT_LLM_MAX_RETRIES?",
        "BOT_ZZZ is not a bot setting and is ignored; see .env.example",
    ]


def test_cli_prints_one_warning_line_and_still_runs(monkeypatch, capfd) -> None:
    monkeypatch.setenv("BOT_LLM_RETRIES", "1")
    get_settings.cache_clear()
    monkeypatch.setattr("sys.argv", ["bot", "sources", "--json"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code in (0, None)
    out, err = capfd.readouterr()
    assert err.splitlines() == [
        "warning: BOT_LLM_RETRIES is not a bot setting and is ignored; "
        "did you mean BOT_LLM_MAX_RETRIES?"
    ]
    assert out.strip() == "[]"
