from __future__ import annotations

import pytest

from pytest_exportconf import rubric
from pytest_exportconf.concepts import Friction


def f(*kinds: str) -> list[Friction]:
    return [Friction(k) for k in kinds]


@pytest.mark.parametrize(
    ("passed", "frictions", "grade"),
    [
        (True, [], "++"),
        (True, f("io-signature-supplied"), "+"),
        (True, f("separate-preprocessing", "external-data-file"), "+"),
        (True, f("conversion-step"), "+"),
        (True, f("bridge"), "-"),
        (True, f("framework-switch", "separate-preprocessing"), "-"),
        (True, f("bridge", "framework-switch"), "--"),
        (True, f("bridge", "bridge"), "-"),  # one friction kind counts once
        (False, [], "--"),
    ],
)
def test_grade_from_frictions(passed: bool, frictions: list[Friction], grade: str) -> None:
    assert rubric.grade(passed, frictions) == grade


@pytest.mark.parametrize(("kind", "grade"), [("native", "++"), ("converted", "+"), ("bridge", "-"),
                                             ("unofficial", "-")])
def test_route_kind_implies_friction(kind: str, grade: str) -> None:
    assert rubric.grade(True, rubric.implied(kind)) == grade  # type: ignore[arg-type]


def test_unknown_friction_is_named() -> None:
    with pytest.raises(KeyError, match="unknown friction kind 'nope'; known: bridge"):
        rubric.grade(True, f("nope"))


def test_every_grade_has_a_meaning_and_status() -> None:
    assert set(rubric.GRADE_MEANING) == set(rubric.GRADES) == set(rubric.GRADE_STATUS)
    assert rubric.best(["-", "+", "--"]) == "+"
    assert rubric.best([]) == "--"
