"""The conformance suite: one test per cell (system, format, stack), collected by ``--exportconf``."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_exportconf.expectations import downgrade
from pytest_exportconf.plugin import record
from pytest_exportconf.requirements import violations
from pytest_exportconf.rubric import GRADE_STATUS, GRADES
from pytest_exportconf.state import STATE


def test_cell(exportconf_cell: tuple[str, str, str], exportconf_measurer: Any, exportconf_system: Any,
              request: pytest.FixtureRequest) -> None:
    system, fmt, stack = exportconf_cell
    outcome = exportconf_measurer.measure(system, fmt, stack)
    if exportconf_system is not None:  # --exportconf-level=system: the model inside the stack's web app
        exportconf_system.measure(outcome)
    override = request.config.hook.pytest_exportconf_grade(outcome=outcome)
    if override is not None:
        if override not in GRADES:
            raise ValueError(f"pytest_exportconf_grade returned {override!r}; grades: {', '.join(GRADES)}")
        outcome.reason = f"grade set by pytest_exportconf_grade hook (rubric said {outcome.grade}); {outcome.reason}"
        outcome.grade, outcome.status = override, GRADE_STATUS[override]
    record(request.node, outcome)
    # A survey measures: every grade is a result. A cell fails only below what the project requires.
    state = request.config.stash[STATE]
    problems = violations(outcome, state.requirements)
    if state.expectations_path is not None and (down := downgrade(outcome, state.expected, state.expectations_path)):
        problems.append(down)
    if problems:
        frictions = "; ".join(f"{f.kind} ({f.detail})" for f in outcome.frictions) or "none"
        pytest.fail("\n".join([*problems, f"reason: {outcome.reason}", f"frictions: {frictions}"]), pytrace=False)
