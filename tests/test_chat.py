"""`bot chat`: scripted sessions, follow-up rewriting, memory, cancellation and a real terminal.

Real Chroma index and the real bundled embedder throughout; the LLM is a queued fake, a recorded
cassette of SmolLM2, or none (extractive).
"""

from __future__ import annotations

import _thread
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.answer.providers import Message
from bot.app.chat import (
    MAX_TURNS,
    Chat,
    ChatSession,
    keyword_rewrite,
    looks_like_follow_up,
    rewrite_question,
    validate_rewrite,
)
from bot.core.markers import MARKER_RE
from bot.core.types import AnswerResult
from bot.ui.repl import AnswerCancelled, ChatFrontend, TurnRunner

from .conftest import REPO, SEEDS
from .fakes import FakeChatModel, fake_provider
from .llm_server import CASSETTE_MODEL, FakeOpenAIServer, Reply, chat_chunk, use_recorded_server

FIRST = "what did Zelensky announce?"
FOLLOW_UP = "what did he tell Russian soldiers?"
STANDALONE = "What did Zelensky tell Russian soldiers?"
# The seed sentence that answers FOLLOW_UP.
ANSWER_SENTENCE = "save your lives and leave"
ZELENSKY_SEED = "000_2a677c025498d731.txt"
# prompt_toolkit drops what is typed while it sets the terminal up between two prompts, which on a
# loaded machine comes after the prompt is drawn: the tests type as a person would, a moment later.
PROMPT_SETTLE_S = 1.0
# Ctrl-D pressed again if one fell in that gap, as a person would.
EOF_TRIES = 3
# Generous: the main thread handles Ctrl-C when the scheduler next runs it.
CTRL_C_HANDLED_S = 30.0
BOT = REPO / ".venv" / "bin" / "bot"

# Articles in which other people talk to Russian soldiers: without the conversation, "what did he
# tell Russian soldiers?" retrieves these first.
DISTRACTORS = {
    "putin_parade.txt": [
        "title: Putin speaks to Russian soldiers at a Moscow parade",
        "published: 2022-05-09",
        "Russian president Vladimir Putin spoke to Russian soldiers on Red Square during the "
        "Victory Day parade.",
        "He told the Russian soldiers that they were defending the motherland and that the "
        "country was proud of them.",
        "Putin told Russian soldiers that the West had been preparing an attack and that their "
        "operation was a forced decision.",
        "Thousands of Russian soldiers marched past the Kremlin as the president watched.",
    ],
    "lukashenko.txt": [
        "title: Lukashenko visits Russian soldiers in Belarus",
        "published: 2022-02-20",
        "Belarusian leader Alexander Lukashenko visited Russian soldiers stationed in Belarus for "
        "joint exercises.",
        "He told the Russian soldiers that they could stay in Belarus as long as necessary and "
        "praised their discipline.",
        "Lukashenko said the Russian soldiers would leave once the exercises were over, and that "
        "no one should fear them.",
    ],
}


def _article(lines: list[str]) -> str:
    """Front matter (title, date, outlet) and the body, one sentence a line."""
    title, published, *body = lines
    return "\n".join(["---", title, published, "source: Example Wire", "---", *body]) + "\n"


ZELENSKY_ANSWER = (
    "Zelensky announced that Ukrainian prisoners with military experience will be released from "
    "custody if they agree to join the fight [1]."
)
SOLDIERS_ANSWER = (
    'Zelensky told Russian soldiers to abandon their equipment and to "save your lives and '
    'leave" [1].'
)


def _invoke(args: list[str], lines: list[str]):  # type: ignore[no-untyped-def]
    from bot.ui.cli import app

    return CliRunner().invoke(app, ["chat", *args], input="\n".join(lines) + "\n")


def _cited_numbers_valid(result: AnswerResult) -> bool:
    numbers = {p.n for p in result.passages}
    return all(set(s.citations) <= numbers for s in result.sentences)


# --- scripted sessions through the CLI ------------------------------------------------------------


