"""The refusal table: one row per refusal tried, printed at the end of the run.

A test records what it tried and what the product answered through the
``refusal`` fixture (:class:`RefusalLog`); the row's verdict comes from the
test's outcome (``refused ✓`` only when every assertion about the refusal, the
server staying up and nothing leaking passed), so the table never claims more
than the run showed.  ``tests/security/conftest.py`` keeps the rows in the
session's stash and prints them from ``pytest_terminal_summary``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

import pytest

REFUSED = "refused ✓"
WIDTHS = (30, 50, 52, 13)  # refusal, tried, answered, verdict (wrapped inside)
HEADINGS = ("refusal", "what was tried", "what the product answered", "verdict")


@dataclass
class RefusalRow:
    nodeid: str
    refusal: str
    tried: str
    answered: str
    verdict: str = "not run to the end"


ROWS = pytest.StashKey[list[RefusalRow]]()


class RefusalLog:
    """What one test hands the table (``refusal.record(...)`` before asserting)."""

    def __init__(self, rows: list[RefusalRow], nodeid: str) -> None:
        self._rows = rows
        self._nodeid = nodeid

    def record(self, refusal: str, tried: str, answered: str) -> None:
        """One row; record the observed answer first, then assert on it."""
        self._rows.append(RefusalRow(self._nodeid, refusal, tried, answered))


def verdict_for(outcome: str, when: str) -> str:
    """The verdict of a row from the test's report (failed setup/call/teardown)."""
    if outcome == "passed":
        return REFUSED
    if outcome == "skipped":
        return "skipped"
    return "✗ FAILED" if when == "call" else f"✗ in {when}"


def render(rows: Iterable[RefusalRow]) -> list[str]:
    """The table as lines: wrapped cells under a heading, one blank-free block."""
    lines = [_line(HEADINGS), _line(tuple("-" * w for w in WIDTHS))]
    for row in rows:
        texts = (row.refusal, row.tried, row.answered, row.verdict)
        cells = [
            textwrap.wrap(text, width) or [""] for text, width in zip(texts, WIDTHS, strict=True)
        ]
        for index in range(max(len(c) for c in cells)):
            lines.append(_line(tuple(c[index] if index < len(c) else "" for c in cells)))
    return lines


def _line(cells: tuple[str, ...]) -> str:
    return " | ".join(cell.ljust(width) for cell, width in zip(cells, WIDTHS, strict=True)).rstrip()
