"""Fixtures of the security suite, and the refusal table printed at the end of the run.

``security_server`` (package scope) is one ``mrf serve`` shared by every test
here (:mod:`tests.security.rig`); at teardown it must still answer OPTIONS and
must not have logged a traceback.  ``refusal`` hands a test its
:class:`~tests.security.table.RefusalLog`; the report hook stamps each row
with the test's outcome and ``pytest_terminal_summary`` prints the table (also
under ``-q``: pytest prints terminal summaries in every verbosity).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from tests.interop.harness import tail
from tests.security.rig import SecurityServer, start_security_server
from tests.security.table import ROWS, RefusalLog, RefusalRow, render, verdict_for


@pytest.fixture(scope="package")
def security_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecurityServer]:
    found = start_security_server(tmp_path_factory.mktemp("security"))
    try:
        yield found
        assert found.answers_options(), f"the server stopped answering:\n{tail(found.server.log)}"
    finally:
        found.server.stop()
    text = found.server.log_text()
    assert "Traceback (most recent call last)" not in text, tail(found.server.log, 120)


@pytest.fixture
def refusal(request: pytest.FixtureRequest) -> RefusalLog:
    """Records this test's rows of the refusal table."""
    return RefusalLog(request.config.stash.setdefault(ROWS, []), request.node.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Each row's verdict: the call's outcome, unless setup or teardown failed."""
    report = yield
    if "refusal" not in getattr(item, "fixturenames", ()):
        return report
    rows = item.config.stash.setdefault(ROWS, [])
    mine = [row for row in rows if row.nodeid == item.nodeid]
    if report.when == "call" or not report.passed:
        if not mine and not report.passed:  # failed or skipped before recording anything
            mine = [RefusalRow(item.nodeid, item.name, "-", "-")]
            rows.append(mine[0])
        for row in mine:
            if report.when == "call" or row.verdict.startswith(("refused", "not run")):
                row.verdict = verdict_for(report.outcome, report.when)
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = terminalreporter.config.stash.get(ROWS, [])
    if not rows:
        return
    refused = sum(1 for row in rows if row.verdict.startswith("refused"))
    terminalreporter.write_sep("=", f"security refusals: {refused} of {len(rows)} refused")
    for line in render(rows):
        terminalreporter.write_line(line)
