"""The grading rubric, as data, in one place (documented in the README).

A grade is derived from the frictions of a passing attempt only:

* ``++``  a native route passed with no friction;
* ``+``   passed with minor frictions only (a converted route implies a minor ``conversion-step``);
* ``-``   passed with exactly one major friction (bridge, unofficial runtime, framework switch);
* ``--``  nothing passed, or passing needed two or more major frictions.
"""

from __future__ import annotations

from collections.abc import Iterable

from .concepts import Friction, RouteKind, Severity, Source

GRADES: tuple[str, ...] = ("++", "+", "-", "--")  # best first

# Every friction kind the project records, with its severity and what it means.
FRICTIONS: dict[str, tuple[Severity, str]] = {
    "conversion-step": ("minor", "an official converter had to run before the stack could load the artifact"),
    "separate-preprocessing": ("minor", "preprocessing is a second artifact the stack must re-implement and apply"),
    "io-signature-supplied": ("minor", "input dtype/shape had to be supplied; the artifact does not carry them"),
    "external-data-file": ("minor", "weights live in a second file that must be shipped next to the model"),
    "extra-toolchain": ("minor", "a second toolchain or environment was needed to produce a loadable artifact"),
    "environment-locale": ("minor", "loading needed a locale or environment change on the host"),
    "missing-types": ("minor", "the runtime package ships no type definitions"),
    "broken-types": ("minor", "the runtime package's type definitions fail strict checking (skipLibCheck needed)"),
    "input-coercion": ("minor", "the inputs had to be cast or reshaped to what the artifact declares"),
    "exporter-fallback": ("minor", "the documented exporter failed; another entry point of the exporter was used"),
    "framework-config": ("minor", "the web framework needed a configuration entry before the model ran in it"),
    "framework-switch": ("major", "the format's primary framework could not do it; another framework was used"),
    "bridge": ("major", "the stack called a Python worker process to run the model"),
    "unofficial-runtime": ("major", "a third-party runtime, not the format's own, ran the model"),
}

# Frictions a route kind implies by itself.
KIND_FRICTIONS: dict[RouteKind, str | None] = {
    "native": None,
    "converted": "conversion-step",
    "bridge": "bridge",
    "unofficial": "unofficial-runtime",
}

GRADE_MEANING: dict[str, str] = {
    "++": "a native route passes with no friction",
    "+": "passes with minor frictions only",
    "-": "passes only with one major friction",
    "--": "no route passes, or passing needed two or more major frictions",
}

# How a grade reads as an outcome (pass / workaround / fail).
GRADE_STATUS: dict[str, str] = {"++": "pass", "+": "workaround", "-": "workaround", "--": "fail"}


def severity(kind: str) -> Severity:
    try:
        return FRICTIONS[kind][0]
    except KeyError:
        raise KeyError(f"unknown friction kind {kind!r}; known: {', '.join(sorted(FRICTIONS))}") from None


# How a route kind's friction is known. A conversion and a bridge are observed: the converter ran
# (its command is in the notes) and the stack spawned a Python worker. Whether a runtime is the format's
# own is a fact about the runtime, not something a run can see: declared, naming the route's class.
KIND_SOURCES: dict[RouteKind, Source] = {"native": "observed", "converted": "observed", "bridge": "observed",
                                         "unofficial": "declared"}


def implied(kind: RouteKind, evidence: str = "") -> list[Friction]:
    """The friction a route kind implies, with what showed it (the converter's or bridge's run, or for
    ``declared`` ones the route's documented classification)."""
    name = KIND_FRICTIONS[kind]
    return [Friction(name, f"route kind {kind}", KIND_SOURCES[kind], evidence)] if name else []


def grade(passed: bool, frictions: Iterable[Friction]) -> str:
    """Grade one attempt from whether it passed and every friction it carries (implied ones included)."""
    if not passed:
        return "--"
    kinds = {f.kind for f in frictions}  # one friction of a kind counts once
    majors = sum(1 for k in kinds if severity(k) == "major")
    if majors >= 2:
        return "--"
    if majors == 1:
        return "-"
    return "+" if kinds else "++"


def best(grades: Iterable[str]) -> str:
    ranked = sorted(grades, key=GRADES.index)
    return ranked[0] if ranked else "--"


def rank(g: str) -> int:
    """0 for ``++`` … 3 for ``--``; lower is better."""
    return GRADES.index(g)
