"""The conformance suite: one test per cell (system, format, stack), collected by ``--exportconf``."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_exportconf.plugin import record
from pytest_exportconf.rubric import GRADE_STATUS, GRADES


def test_cell(exportconf_cell: tuple[str, str, str], exportconf_measurer: Any, request: pytest.FixtureRequest) -> None:
    system, fmt, stack = exportconf_cell
    outcome = exportconf_measurer.measure(system, fmt, stack)
    override = request.config.hook.pytest_exportconf_grade(outcome=outcome)
    if override is not None:
        if override not in GRADES:
            raise ValueError(f"pytest_exportconf_grade returned {override!r}; grades: {', '.join(GRADES)}")
        outcome.reason = f"grade set by pytest_exportconf_grade hook (rubric said {outcome.grade}); {outcome.reason}"
        outcome.grade, outcome.status = override, GRADE_STATUS[override]
    record(request.node, outcome)
    # A survey measures: every grade is a result. Only a cell that could not be measured fails.
    assert outcome.grade in GRADES, f"{outcome.cell}: no grade"
