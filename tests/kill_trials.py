"""Kill `bot ingest` at every write boundary, change the files, repair, and check the index.

One trial (`run_trial`, seeded):

1. A corpus of small articles, each with a made-up name of its own, and its index (built by a
   `bot ingest` of its own).
2. A change to the files: always a new article (the case a killed run used to leave as a ghost),
   and, as the seed picks, an edited, a deleted and a renamed one.
3. For N = 1, 2, ...: a `bot ingest` of that change that kills itself (SIGKILL) right after its
   N-th write to the index (`BOT_TEST_KILL_AT_WRITE`, bot.index.kill_switch), until one N is past
   the run's last write and the run finishes. Then, for each action of ACTIONS on a copy of what
   the killed run left: the files the change touched are edited, deleted or renamed, an ingest
   repairs the index, and `out_of_step` lists every way the index then differs from the files.

`out_of_step` checks the index against the files themselves, not against another index: the
file records name exactly the files there are, with the records each holds now; the articles
claim exactly those paths; every chunk belongs to an article, lies inside its text, and cites a
path that holds it; `bot sources` lists only paths that hold the article; an answer's passages
all come from files that hold them now, and no passage names an article that is gone.

Used by tests/test_ingest_repair.py and bench/kill_trials.py.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACTIONS = ("edit", "delete", "rename")
NAMES = (
    "Zentrax", "Quorvia", "Belmonde", "Tarrowick", "Ivelund", "Marsken", "Oberith", "Culvane",
    "Dravost", "Pellucid", "Hestrine", "Ardquay",
)  # fmt: skip
CORPUS_SIZE = 6
# A run that is not killed within this many writes never will be: the trial stops there.
MAX_BOUNDARIES = 60
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Outcome:
    """One (boundary, action) of a trial: what the killed run did, and what the repair left."""

    seed: int
    boundary: int
    action: str
    killed: bool
    problems: list[str] = field(default_factory=list)


def article_text(name: str, amount: int, extra: str = "") -> str:
    return (
        f"The {name} initiative will cost exactly {amount:,} dollars, according to the council.\n"
        f"Officials said the {name} plan was approved after a long debate. {extra}\n"
    )


def fact_question(name: str) -> str:
    return f"How much will the {name} initiative cost?"


def bot_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(
        BOT_DATA_DIR=str(data_dir),
        BOT_LLM="extractive",
        ANONYMIZED_TELEMETRY="False",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
    )
    if "BOT_CACHE_DIR" in os.environ:
        env["BOT_CACHE_DIR"] = os.environ["BOT_CACHE_DIR"]
    env.update(extra)
    return env


_INGEST = "import sys; from bot.app.ingest import ingest_paths; ingest_paths([sys.argv[1]])"


def bot_ingest(corpus: Path, data_dir: Path, kill_at: int = 0) -> bool:
    """An ingest of `corpus` in a process of its own; True when it killed itself at write
    `kill_at` (0: never)."""
    extra = {"BOT_TEST_KILL_AT_WRITE": str(kill_at)} if kill_at else {}
    done = subprocess.run(
        [sys.executable, "-c", _INGEST, str(corpus)],
        env=bot_env(data_dir, **extra),
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode == -signal.SIGKILL:
        return True
    if done.returncode != 0:
        raise AssertionError(f"bot ingest failed ({done.returncode}): {done.stderr[-2000:]}")
    return False


def copy_tree(source: Path, target: Path) -> None:
    """`target` as an exact copy of `source`, modification times included (the index compares
    them)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, copy_function=shutil.copy2)


@dataclass
class _Trial:
    seed: int
    root: Path
    rng: random.Random
    touched: list[str] = field(default_factory=list)  # file names the change wrote
    asked: list[str] = field(default_factory=list)  # the made-up names of the articles it changed

    @property
    def corpus(self) -> Path:
        return self.root / "news"


