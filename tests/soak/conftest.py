"""Soak-suite reporting: the figures of every soak/fault test, printed in pytest's summary.

Theory of operation
-------------------
Tests hand their figures (cycles, fds/threads/RSS before and after, counts) to the
``soak_report`` fixture, which records them as a JUnit property (``record_property``) and keeps
them for :func:`pytest_terminal_summary`, so the numbers appear in the terminal summary whether
or not pytest captures output (``-s`` is not needed).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

FIGURES: list[tuple[str, dict[str, object]]] = []

SoakReport = Callable[[str, dict[str, object]], None]


@pytest.fixture
def soak_report(
    request: pytest.FixtureRequest, record_property: Callable[[str, object], None]
) -> SoakReport:
    def report(name: str, figures: dict[str, object]) -> None:
        record_property(name, figures)
        FIGURES.append((f"{request.node.name}: {name}", dict(figures)))

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("dicomnet soak and fault figures")
    for name, figures in FIGURES:
        terminalreporter.write_line(name)
        for key, value in figures.items():
            terminalreporter.write_line(f"    {key:<28} {value}")
