"""`bot ask` end to end: real index and embedder; the LLM is a queued fake or a cassette."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.answer.prompts import NO_ANSWER
from bot.answer.providers import Message
from bot.app.ask import AskOptions, answer_question
from bot.core.errors import BotError

from .fakes import FakeChatModel, fake_provider
from .llm_server import CASSETTE_MODEL, use_recorded_server

QUESTION = "what did Zelensky announce?"


def test_first_run_ingests_the_seeds_and_answers_with_checked_citations() -> None:
    notes: list[str] = []
    model = FakeChatModel(
        "Zelensky announced that Ukrainian prisoners with military experience will be released "
        "from custody if they agree to join the fight [1]. The moon is made of cheese [2]. "
        "He also thanked Belgium [99]."
    )
    result = answer_question(QUESTION, provider=fake_provider(model), notify=notes.append)
    assert any("seed" in n for n in notes)
    assert not result.refused
    assert result.provider == "openai" and result.model == "fake-chat"
    numbers = {p.n for p in result.passages}
    assert numbers == set(range(1, len(result.passages) + 1))
    assert result.dropped_citations == [99]
    assert any("[99]" in w for w in result.warnings)
    first, cheese = result.sentences[0], result.sentences[1]
    assert first.supported and set(first.citations) <= numbers
    assert not cheese.supported
    assert all(set(s.citations) <= numbers for s in result.sentences)
    cited = {n for s in result.sentences for n in s.citations}
    assert cited and {p.n for p in result.passages if p.cited} == cited
    # The prompt held the passages, numbered, and the question.
    prompt = model.seen[0][-1].content
    assert '<passage id="1"' in prompt and QUESTION in prompt


def test_weak_retrieval_refuses_without_calling_the_model() -> None:
    model = FakeChatModel()  # any call would fail: the queue is empty
    result = answer_question(
        "What is the boiling point of tungsten in kelvin?", provider=fake_provider(model)
    )
    assert result.refused and result.answer == NO_ANSWER
    assert result.passages, "the closest passages are still shown"
    assert not any(p.cited for p in result.passages)
    assert model.seen == []


def test_model_that_says_the_articles_dont_say_is_a_refusal() -> None:
    result = answer_question(QUESTION, provider=fake_provider(FakeChatModel(NO_ANSWER)))
    assert result.refused and result.answer == NO_ANSWER


def test_uncited_sentences_are_attached_to_their_best_passage() -> None:
    result = answer_question(
        QUESTION,
        provider=fake_provider(
            FakeChatModel(
                "Zelensky announced that Ukrainian prisoners with real combat experience will be "
                "released from custody to defend Ukraine."
            )
        ),
    )
    assert result.sentences[0].citations, "a supported uncited sentence gets its passage"
    assert result.sentences[0].supported


def test_filters_that_match_nothing_refuse_clearly() -> None:
    with pytest.raises(BotError, match="No indexed article is from 'No Such Outlet'"):
        answer_question(
            QUESTION, AskOptions(source="No Such Outlet"), provider=fake_provider(FakeChatModel())
        )
    result = answer_question(
        QUESTION, AskOptions(until="1999-01-01"), provider=fake_provider(FakeChatModel())
    )
    assert result.refused and result.passages == []
    assert "no indexed passage matches the filters" in result.warnings[0]


@pytest.mark.parametrize("question", ["", "   ", "\x1b[31m\x07", "x" * 100_000])
def test_bad_questions_are_clear_errors(question: str) -> None:
    with pytest.raises(BotError):
        answer_question(question, provider=fake_provider(FakeChatModel()))


def test_extractive_answer_cites_the_prisoner_release() -> None:
    result = answer_question(QUESTION, AskOptions(llm="extractive"))
    assert result.provider == "extractive" and not result.refused
    assert "prisoners" in result.answer.lower()
    assert all(s.citations and s.supported for s in result.sentences)


def test_ask_json_schema_via_the_cli() -> None:
    from bot.ui.cli import app

    result = CliRunner().invoke(app, ["ask", QUESTION, "--llm", "extractive", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {
        "question",
        "answer",
        "refused",
        "provider",
        "model",
        "prompt_hash",
        "sentences",
        "passages",
        "timings_ms",
        "usage",
    }
    assert set(data["sentences"][0]) == {"text", "citations", "supported", "unsupported_part"}
    assert set(data["passages"][0]) == {
        "n",
        "article_id",
        "title",
        "source",
        "url",
        "published",
        "path",
        "start",
        "end",
        "text",
        "score",
        "cited",
        "author",
    }
    cited = {n for s in data["sentences"] for n in s["citations"]}
    assert cited and {p["n"] for p in data["passages"] if p["cited"]} == cited
    assert len(data["prompt_hash"]) == 12


def test_ask_renders_answer_and_sources_in_the_terminal() -> None:
    from bot.ui.cli import app

    result = CliRunner().invoke(app, ["ask", QUESTION, "--llm", "extractive"])
    assert result.exit_code == 0, result.output
    assert "Sources" in result.stdout and "000_2a677c025498d731.txt:" in result.stdout


def test_ask_all_sources_lists_the_uncited_passages_too() -> None:
    import re

    from bot.ui.cli import app

    def run(*flags: str) -> str:
        out = CliRunner().invoke(app, ["ask", QUESTION, "--llm", "extractive", "--k", "8", *flags])
        assert out.exit_code == 0, out.output
        return out.stdout

    passages = json.loads(run("--json"))["passages"]
    cited = sum(p["cited"] for p in passages)
    assert 0 < cited < len(passages), "the test needs cited and uncited passages"
    where = re.compile(r"\.txt:\d+-\d+")  # one line per listed passage
    terse, everything = run(), run("--all-sources")
    assert len(where.findall(terse)) == cited
    assert f"{len(passages) - cited} more passage" in terse
    assert len(where.findall(everything)) == len(passages) and "not cited" not in everything


def test_openai_without_a_key_names_the_fix() -> None:
    with pytest.raises(BotError, match="OPENAI_API_KEY"):
        answer_question(QUESTION, AskOptions(llm="openai"))


@pytest.mark.cassette
@pytest.mark.vcr
@pytest.mark.block_network
def test_ask_through_a_recorded_openai_compatible_server(monkeypatch: pytest.MonkeyPatch) -> None:
    use_recorded_server(monkeypatch)
    result = answer_question(QUESTION, AskOptions(llm="auto"))
    assert result.provider == "openai" and result.model == CASSETTE_MODEL
    assert result.answer.strip()
    assert result.usage.get("completion_tokens", 0) > 0
    numbers = {p.n for p in result.passages}
    assert all(set(s.citations) <= numbers for s in result.sentences)


def _after_the_passage_thread(
    answer: str, log: list[str], before: list[str]
) -> Callable[[list[Message]], str]:
    """A reply that, like a remote server's, comes only after a while: here, once the bot's
    passage-embedding thread has finished (so the test does not depend on timing). `before`
    receives what `log` holds by then."""
    import threading
    import time

    def reply(messages: list[Message]) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(
            t.name == "embed-passages" for t in threading.enumerate()
        ):
            time.sleep(0.01)
        before.extend(log)
        return answer

    return reply


def _logged_embeddings(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[str]]:
    """The seeds' index with an empty memo, and the list of every text its model embeds."""
    from bot.app.ask import open_index
    from bot.core.settings import get_settings

    store = open_index(get_settings())
    log: list[str] = []
    embed = store.embedder._embed

    def logged(texts: list[str]):  # type: ignore[no-untyped-def]
        log.extend(texts)
        return embed(texts)

    monkeypatch.setattr(store.embedder, "_embed", logged)
    store.embedder.memo.clear()  # the embedder is shared: earlier tests filled its memo
    return store, log


