"""The pinned evidence of the built-in suite: what is pinned, how a difference reads, the explicit command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_exportconf import evidence

PIN = Path(__file__).parent / "evidence" / "builtin-cells.json"


FALLBACK = (("exporter-fallback", "observed"),)


def _results(grade: str = "+", kinds: tuple[tuple[str, str], ...] = FALLBACK) -> dict[str, Any]:
    frictions = [{"kind": k, "detail": "d", "source": s, "evidence": "e"} for k, s in kinds]
    return {"cells": [{"cell": "s/f/python", "grade": grade, "winner": "tf/plain/r", "frictions": frictions}]}


def test_a_run_equal_to_the_pin_has_no_difference() -> None:
    assert evidence.differences(evidence.pin(_results()), _results()) == []


@pytest.mark.parametrize(("changed", "line"), [
    (_results(grade="++", kinds=()), "s/f/python: grade pinned '+', measured '++'"),
    (_results(kinds=(("exporter-fallback", "declared"),)),
     "s/f/python: frictions pinned ['exporter-fallback (observed)'], measured ['exporter-fallback (declared)']"),
    ({"cells": []}, "s/f/python: in the pin, not measured"),
])
def test_a_detector_that_changes_what_it_records_is_a_difference(changed: dict[str, Any], line: str) -> None:
    assert line in evidence.differences(evidence.pin(_results()), changed)


def test_update_and_check_are_explicit_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results, pin = tmp_path / "results.json", tmp_path / "pin.json"
    results.write_text(json.dumps(_results()))
    assert evidence.main(["--update", "--from", str(results), "--pin", str(pin)]) == 0
    assert evidence.main(["--check", str(results), "--pin", str(pin)]) == 0
    results.write_text(json.dumps(_results(grade="-", kinds=(("bridge", "observed"),))))
    assert evidence.main(["--check", str(results), "--pin", str(pin)]) == 1
    assert "grade pinned '+', measured '-'" in capsys.readouterr().out


def test_the_checked_in_pin_covers_every_builtin_cell() -> None:
    from registries import builtin_registry

    reg = builtin_registry()
    pinned = json.loads(PIN.read_text())
    assert pinned["schema"] == evidence.PIN_SCHEMA
    expected = {f"{s}/{f}/{t}" for s in reg.systems for f in reg.formats for t in reg.stacks if reg.applicable(s, f)}
    assert set(pinned["cells"]) == expected
    for cell in pinned["cells"].values():
        for f in cell["frictions"]:
            kind, source = f.rsplit(" ", 1)
            assert kind in evidence_kinds() and source in ("(observed)", "(declared)"), f


def evidence_kinds() -> set[str]:
    from pytest_exportconf.rubric import FRICTIONS

    return set(FRICTIONS)
