"""One fault stack for the whole suite (the API takes seconds to import), and the summary table."""

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.faults.report import Row, format_table
from tests.faults.stack import FaultStack

_ROWS = pytest.StashKey[list[Row]]()
REPORT_PATH = Path(__file__).resolve().parents[2] / ".data" / "fault-report.json"


@pytest.fixture(scope="session")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    stack = FaultStack.create(tmp_path_factory.mktemp("faults"))
    try:
        yield stack.start()
    finally:
        stack.stop()


@pytest.fixture
def stack(fault_stack: FaultStack) -> FaultStack:
    fault_stack.ensure_running()
    assert fault_stack.wait_drained(set(), "-", timeout_s=60), "an earlier scenario left a backlog"
    return fault_stack


@pytest.fixture
def report(request: pytest.FixtureRequest) -> list[Row]:
    return request.config.stash.setdefault(_ROWS, [])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    rows = config.stash.get(_ROWS, [])
    if not rows:
        return
    terminalreporter.section("fault injection: every 2xx id stored exactly once")
    terminalreporter.write_line(format_table(rows))
    REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
    REPORT_PATH.write_text(json.dumps([asdict(row) for row in rows], indent=2) + "\n")
    terminalreporter.write_line(f"(also written to {REPORT_PATH})")
