"""The guards of docs/architecture.md kept by the suite: lint, format and strict types.

``ruff check``, ``ruff format --check`` and ``mypy`` (strict, over focus, mrf,
notify and web: ``[tool.mypy] files`` in pyproject.toml) run on the
repository as it is; a change that breaks one fails ``make test``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("check", [("check", "."), ("format", "--check", ".")])
def test_ruff_is_clean(check: tuple[str, ...]) -> None:
    done = _run(str(BIN / "ruff"), *check)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


@pytest.mark.timeout(600)
def test_mypy_strict_is_clean() -> None:
    done = _run(sys.executable, "-m", "mypy", "--no-incremental")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Success" in done.stdout