def _write_base(trial: _Trial) -> None:
    trial.corpus.mkdir(parents=True)
    for i, name in enumerate(NAMES[:CORPUS_SIZE]):
        amount = trial.rng.randrange(1_000, 999_999)
        (trial.corpus / f"{i:02d}_{name.lower()}.txt").write_text(
            article_text(name, amount), encoding="utf-8"
        )


def _change(trial: _Trial) -> None:
    """The change the killed run indexes: a new article, and some of edit, delete, rename."""
    rng, corpus = trial.rng, trial.corpus
    new_name = NAMES[CORPUS_SIZE + trial.seed % (len(NAMES) - CORPUS_SIZE)]
    (corpus / "new.txt").write_text(
        article_text(new_name, rng.randrange(1_000, 999_999)), encoding="utf-8"
    )
    trial.touched = ["new.txt"]
    trial.asked = [new_name]
    files = sorted(p.name for p in corpus.iterdir() if p.name != "new.txt")
    rng.shuffle(files)
    edited, deleted, renamed = files[:3]
    trial.asked += [NAMES[int(name[:2])] for name in (edited, deleted, renamed)]
    if rng.random() < 0.7:
        with open(corpus / edited, "a", encoding="utf-8") as fh:
            fh.write(f"A later report added {rng.randrange(10, 99)} details.\n")
        trial.touched.append(edited)
    if rng.random() < 0.7:
        (corpus / deleted).unlink()
    if rng.random() < 0.7:
        (corpus / renamed).rename(corpus / f"renamed_{renamed}")
        trial.touched.append(f"renamed_{renamed}")


def act(corpus: Path, names: list[str], action: str) -> None:
    """Edit (append a sentence: the size changes), delete or rename the named files."""
    for name in names:
        path = corpus / name
        if not path.exists():
            continue
        if action == "edit":
            with open(path, "a", encoding="utf-8") as fh:
                fh.write("An edit made after the interrupted run.\n")
        elif action == "delete":
            path.unlink()
        else:
            path.rename(corpus / f"moved_{name}")


def run_trial(seed: int, root: Path, actions: tuple[str, ...] = ACTIONS) -> list[Outcome]:
    """Every write boundary of one seeded change, each followed by each action (see the module
    docstring); repairs and checks run in this process."""
    trial = _Trial(seed, root, random.Random(seed))
    _write_base(trial)
    bot_ingest(trial.corpus, root / "base-data")
    copy_tree(trial.corpus, root / "base-news")
    _change(trial)
    copy_tree(trial.corpus, root / "changed-news")
    outcomes: list[Outcome] = []
    for boundary in range(1, MAX_BOUNDARIES + 1):
        copy_tree(root / "base-data", root / "killed-data")
        copy_tree(root / "changed-news", trial.corpus)
        killed = bot_ingest(trial.corpus, root / "killed-data", kill_at=boundary)
        for action in actions:
            data = root / f"repair-{boundary}-{action}"
            copy_tree(root / "killed-data", data)
            copy_tree(root / "changed-news", trial.corpus)
            act(trial.corpus, trial.touched, action)
            problems = repair_and_check(trial.corpus, data, trial.asked)
            outcomes.append(Outcome(seed, boundary, action, killed, problems))
            shutil.rmtree(data, ignore_errors=True)
        if not killed:  # past the last write: every boundary is done
            break
    return outcomes


def repair_and_check(corpus: Path, data_dir: Path, asked: list[str] | None = None) -> list[str]:
    """Ingest `corpus` into the index at `data_dir` (in this process), twice, and list how the
    index differs from the files (asking about the articles named in `asked`: all when None);
    the second ingest must find nothing to do."""
    from bot.app.ingest import ingest_paths
    from bot.core.settings import Settings

    settings = Settings(data_dir=data_dir, llm="extractive")
    problems: list[str] = []
    first = ingest_paths([corpus], settings)
    if first.failed:
        problems.append(f"repair failed: {first.errors}")
    again = ingest_paths([corpus], settings)
    if (again.added, again.updated, again.removed, again.chunks_embedded) != (0, 0, 0, 0):
        problems.append(f"a second ingest still changed things: {again.to_json()}")
    return problems + out_of_step(settings, corpus, asked)