def test_scripted_session_extractive() -> None:
    result = _invoke(
        ["--llm", "extractive"],
        [FIRST, FOLLOW_UP, "/sources", "", "   ", "/frobnicate now", "/help", "/reset", FOLLOW_UP],
    )
    assert result.exit_code == 0, result.output
    out, err = result.stdout, result.stderr
    # Both questions answered, each with cited sentences and a source list.
    assert out.count(f"» {FIRST}") == 1 and out.count(f"» {FOLLOW_UP}") == 2
    assert out.count("Sources") == 4  # two answers + /sources + the answer after /reset
    assert out.count("extractive/none") == 3
    assert ZELENSKY_SEED in out and "[1]" in out
    # The follow-up was rewritten with the conversation's names, shown as a ↳ line; after
    # /reset the same words have no conversation behind them and are answered as typed.
    rewritten = [line for line in out.splitlines() if line.startswith("↳ ")]
    assert rewritten == [f"↳ {FOLLOW_UP} (Zelensky, announce)"]
    assert "Conversation cleared." in out
    # /help lists every command; the unknown one is a one-line error naming /help.
    for command in ("/sources", "/summarise", "/reset", "/exit"):
        assert command in out
    assert err.splitlines() == [
        "The index is empty: indexing the bundled seed articles first…",  # first run
        "error: Unknown command /frobnicate: type /help for the commands",
    ]


def test_chat_lists_cited_passages_and_all_of_them_when_asked() -> None:
    import re

    where = re.compile(r"\.txt:\d+-\d+")  # one line per listed passage
    options = ["--llm", "extractive", "--k", "8"]
    passages = json.loads(_invoke([*options, "--json"], [FIRST]).stdout)["passages"]
    cited = sum(p["cited"] for p in passages)
    assert 0 < cited < len(passages), "the test needs cited and uncited passages"
    terse = _invoke(options, [FIRST, "/sources"])  # the answer's cited ones, then every one
    everything = _invoke([*options, "--all-sources"], [FIRST])
    assert terse.exit_code == 0 and everything.exit_code == 0, terse.output + everything.output
    assert len(where.findall(terse.stdout)) == cited + len(passages)
    assert "/sources lists them" in terse.stdout
    assert len(where.findall(everything.stdout)) == len(passages)
    assert "not cited" not in everything.stdout


