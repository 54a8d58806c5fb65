"""A killed ingest is repaired whatever happens to the files before the next one, and a passage
always cites a path that holds its text now (real Chroma, real MiniLM, real SIGKILL)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.app.ingest import ingest_paths
from bot.core.settings import Settings, get_settings
from bot.index.store import open_store
from tests.kill_trials import (
    ACTIONS,
    act,
    article_text,
    bot_env,
    bot_ingest,
    copy_tree,
    out_of_step,
    repair_and_check,
    run_trial,
)

# The write an ingest of one new file dies right after: the dirty mark, the chunks, then the
# article record (the file record would be next). The fixture checks that it is that window.
AFTER_THE_ARTICLE = 3
GHOST = "The Zentrax initiative will cost exactly 777,777 dollars, according to Chen Wei.\n"


def _bot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The issue's reproduction, up to the kill: an index of news/a.txt, then news/new.txt added
    and `bot ingest news` killed after new.txt's article is written, before its file record."""
    root = tmp_path_factory.mktemp("ghost")
    news = root / "news"
    news.mkdir()
    (news / "a.txt").write_text(
        "The Harbour initiative will cost exactly 12,000 dollars.\n", encoding="utf-8"
    )
    bot_ingest(news, root / "data")
    (news / "new.txt").write_text(GHOST, encoding="utf-8")
    assert bot_ingest(news, root / "data", kill_at=AFTER_THE_ARTICLE)
    copy_tree(news, root / "news-at-kill")
    return {"root": root, "news": news}


def _fresh_copy(killed: dict[str, Path], name: str) -> tuple[Path, Path]:
    """A copy of the killed run's index, and the files restored to what it saw."""
    data = killed["root"] / name
    copy_tree(killed["root"] / "data", data)
    copy_tree(killed["root"] / "news-at-kill", killed["news"])
    return data, killed["news"]


def test_the_kill_landed_between_the_article_and_its_file_record(killed: dict[str, Path]) -> None:
    data, news = _fresh_copy(killed, "probe")
    store = open_store(Settings(data_dir=data))
    claimed = {p for entry in store.article_entries().values() for p in entry.paths}
    assert str(news / "new.txt") in claimed
    assert str(news / "new.txt") not in store.file_entries()
    assert store.dirty


def test_issue_reproduction_deleted_after_the_kill_leaves_no_ghost(killed: dict[str, Path]) -> None:
    data, news = _fresh_copy(killed, "cli")
    (news / "new.txt").unlink()
    env = bot_env(data)
    for _ in range(2):
        done = _bot(env, "ingest", str(news))
        assert done.returncode == 0, done.stderr
    assert "1 unchanged" in done.stdout and "0 chunks embedded" in done.stdout
    listed = json.loads(_bot(env, "sources", "--json").stdout)
    assert [row["paths"] for row in listed] == [[str(news / "a.txt")]]
    asked = _bot(env, "ask", "How much will the Zentrax initiative cost?", "--json")
    answer = json.loads(asked.stdout)
    assert all("Zentrax" not in p["text"] for p in answer["passages"]), answer["passages"]
    assert "777,777" not in answer["answer"]


@pytest.mark.parametrize("action", ACTIONS)
def test_edited_deleted_or_renamed_after_the_kill_is_repaired(
    killed: dict[str, Path], action: str
) -> None:
    data, news = _fresh_copy(killed, f"after-{action}")
    act(news, ["new.txt"], action)
    assert repair_and_check(news, data) == []


def test_an_index_in_step_passes_the_check_and_a_ghost_fails_it(killed: dict[str, Path]) -> None:
    """The checker the kill tests rely on sees a ghost (the killed run's state, new.txt gone,
    before any repair)."""
    data, news = _fresh_copy(killed, "unrepaired")
    (news / "new.txt").unlink()
    problems = out_of_step(Settings(data_dir=data, llm="extractive"), news)
    assert any("new.txt" in p for p in problems), problems


@pytest.mark.slow
def test_every_write_boundary_then_edit_delete_or_rename_is_repaired(tmp_path: Path) -> None:
    outcomes = run_trial(seed=3, root=tmp_path / "trial")
    killed = {o.boundary for o in outcomes if o.killed}
    assert len(killed) >= 6, f"only {len(killed)} write boundaries"
    assert {o.action for o in outcomes} == set(ACTIONS)
    bad = [(o.boundary, o.action, o.problems) for o in outcomes if o.problems]
    assert bad == []


# --- a renamed file's passages cite the new name ---------------------------------------------


def _chunk_paths(settings: Settings) -> set[str]:
    return {c.path for c in open_store(settings).iter_chunks(with_text=False)}


def test_a_rename_moves_the_passages_to_the_new_path_without_embedding(tmp_path: Path) -> None:
    folder = tmp_path / "K3"
    folder.mkdir()
    old, new = folder / "old_name.txt", folder / "new_name.txt"
    old.write_text(article_text("Tarrowick", 120_000), encoding="utf-8")
    (folder / "other.txt").write_text(article_text("Ivelund", 4_000), encoding="utf-8")
    records = [{"title": "Budget", "text": article_text("Marsken", 9_000)}]
    (folder / "old.json").write_text(json.dumps(records), encoding="utf-8")
    settings = get_settings()
    ingest_paths([folder], settings)
    old.rename(new)
    (folder / "old.json").rename(folder / "new.json")
    report = ingest_paths([folder], settings)
    assert report.chunks_embedded == 0 and report.failed == 0
    assert _chunk_paths(settings) == {
        str(new),
        str(folder / "other.txt"),
        f"{folder / 'new.json'}#1",
    }
    answer = _ask(settings, "How much will the Tarrowick initiative cost?")
    cited = {p.path for p in answer.passages if "Tarrowick" in p.text}
    assert cited == {str(new)}
    assert out_of_step(settings, folder) == []


def _ask(settings: Settings, question: str) -> Any:
    from bot.app.ask import answer_question

    return answer_question(question, settings=settings)


def test_a_copy_then_the_original_deleted_cites_the_copy(tmp_path: Path) -> None:
    """The same text under two paths is one article; when the path its passages cite goes, they
    cite the one left."""
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "a.txt").write_text(article_text("Oberith", 55_000), encoding="utf-8")
    settings = get_settings()
    ingest_paths([folder], settings)
    shutil.copy(folder / "a.txt", folder / "b.txt")
    ingest_paths([folder], settings)
    assert _chunk_paths(settings) == {str(folder / "a.txt")}
    (folder / "a.txt").unlink()
    report = ingest_paths([folder], settings)
    assert report.chunks_embedded == 0
    assert _chunk_paths(settings) == {str(folder / "b.txt")}
    assert out_of_step(settings, folder) == []