def _expected(corpus: Path, settings: Any) -> tuple[dict[str, str], dict[str, str]]:
    """What the files hold now: ({record path: article id}, {article id: text})."""
    from bot.core.text import path_key
    from bot.sources.files import discover_files
    from bot.sources.formats import load_file

    records: dict[str, str] = {}
    texts: dict[str, str] = {}
    files, _ = discover_files([corpus])
    for path in files:
        limit = int(settings.max_file_mb * 1024 * 1024)
        for article in load_file(path, max_bytes=limit).articles:
            records[path_key(article.path)] = article.article_id
            texts[article.article_id] = article.text
    return records, texts


def out_of_step(settings: Any, corpus: Path, asked: list[str] | None = None) -> list[str]:
    """Every way the index differs from the files under `corpus` (empty: in step); `bot ask`
    is asked about the articles named in `asked` (all of NAMES when None)."""
    from bot.index.store import open_store
    from bot.sources.chunking import chunk_text

    records, texts = _expected(corpus, settings)
    store = open_store(settings)
    problems = ["the index is still marked dirty"] if store.dirty else []
    files = store.file_entries()
    indexed = {p: a for entry in files.values() for p, a in entry.records.items()}
    if indexed != records:
        problems.append(f"file records {sorted(indexed.items())} != {sorted(records.items())}")
    articles = store.article_entries()
    claimed = {(p, a) for a, entry in articles.items() for p in entry.paths}
    for path, article_id in sorted(claimed ^ set(records.items())):
        held = "claims" if (path, article_id) in claimed else "does not claim"
        problems.append(f"article {article_id} {held} {path}, which holds {records.get(path)}")
    counts: dict[str, int] = {}
    for chunk in store.iter_chunks():
        counts[chunk.article_id] = counts.get(chunk.article_id, 0) + 1
        entry, text = articles.get(chunk.article_id), texts.get(chunk.article_id)
        if entry is None or text is None:
            problems.append(f"chunk {chunk.chunk_id} belongs to no article the files hold")
        elif chunk.path not in entry.paths or records.get(chunk.path) != chunk.article_id:
            problems.append(f"chunk {chunk.chunk_id} cites {chunk.path}, which does not hold it")
        elif text[chunk.start : chunk.end] != chunk.text:
            problems.append(f"chunk {chunk.chunk_id} is not its article's text")
    for article_id, text in texts.items():
        n = len(chunk_text(text, settings.chunk_size, settings.chunk_overlap))
        if counts.get(article_id, 0) != n or articles.get(article_id, None) is None:
            problems.append(f"article {article_id}: {counts.get(article_id, 0)} chunks, not {n}")
    return problems + _as_a_user_sees_it(settings, records, texts, asked or list(NAMES))


def _as_a_user_sees_it(
    settings: Any, records: dict[str, str], texts: dict[str, str], asked: list[str]
) -> list[str]:
    """`bot sources` and `bot ask` (in this process): only paths that hold their article now,
    and no passage from an article the files no longer hold."""
    from bot.app.ask import answer_question
    from bot.app.ingest import list_sources

    problems = []
    for row in list_sources(settings):
        for path in row["paths"]:
            if records.get(path) != row["article_id"]:
                problems.append(f"bot sources lists {path} for {row['title']!r}")
    held = "\n".join(texts.values())
    for name in asked:
        result = answer_question(fact_question(name), settings=settings)
        for passage in result.passages:
            if records.get(passage.path) != passage.article_id:
                problems.append(f"ask {name}: a passage cites {passage.path}, not holding it")
            if name in passage.text and name not in held:
                problems.append(f"ask {name}: a passage quotes a gone article: {passage.text!r}")
    return problems
