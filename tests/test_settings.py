"""bot.core.settings: .env.example documents every setting; unknown BOT_* variables are reported;
a `.env` line that cannot be read stops only the commands that use the setting it meant to set."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bot.core.settings import Settings, get_settings, unknown_environment
from bot.ui import cli
from tests.llm_server import clean_env
from tests.test_store_faults import QUESTION, ingest_seeds, start_bot

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


def test_arguments_then_environment_then_env_file_then_defaults(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("BOT_TOP_K", "BOT_MMR_LAMBDA", "BOT_LLM", "BOT_CHUNK_SIZE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text(
        "BOT_TOP_K=9\nbot_mmr_lambda=0.2\nBOT_LLM=local\nBOT_CHUNK_SIZE\n", encoding="utf-8"
    )
    monkeypatch.setenv("bot_top_k", "4")  # names match in any case; the environment wins
    settings = Settings()
    assert (settings.top_k, settings.mmr_lambda, settings.llm) == (4, 0.2, "local")
    assert settings.chunk_size == 1000  # a name without a value leaves the default
    assert Settings(top_k=7).top_k == 7 and Settings(BOT_TOP_K="8").top_k == 8
    assert Settings(_env_file=None).llm == "auto"  # type: ignore[call-arg]


def test_a_bad_value_or_an_unknown_env_file_name_is_one_clear_error(monkeypatch, tmp_path) -> None:
    from bot.core.errors import BotError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOT_TOP_K", "many")
    get_settings.cache_clear()
    with pytest.raises(BotError, match="Bad setting BOT_TOP_K"):
        get_settings()
    monkeypatch.delenv("BOT_TOP_K")
    (tmp_path / ".env").write_text("BOT_TOPK=3\n", encoding="utf-8")
    get_settings.cache_clear()
    with pytest.raises(BotError, match="Unknown setting bot_topk in the environment or .env"):
        get_settings()
    get_settings.cache_clear()


# --- a `.env` line that cannot be read ---------------------------------------------------------


@pytest.fixture(scope="module")
def seed_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("env-lines") / "data"
    ingest_seeds(data)
    return data


@pytest.mark.parametrize(
    ("bad_line", "needed_by", "not_needed_by"),
    [
        (
            'OPENAI_API_KEY="an-unclosed-quote',
            [("ask", "--llm", "openai", QUESTION), ("ask", QUESTION)],  # auto decides by the key
            [("sources",), ("ask", "--llm", "extractive", QUESTION), ("--help",)],
        ),
        ('BOT_TOP_K="3', [("ask", "--llm", "extractive", QUESTION)], [("sources", "--json")]),
    ],
)
def test_a_bad_env_line_stops_only_the_commands_that_need_its_setting(
    seed_data: Path,
    tmp_path: Path,
    bad_line: str,
    needed_by: list[tuple[str, ...]],
    not_needed_by: list[tuple[str, ...]],
) -> None:
    work = tmp_path  # `bot` runs from the folder above its data directory
    shutil.copytree(seed_data, work / "data")
    (work / ".env").write_text(f"BOT_COLLECTION=news\n{bad_line}\n", encoding="utf-8")
    env = clean_env(work / "data")
    del env["BOT_LLM"]  # the command line (or the default) chooses
    name = bad_line.split("=")[0]
    unread = "could not be read (an unclosed quote or a missing '='?)"
    where = f"{work / '.env'} line 2: {name} {unread}"
    runs = {args: start_bot(env, *args) for args in needed_by + not_needed_by}
    for args, proc in runs.items():
        out, err = proc.communicate(timeout=300)
        if args in needed_by:
            assert (proc.returncode, out) == (1, ""), (args, err)
            assert err.splitlines() == [f"error: {where}; fix that line"], args
        elif args == ("--help",):  # reads no setting at all
            assert (proc.returncode, err) == (0, ""), err
            assert "Usage" in out
        else:
            assert proc.returncode == 0, (args, err)
            assert err.splitlines() == [
                f"warning: {where}; ignored, as this command does not use it"
            ], args
            assert out.strip(), args  # it did its work
