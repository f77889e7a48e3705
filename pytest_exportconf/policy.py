"""What a measured cell means for the run: the grade hook's override, then the project's required cells
and its expectations snapshot. The suite's test only measures and asks :func:`settle`."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from .concepts import Outcome
from .expectations import downgrade
from .requirements import violations
from .rubric import GRADE_STATUS, GRADES
from .state import STATE

WARNING_CHARS = 300


def settle(config: pytest.Config, outcome: Outcome) -> list[str]:
    """Apply ``pytest_exportconf_grade`` to ``outcome`` (in place) and return why the cell fails (empty:
    it holds): required grades not met, a grade worse than the expectations file accepts."""
    override = config.hook.pytest_exportconf_grade(outcome=outcome)
    if override is not None:
        if override not in GRADES:
            raise ValueError(f"pytest_exportconf_grade returned {override!r}; grades: {', '.join(GRADES)}")
        outcome.reason = (f"grade set by pytest_exportconf_grade hook (rubric said {outcome.level_grade} at the "
                          f"{outcome.level} level); {outcome.reason}")
        if outcome.system_grade is not None:  # the level grade is what requirements and expectations check
            outcome.system_grade = override
        outcome.grade = override
        outcome.status = GRADE_STATUS[override]  # type: ignore[assignment]  # (as measure.py: a str table)
    state = config.stash[STATE]
    problems = violations(outcome, state.requirements)
    if state.expectations_path is not None and (down := downgrade(outcome, state.expected, state.expectations_path)):
        problems.append(down)
    return problems


def failure_message(outcome: Outcome, problems: list[str]) -> str:
    frictions = "; ".join(f"{f.kind} ({f.detail})" for f in outcome.frictions) or "none"
    return "\n".join([*problems, f"reason: {outcome.reason}", f"frictions: {frictions}"])


def one_line(outcome: Outcome) -> str:
    """The reason for the grade on one line (for JUnit properties and the HTML results table)."""
    return " ".join(outcome.reason.split())


@contextmanager
def field_warnings() -> Iterator[Callable[[], list[str]]]:
    """Warnings the frameworks raise while a cell is measured (deprecations of torch.jit, absl, ...)
    become field notes of that cell instead of entries in the user's warnings summary."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        def notes() -> list[str]:
            seen: dict[str, None] = {}
            for w in caught:
                text = " ".join(str(w.message).split())[:WARNING_CHARS]
                seen[f"{w.category.__name__} from {w.filename.rsplit('/', 1)[-1]}:{w.lineno}: {text}"] = None
            return list(seen)

        yield notes
