"""The conformance suite: one test per cell (system, format, stack), collected by ``--exportconf``."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_exportconf.plugin import record
from pytest_exportconf.policy import failure_message, field_warnings, settle


def test_cell(exportconf_cell: tuple[str, str, str], exportconf_measurer: Any, exportconf_prepared: list[str],
              exportconf_system: Any, request: pytest.FixtureRequest) -> None:
    with field_warnings() as warned:
        outcome = exportconf_measurer.measure(*exportconf_cell)
        if exportconf_system is not None:  # --exportconf-level=system: the model inside the stack's web app
            exportconf_system.measure(outcome)
    outcome.warnings = list(dict.fromkeys([*exportconf_prepared, *warned()]))
    # A survey measures: every grade is a result. A cell fails only below what the project requires.
    problems = settle(request.config, outcome)
    record(request.node, outcome)
    if problems:
        pytest.fail(failure_message(outcome, problems), pytrace=False)