def test_passage_sentences_are_embedded_while_a_remote_model_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.answer.citations import sentence_texts

    store, log = _logged_embeddings(monkeypatch)
    answer = "Zelensky announced that prisoners with combat experience would be released [1]."
    before_reply: list[str] = []
    model = FakeChatModel(_after_the_passage_thread(answer, log, before_reply))
    result = answer_question(QUESTION, provider=fake_provider(model), store=store)
    assert not result.refused and result.sentences[0].supported
    ahead = set(sentence_texts(result.passages))
    assert ahead and ahead <= set(before_reply)
    # After the reply, checking embedded only the answer's own sentence: nothing twice.
    after = log[len(before_reply) :]
    assert after == [result.sentences[0].text]


def test_an_extractive_answer_embeds_each_sentence_once_and_a_repeat_embeds_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pick, the check and the disagreements share the sentence vectors of one answer, and a
    warm process (bot serve) keeps them for the next question about the same passages."""
    store, log = _logged_embeddings(monkeypatch)
    options = AskOptions(llm="extractive")
    first = answer_question(QUESTION, options, store=store)
    assert not first.refused and first.sentences
    assert log and len(log) == len(set(log))
    del log[:]
    again = answer_question(QUESTION, options, store=store)
    assert log == [] and again.answer == first.answer


def test_a_missing_local_model_is_reported_before_the_seeds_are_indexed(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.core.settings import get_settings
    from bot.index.store import open_store

    monkeypatch.setenv("BOT_LOCAL_MODEL", str(tmp_path / "nope.gguf"))
    get_settings.cache_clear()
    with pytest.raises(BotError, match="nope.gguf does not exist"):
        answer_question(QUESTION, AskOptions(llm="local"))
    store = open_store(get_settings(), create=False)
    assert not store.exists or store.article_count() == 0, "nothing was indexed"


def test_timings_cover_every_stage_of_a_cold_ask() -> None:
    from bot.ui.cli import app

    result = CliRunner().invoke(app, ["ask", QUESTION, "--llm", "extractive", "--timings"])
    assert result.exit_code == 0, result.output
    line = [x for x in result.stderr.splitlines() if x.startswith('{"timings_ms"')][-1]
    stages = json.loads(line)["timings_ms"]
    named = ["cli", "setup", "prepare", "imports", "open_index", "retrieval", "llm", "checking"]
    assert set(named) | {"render", "total"} <= set(stages)
    assert all(stages[k] >= 0 for k in stages)
    # The stages account for the whole command (the rest is Python between them: < 5%).
    assert sum(stages[k] for k in [*named, "render"]) >= 0.95 * stages["total"]


def test_the_bot_command_delivers_all_its_output_through_a_pipe(tmp_path) -> None:
    """`bot ask` in its own process, its output read through a pipe: the JSON or the text arrives
    whole, the footer last, with exit code 0, on the first ask (which also indexes the seeds)
    and on the later ones."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "BOT_DATA_DIR": str(tmp_path / "data"), "BOT_LLM": "extractive"}
    for run in ("indexes the seeds first", "only reads"):
        proc = subprocess.run(
            [sys.executable, "-m", "bot", "ask", QUESTION, "--json"],
            capture_output=True,
            text=True,
            env=env,
        )
        assert proc.returncode == 0, (run, proc.stderr[-2000:])
        data = json.loads(proc.stdout)
        assert data["passages"] and not data["refused"], run
        assert ("seed" in proc.stderr) == (run == "indexes the seeds first")
    text = subprocess.run(
        [sys.executable, "-m", "bot", "ask", QUESTION], capture_output=True, text=True, env=env
    )
    assert text.returncode == 0 and "Sources" in text.stdout
    footer = text.stdout[text.stdout.rindex("extractive/none") :]
    assert "total" in footer and footer.rstrip().endswith("ms"), "the footer arrives whole, last"
