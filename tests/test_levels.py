"""Requirements, expectations and the grade hook check the grade of the level that was measured: the
system grade where the system level measured the cell (the study's unit), else the runtime grade."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_exportconf import expectations, requirements
from pytest_exportconf.concepts import Outcome
from pytest_exportconf.registry import Registry


def _outcome(grade: str, system_grade: str | None) -> Outcome:
    return Outcome(system="s", format="onnx", stack="python", primary_framework="sklearn", grade=grade,
                   reason="runtime reason", system_grade=system_grade,
                   system_level={"measured": system_grade is not None, "reason": "system reason"})


def _registry() -> Registry:
    reg = Registry()
    reg.check = lambda kind, names: names  # type: ignore[method-assign]  # names are not the point here
    return reg


def test_a_requirement_checks_the_system_grade_where_it_was_measured() -> None:
    req = requirements.parse_all(["onnx:python>=+"], _registry())
    assert requirements.violations(_outcome("++", "-"), req) == [
        "s/onnx/python graded - at the system level, required >= + by 'onnx:python>=+'"]
    assert requirements.violations(_outcome("-", "++"), req) == []
    assert requirements.violations(_outcome("-", None), req) == [  # not measured there: the runtime grade
        "s/onnx/python graded - at the runtime level, required >= + by 'onnx:python>=+'"]


def test_expectations_are_written_and_read_per_level(tmp_path: Path) -> None:
    path = tmp_path / "exp.txt"
    expectations.write(path, {"s/onnx/python": _outcome("++", "+")}, "system")
    text = path.read_text()
    assert "# level: system" in text and "s/onnx/python" in text and "+   # system level: system reason" in text
    assert expectations.read(path, "system") == {"s/onnx/python": "+"}
    msg = expectations.downgrade(_outcome("++", "-"), {"s/onnx/python": "+"}, path)
    assert msg and msg.startswith("s/onnx/python graded - at the system level, down from +")
    with pytest.raises(ValueError, match="holds system-level grades and this run grades at the runtime level"):
        expectations.read(path, "runtime")
    # an update at the other level replaces the file's grades whole: no mixing of units
    expectations.write(path, {"s/pickle/python": _outcome("+", None)}, "runtime")
    assert expectations.read(path, "runtime") == {"s/pickle/python": "+"}


def test_a_file_without_a_level_line_holds_runtime_grades(tmp_path: Path) -> None:
    path = tmp_path / "old.txt"
    path.write_text("# exportconf expectations\ns/onnx/python  ++  # from before the system level\n")
    assert expectations.read(path, "runtime") == {"s/onnx/python": "++"}
    with pytest.raises(ValueError, match="--exportconf-level=runtime"):
        expectations.read(path, "system")


def test_a_level_line_with_a_typo_is_named(tmp_path: Path) -> None:
    path = tmp_path / "typo.txt"
    path.write_text("# level: sytem\ns/onnx/python  ++\n")
    with pytest.raises(ValueError, match=r"typo.txt:1: unknown level 'sytem'; levels: runtime, system"):
        expectations.read(path, "system")