def test_json_lines_one_object_per_line() -> None:
    result = _invoke(
        ["--llm", "extractive", "--json", "--k", "4"],
        [FIRST, "", FOLLOW_UP, "/sources", "/nope", "/reset", "/help"],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 6  # the empty line gives nothing
    first, follow, sources, unknown, reset, help_ = rows
    assert first["asked"] == FIRST and first["rewrite"] == {"method": "none", "rejected": None}
    assert follow["asked"] == FOLLOW_UP
    assert follow["rewrite"]["method"] == "keywords"
    assert follow["question"].startswith(FOLLOW_UP) and "Zelensky" in follow["question"]
    for answer in (first, follow):
        assert not answer["refused"] and len(answer["passages"]) == 4
        numbers = {p["n"] for p in answer["passages"]}
        assert answer["sentences"] and all(
            s["citations"] and set(s["citations"]) <= numbers for s in answer["sentences"]
        )
    assert sources == {"command": "sources", "passages": follow["passages"]}
    assert unknown["asked"] == "/nope" and "/help" in unknown["error"]
    assert reset == {"command": "reset"}
    assert "/summarise [topic]" in help_["commands"]
    assert "error: Unknown command /nope" in result.stderr


def test_json_lines_escape_line_separators(tmp_path: Path) -> None:
    """U+2028/U+2029 in an article end lines at ingest and in a question become spaces: every
    JSON row is one line with no raw separator (a terminal or a line reader would split there)."""
    from bot.app.ingest import ingest_paths

    folder = tmp_path / "tram"
    folder.mkdir()
    body = [
        "title: Kharkiv tram line reopens",
        "published: 2022-06-01",
        "The Kharkiv tram line reopened on Monday\u2028after repairs by city workers.",
        "The tram depot was hit in March\u2029and trams stopped running for three months.",
    ]
    (folder / "tram.txt").write_text(_article(body), encoding="utf-8")
    assert ingest_paths([folder]).added == 1
    question = "when did the Kharkiv tram\u2028reopen?"
    result = _invoke(["--llm", "extractive", "--json"], [question, "/sources"])
    assert result.exit_code == 0, result.output
    assert "\u2028" not in result.stdout and "\u2029" not in result.stdout
    answer, sources = [json.loads(line) for line in result.stdout.split("\n") if line]
    assert "reopened on Monday\nafter repairs" in answer["passages"][0]["text"]
    assert answer["question"] == "when did the Kharkiv tram reopen?"
    assert sources["command"] == "sources" and sources["passages"] == answer["passages"]


def test_fake_model_rewrites_and_the_answer_uses_the_rewrite(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import bot.answer.providers

    model = FakeChatModel(ZELENSKY_ANSWER, f'Standalone question: "{STANDALONE}"', SOLDIERS_ANSWER)
    provider = fake_provider(model)
    monkeypatch.setattr(
        bot.answer.providers, "get_provider", lambda settings, override=None: provider
    )
    result = _invoke(["--llm", "openai"], [FIRST, FOLLOW_UP, "/sources"])
    assert result.exit_code == 0, result.output
    assert len(model.seen) == 3  # answer, rewrite, answer: the first question needs no rewrite
    rewrite_prompt, answer_prompt = model.prompt(1), model.prompt(2)
    # The rewrite prompt held the conversation: the first question and (markers removed) answer.
    assert f"User: {FIRST}" in rewrite_prompt
    assert "Assistant: Zelensky announced that Ukrainian prisoners" in rewrite_prompt
    assert "[1]" not in rewrite_prompt.split("Latest message")[0]
    assert FOLLOW_UP in rewrite_prompt
    # The label and quotes were stripped; the answer prompt asked the standalone question.
    assert STANDALONE in answer_prompt and FOLLOW_UP not in answer_prompt
    assert '<passage id="1"' in answer_prompt
    assert f"↳ {STANDALONE}" in result.stdout
    flat = " ".join(result.stdout.split())  # rich wraps at 80 columns
    assert 'to abandon their equipment and to "save your lives and leave" [1].' in flat
    assert flat.count("Sources") == 3  # two answers and /sources


def test_summarise_command() -> None:
    pytest.importorskip("bot.app.summarise")
    result = _invoke(["--llm", "extractive"], ["/summarise", "/summarise prisoners", "/sources"])
    assert result.exit_code == 0, result.output
    assert "error" not in result.stderr
    out = result.stdout
    assert out.count("Sources") == 3  # two summaries and /sources
    assert "[1]" in out and ZELENSKY_SEED in out


def test_summarise_command_json() -> None:
    pytest.importorskip("bot.app.summarise")
    result = _invoke(["--llm", "extractive", "--json"], ["/summarise prisoners"])
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["command"] == "summarise" and not row["refused"]
    numbers = {p["n"] for p in row["passages"]}
    assert row["sentences"] and all(set(s["citations"]) <= numbers for s in row["sentences"])


def test_control_characters_never_reach_the_output(monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.answer.providers

    evil = "\x1b]0;pwned\x07What did \x1b[2JZelensky tell Russian\x9b31m soldiers?\x07"
    model = FakeChatModel(ZELENSKY_ANSWER, evil, SOLDIERS_ANSWER + "\x1b[5m")
    provider = fake_provider(model)
    monkeypatch.setattr(
        bot.answer.providers, "get_provider", lambda settings, override=None: provider
    )
    result = _invoke(["--llm", "openai"], ["what did \x1b[31mZelensky\x07 announce?", FOLLOW_UP])
    assert result.exit_code == 0, result.output
    for stream in (result.stdout, result.stderr):
        assert not any(ch in stream for ch in "\x1b\x07\x9b")
    assert f"↳ {STANDALONE}" in result.stdout  # the model's rewrite, cleaned, was usable
    assert "Zelensky tell Russian soldiers" in model.prompt(2)
    assert "\x1b" not in model.prompt(2)


def test_bad_dates_fail_once_before_reading_input() -> None:
    result = _invoke(["--llm", "extractive", "--since", "last tuesday"], [FIRST])
    assert result.exit_code == 1
    assert "Cannot read the date" in str(result.exception) or "Cannot read the date" in (
        result.output
    )


def test_a_failing_turn_prints_one_line_and_the_session_goes_on() -> None:
    result = _invoke(["--llm", "extractive"], ["x" * 5000, FIRST])
    assert result.exit_code == 0, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: The question is 5,000 characters")
    assert "Sources" in result.stdout  # the next line was answered


# --- rewriting ------------------------------------------------------------------------------------


def _history() -> list[Message]:
    return [Message("user", FIRST), Message("assistant", ZELENSKY_ANSWER.replace(" [1]", ""))]


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("", "empty"),
        ("   \n  ", "empty"),
        (f"{STANDALONE}\nAnswer: he told them to leave.", "several lines"),
        ("I'm sorry, I can't help with that request?", "reply"),
        (f"User: {STANDALONE}", "reply"),
        ("The articles don't say.", "not a question"),
        ("Zelensky told them to save their lives [1].", "cites"),
        ("Zelensky told Russian soldiers to leave.", "not a question"),
        ("What did Zelensky announce?", "repeats"),
        (FOLLOW_UP, "unresolved"),
        ("What is the capital of France and how big is Paris?", "drops words"),
        ("What did Biden and Macron tell Russian soldiers in Warsaw yesterday?", "adds words"),
        ("What did the man tell Russian soldiers?", "nothing from the conversation"),
        ("What did Zelensky tell Russian soldiers? " + "Really? " * 60, "too long"),
    ],
)
def test_bad_model_rewrites_fall_back_to_keywords(reply: str, why: str) -> None:
    model = FakeChatModel(reply)
    rewrite = rewrite_question(_history(), FOLLOW_UP, fake_provider(model))
    assert rewrite.method == "keywords"
    assert rewrite.rejected and why in rewrite.rejected
    assert rewrite.question == f"{FOLLOW_UP} (Zelensky, announce)"
    assert len(model.seen) == 1 and FIRST in model.prompt(0)


@pytest.mark.parametrize(
    "reply",
    [
        STANDALONE,
        f'"{STANDALONE}"',
        f"Standalone question: {STANDALONE}",
        f"**{STANDALONE}**",
        "What did President Zelensky tell the Russian soldiers?",
    ],
)
def test_good_model_rewrites_are_used(reply: str) -> None:
    rewrite = rewrite_question(_history(), FOLLOW_UP, fake_provider(FakeChatModel(reply)))
    assert rewrite.method == "model" and rewrite.rejected is None
    assert rewrite.question.startswith("What did") and rewrite.question.endswith("soldiers?")
    assert "Zelensky" in rewrite.question and '"' not in rewrite.question


def test_no_history_means_no_model_call() -> None:
    model = FakeChatModel()
    rewrite = rewrite_question([], FOLLOW_UP, fake_provider(model))
    assert (rewrite.question, rewrite.method) == (FOLLOW_UP, "none")
    assert model.seen == []


def test_standalone_questions_stay_as_typed() -> None:
    question = "How many Ukrainian children have been killed in the conflict?"
    assert not looks_like_follow_up(question)
    assert keyword_rewrite(_history(), question) == question
    # A model that repeats a standalone question unchanged is fine.
    assert validate_rewrite(question, question, _history()) == (question, "")


@pytest.mark.parametrize(
    "question", [FOLLOW_UP, "and the EU?", "what about Kharkiv?", "why?", "did they agree?"]
)
def test_follow_ups_get_the_conversation_keywords(question: str) -> None:
    assert looks_like_follow_up(question)
    rewritten = keyword_rewrite(_history(), question)
    assert rewritten.startswith(question) and "Zelensky" in rewritten


def test_names_come_from_the_answer_when_the_question_had_none() -> None:
    history = [
        Message("user", "who is the president?"),
        Message(
            "assistant",
            "The president is Volodymyr Zelensky. Under martial law, Zelensky leads Ukraine.",
        ),
    ]
    rewritten = keyword_rewrite(history, FOLLOW_UP)
    assert rewritten == f"{FOLLOW_UP} (Zelensky, Volodymyr, Ukraine, president)"


# --- follow-up retrieval on the real index --------------------------------------------------------


def test_follow_up_retrieves_the_zelensky_passage(tmp_path: Path) -> None:
    """Extractive mode, real index: the seeds plus articles where Putin and Lukashenko talk to
    Russian soldiers. Alone, the follow-up finds those; in the conversation it finds Zelensky's."""
    from bot.app.ask import AskOptions, answer_question
    from bot.app.ingest import ingest_paths

    others = tmp_path / "others"
    others.mkdir()
    for name, text in DISTRACTORS.items():
        (others / name).write_text(_article(text), encoding="utf-8")
    report = ingest_paths([SEEDS, others])
    assert report.added == 4 and report.failed == 0

    alone = answer_question(FOLLOW_UP, AskOptions(llm="extractive"))
    assert Path(alone.passages[0].path).name in DISTRACTORS  # the control: no conversation

    chat = Chat(AskOptions(llm="extractive"))
    chat.ask(FIRST)
    reply = chat.ask(FOLLOW_UP)
    assert reply.rewrite.method == "keywords" and "Zelensky" in reply.rewrite.question
    result = reply.result
    assert result.question == reply.rewrite.question and not result.refused
    top = result.passages[0]
    assert Path(top.path).name == ZELENSKY_SEED
    assert ANSWER_SENTENCE in top.text
    assert all(s.supported and s.citations for s in result.sentences)
    assert _cited_numbers_valid(result)


# --- memory ---------------------------------------------------------------------------------------


def _result(answer: str) -> AnswerResult:
    return AnswerResult(
        question="q", answer=answer, refused=False, provider="p", model="m", prompt_hash="h"
    )


def test_memory_is_bounded() -> None:
    from bot.answer.prompts import build_rewrite_messages

    session = ChatSession()
    for i in range(100):
        session.add(
            f"question {i}?", f"standalone question {i}?", _result(f"answer {i} [1]. " * 200)
        )
        assert len(session.turns) <= MAX_TURNS
        assert session.chars <= session.max_chars
    assert len(session.turns) == MAX_TURNS
    assert [t.asked for t in session.turns] == [f"question {i}?" for i in range(94, 100)]
    assert all(len(t.answer) <= 401 and "[1]" not in t.answer for t in session.turns)
    assert len(session.history()) == 2 * MAX_TURNS
    prompt = build_rewrite_messages(session.history(), FOLLOW_UP)[0].content
    assert len(prompt) < 5000
    session.reset()
    assert session.turns == [] and session.last_result is None and session.history() == []


def test_character_cap_drops_the_oldest_turns() -> None:
    session = ChatSession(max_turns=50, max_chars=2000)
    for i in range(30):
        session.add("q" * 300 + str(i), "s" * 300, _result("a" * 300))
    assert session.chars <= 2000 and len(session.turns) == 2
    assert session.turns[-1].asked.endswith("29")


def test_chat_keeps_the_last_turns_and_the_last_result() -> None:
    from bot.app.ask import AskOptions

    chat = Chat(AskOptions(llm="extractive"), session=ChatSession(max_turns=2))
    questions = [FIRST, "how many Russian soldiers were killed?", FOLLOW_UP]
    for question in questions:
        chat.ask(question)
    assert [t.asked for t in chat.session.turns] == questions[1:]
    assert chat.session.last_result is not None
    assert chat.session.last_result.question == chat.session.turns[-1].standalone


# --- cancellation ---------------------------------------------------------------------------------


def _ctrl_c_until(seen: Callable[[], bool]) -> Callable[[], None]:
    """A streaming step that presses Ctrl-C (KeyboardInterrupt in the main thread) and waits until
    the main thread has handled it, however long a loaded machine makes that take."""

    def press() -> None:
        _thread.interrupt_main()
        deadline = time.monotonic() + CTRL_C_HANDLED_S
        while not seen() and time.monotonic() < deadline:
            time.sleep(0.05)

    return press


def test_ctrl_c_cancels_the_answer_and_nothing_prints_afterwards() -> None:
    from rich.console import Console

    from bot.app.ask import AskOptions

    # Streams one word, presses Ctrl-C, then tries to stream more: the cancelled turn must stop
    # there and print nothing more.
    buffer = io.StringIO()
    model = FakeChatModel(
        ("Zelensky ", _ctrl_c_until(lambda: "(cancelled)" in buffer.getvalue()), "LATEWORD.")
    )
    console = Console(file=buffer, force_terminal=True, width=100)
    chat = Chat(AskOptions(), provider=fake_provider(model))
    frontend = ChatFrontend(chat, console, interactive=True, err=console)
    assert frontend.handle(FIRST) is True
    assert "(cancelled)" in buffer.getvalue()
    frontend.runner.join(timeout=30)
    assert len(model.errors) == 1 and isinstance(model.errors[0], AnswerCancelled)
    assert "LATEWORD" not in buffer.getvalue()
    assert chat.session.turns == [] and chat.session.last_result is None
    assert not frontend.runner.busy()


def test_turn_runner_hands_errors_to_the_main_thread() -> None:
    from bot.core.errors import BotError

    def fail() -> None:
        raise BotError("boom")

    outcome = TurnRunner().run(fail, on_cancel=lambda: None)
    assert isinstance(outcome.error, BotError) and not outcome.cancelled
    assert TurnRunner().run(lambda: 42, on_cancel=lambda: None).value == 42


# --- history file ---------------------------------------------------------------------------------


def test_history_file_in_the_data_dir_or_in_memory(tmp_path: Path) -> None:
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    from bot.ui.repl import HISTORY_FILE, prompt_history

    problems: list[str] = []
    history = prompt_history(tmp_path / "data", problems.append)
    assert isinstance(history, FileHistory)
    history.store_string("what did Zelensky announce?")
    assert "Zelensky" in (tmp_path / "data" / HISTORY_FILE).read_text()
    assert problems == []
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    history = prompt_history(blocked / "data", problems.append)  # cannot create the dir
    assert isinstance(history, InMemoryHistory)
    assert problems == [
        f"Cannot write the chat history in {blocked / 'data'}: not a directory; "
        "keeping it in memory for this session"
    ]


# --- cassettes: SmolLM2 through an OpenAI-compatible server ---------------------------------------


@pytest.fixture
def recorded_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings that send the LLM calls to the recorded SmolLM2 server (the cassettes replay it)."""
    use_recorded_server(monkeypatch)


@pytest.mark.cassette
@pytest.mark.vcr
@pytest.mark.block_network
@pytest.mark.usefixtures("recorded_model")
def test_follow_up_with_the_recorded_model() -> None:
    from bot.app.ask import AskOptions

    chat = Chat(AskOptions(llm="openai"))
    first = chat.ask(FIRST)
    deltas: list[str] = []
    follow = chat.ask(FOLLOW_UP, on_delta=deltas.append)
    for reply in (first, follow):
        assert reply.result.provider == "openai" and reply.result.model == CASSETTE_MODEL
        assert _cited_numbers_valid(reply.result)
    assert "".join(deltas).strip()  # the follow-up's answer streamed
    # Whatever the tiny model wrote, the question that was answered is a validated standalone
    # question that carries the conversation's subject.
    rewrite = follow.rewrite
    assert rewrite.method in ("model", "keywords")
    if rewrite.method == "model":
        assert validate_rewrite(rewrite.question, FOLLOW_UP, chat.session.history()[:2])[0]
    else:
        assert rewrite.rejected and rewrite.question == f"{FOLLOW_UP} (Zelensky, announce)"
    assert follow.result.question == rewrite.question
    assert any(ANSWER_SENTENCE in p.text for p in follow.result.passages)
    assert len(chat.session.turns) == 2


@pytest.mark.cassette
@pytest.mark.vcr
@pytest.mark.block_network
@pytest.mark.usefixtures("recorded_model")
def test_scripted_json_session_with_the_recorded_model() -> None:
    result = _invoke(["--llm", "openai", "--json"], [FIRST, "and what did he ask the EU?"])
    assert result.exit_code == 0, result.output
    first, follow = [json.loads(line) for line in result.stdout.splitlines()]
    assert first["rewrite"]["method"] == "none"
    assert follow["rewrite"]["method"] in ("model", "keywords")
    assert follow["question"] != follow["asked"]
    for row in (first, follow):
        assert row["model"] == CASSETTE_MODEL
        numbers = {p["n"] for p in row["passages"]}
        assert all(set(s["citations"]) <= numbers for s in row["sentences"])
        assert not MARKER_RE.search(row["question"])


# --- a real terminal ------------------------------------------------------------------------------


def _pty_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_", "OPENAI_")) and k != "PROMPT_TOOLKIT_NO_CPR"
    }
    env.update(
        BOT_DATA_DIR=str(data_dir),
        ANONYMIZED_TELEMETRY="False",
        TERM="xterm-256color",
        PROMPT_TOOLKIT_NO_CPR="1",  # pexpect does not answer cursor-position requests
        BOT_CACHE_DIR=os.environ["BOT_CACHE_DIR"],  # the run's model cache (conftest)
        COLUMNS="100",
        LINES="40",
    )
    env.update(extra)
    return env


def _ingest_seeds(env: dict[str, str]) -> None:
    done = subprocess.run(
        [str(BOT), "ingest"], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr


def _type(child: Any, keys: str) -> None:
    """Type a line at the prompt that was just drawn, once prompt_toolkit can take it."""
    time.sleep(PROMPT_SETTLE_S)
    child.sendline(keys)


def _press(key: Callable[[], object]) -> None:
    time.sleep(PROMPT_SETTLE_S)
    key()


def _leave(child: Any) -> None:
    """Ctrl-D at the prompt, pressed again if it fell between two prompts; the chat must end."""
    import pexpect

    for _ in range(EOF_TRIES):
        _press(child.sendeof)
        if child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=15) == 0:
            return
    raise AssertionError(f"Ctrl-D did not end the chat after {EOF_TRIES} presses")


needs_bot = pytest.mark.skipif(
    not BOT.exists() or shutil.which("stty") is None, reason="needs .venv/bin/bot and a pty"
)


@needs_bot
def test_real_terminal_question_ctrl_c_and_ctrl_d(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    env = _pty_env(tmp_path / "data")
    _ingest_seeds(env)
    child = pexpect.spawn(
        str(BOT),
        ["chat", "--llm", "extractive"],
        env=env,
        encoding="utf-8",
        timeout=240,
        dimensions=(40, 100),
    )
    transcript = io.StringIO()
    child.logfile_read = transcript
    try:
        child.expect_exact("bot>")
        _type(child, FIRST)
        child.expect(r"\[\d\]")  # a citation in the answer
        child.expect_exact("Sources")
        child.expect_exact(ZELENSKY_SEED)
        child.expect_exact("bot>")
        _type(child, FOLLOW_UP)
        child.expect_exact(f"↳ {FOLLOW_UP} (Zelensky, announce)")
        child.expect(r"\[\d\]")
        child.expect_exact("bot>")
        _press(child.sendintr)  # Ctrl-C at the prompt: a new prompt, still running
        child.expect_exact("bot>")
        assert child.isalive()
        _leave(child)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, transcript.getvalue()
    history = (tmp_path / "data" / "chat_history").read_text()
    assert history.count(FIRST) == 1 and history.count(FOLLOW_UP) == 1


@needs_bot
@pytest.mark.slow
def test_real_terminal_ctrl_c_cancels_a_slow_answer(tmp_path: Path) -> None:
    """The server takes 8 s to start its answer: Ctrl-C returns to the prompt at once, the late
    answer is never printed, and Ctrl-D waits for the abandoned request before exiting 0."""
    pexpect = pytest.importorskip("pexpect")
    late = Reply(events=[chat_chunk("Zelensky said LATEWORD [1]."), chat_chunk(None, "stop")])
    late.delay = 8.0
    with FakeOpenAIServer(late) as server:
        env = _pty_env(
            tmp_path / "data",
            OPENAI_BASE_URL=server.url,
            BOT_LLM="openai",
            BOT_LLM_MAX_RETRIES="0",
        )
        _ingest_seeds(env)
        child = pexpect.spawn(
            str(BOT), ["chat"], env=env, encoding="utf-8", timeout=240, dimensions=(40, 100)
        )
        transcript = io.StringIO()
        child.logfile_read = transcript
        try:
            child.expect_exact("bot>")
            _type(child, FIRST)
            deadline = time.monotonic() + 200
            while not server.requests and time.monotonic() < deadline:
                time.sleep(0.1)
            assert server.requests, "the answer request never reached the server"
            pressed = time.monotonic()
            child.sendintr()
            child.expect_exact("(cancelled)")
            child.expect_exact("bot>")
            assert time.monotonic() - pressed < 6  # did not wait for the 8 s answer
            _type(child, "/help")
            child.expect_exact("/summarise [topic]")
            child.expect_exact("bot>")
            time.sleep(max(0.0, 9.5 - (time.monotonic() - pressed)))  # the answer arrives now
            _leave(child)
        finally:
            child.close(force=True)
    assert child.exitstatus == 0, transcript.getvalue()
    assert "LATEWORD" not in transcript.getvalue()


def test_cli_help_lists_chat() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for option in ("--k", "--source", "--since", "--until", "--llm", "--json"):
        assert option in out.stdout
