"""The shape of the code is a contract too: layers, sizes and types are checked, not hoped for.

- Imports follow the layers (import-linter contracts in pyproject.toml).
- mypy over bot/ is clean at the strictness pyproject.toml states.
- No module over MAX_MODULE_LINES, no function over MAX_FUNCTION_LINES, and no function takes more
  than MAX_POSITIONAL parameters that are not keyword-only.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "bot"
BIN = Path(sys.executable).parent

# A module a reader can hold in their head, a function that fits one screen, and a call whose
# arguments can be told apart without their names.
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
MAX_POSITIONAL = 6


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def test_no_module_is_too_long() -> None:
    long = {
        str(path.relative_to(REPO)): n
        for path in _modules()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_is_too_long() -> None:
    long = {}
    for path in _modules():
        for fn in _functions(ast.parse(path.read_text(encoding="utf-8"))):
            start = min([fn.lineno, *(d.lineno for d in fn.decorator_list)])
            lines = (fn.end_lineno or fn.lineno) - start + 1
            if lines > MAX_FUNCTION_LINES:
                long[f"{path.relative_to(REPO)}:{fn.lineno} {fn.name}"] = lines
    assert long == {}, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_no_function_takes_too_many_positional_parameters() -> None:
    wide = {}
    for path in _modules():
        for fn in _functions(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args)]
            positional = [n for n in names if n not in ("self", "cls")]
            if len(positional) > MAX_POSITIONAL:
                wide[f"{path.relative_to(REPO)}:{fn.lineno} {fn.name}"] = len(positional)
    assert wide == {}, f"functions with over {MAX_POSITIONAL} positional parameters: {wide}"


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_imports_follow_the_layers() -> None:
    done = _run(str(BIN / "lint-imports"), "--no-cache")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


@pytest.mark.slow
def test_mypy_is_clean_over_the_package() -> None:
    done = _run(sys.executable, "-m", "mypy", "bot")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
