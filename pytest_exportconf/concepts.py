"""The vocabulary of the project as plain data: friction, attempt, producer row, outcome.

Everything here is JSON-serialisable through ``to_dict``/``from_dict`` so that outcomes travel on
pytest reports (and thus through pytest-xdist) and end up unchanged in the results file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["minor", "major"]
RouteKind = Literal["native", "converted", "bridge", "unofficial"]
Status = Literal["pass", "workaround", "fail", "error"]
Source = Literal["observed", "declared"]
SOURCES: tuple[Source, ...] = ("observed", "declared")

ROUTE_KINDS: tuple[RouteKind, ...] = ("native", "converted", "bridge", "unofficial")


@dataclass(frozen=True)
class Friction:
    """A recorded fact about what a route needed; severities come from the rubric.

    ``source`` says how it was known: ``observed`` in this run (``evidence`` then holds what was seen:
    the failed plain attempt and its error, the file found, the command that ran) or ``declared`` (a
    documented fact of the format or runtime, which ``evidence`` names).
    """

    kind: str
    detail: str = ""
    source: Source = "observed"
    evidence: str = ""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"friction source {self.source!r}; valid sources: {', '.join(SOURCES)}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "source": self.source, "evidence": self.evidence}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Friction:
        return cls(kind=d["kind"], detail=d.get("detail", ""), source=d.get("source", "observed"),
                   evidence=d.get("evidence", ""))


@dataclass
class Attempt:
    """One route tried on one exported artifact."""

    route: str
    kind: RouteKind
    variant: str
    ok: bool = False
    error: str = ""
    frictions: list[Friction] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    max_abs_error: float | None = None
    min_atol: float | None = None  # smallest absolute tolerance that would have passed
    outputs: list[dict[str, Any]] = field(default_factory=list)  # per reference output: see compare.OutputComparison
    import_ms: float | None = None  # importing the runtime in the worker (paid once per process)
    load_ms: float | None = None
    p50_ms: float | None = None
    versions: dict[str, str] = field(default_factory=dict)
    snippet: str = ""  # a passing attempt's runnable program in the stack's language (see snippets.py)


@dataclass
class ProducerRow:
    """What one framework's export of the cell's format did on the cell's stack."""

    framework: str
    primary: bool
    exported: bool = False
    export_error: str = ""
    exporter: str = ""
    size_bytes: int | None = None
    files: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    grade: str = "--"
    winner: int | None = None  # index into attempts
    frictions: list[Friction] = field(default_factory=list)  # of the winning attempt, incl. implied ones
    # security, beside the grade: the scan verdict per variant (scan.Verdict.to_dict), the cache check,
    # and why a variant was refused (dangerous and not trusted, or failed verification)
    verdict: str = ""  # "clean", "dangerous: builtins.exec", ... (the worst over the variants)
    scans: dict[str, dict[str, Any]] = field(default_factory=dict)
    integrity: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """What one cell (system, format, stack) measured, and the grade derived from it."""

    system: str
    format: str
    stack: str
    primary_framework: str
    producers: list[ProducerRow] = field(default_factory=list)
    grade: str = "--"
    status: Status = "fail"
    reason: str = ""
    winner: str = ""  # "framework/variant/route" of the attempt the grade comes from
    frictions: list[Friction] = field(default_factory=list)
    study_grade: str | None = None
    executes_code_on_load: bool = False
    snippet: str = ""  # the winning attempt's runnable program
    snippet_language: str = ""  # python | javascript | typescript
    warnings: list[str] = field(default_factory=list)  # raised by the frameworks while measuring: field notes
    verdict: str = ""  # the scan verdict of the artifact graded (else the worst one): beside the grade
    # The system level (pytest_exportconf.system_level): the model inside the stack's web app.
    system_grade: str | None = None  # None: not measured at that level
    system_level: dict[str, Any] | None = None  # what it measured (see docs/results-schema.md)

    @property
    def level_grade(self) -> str:
        """The grade compared with the study: the system level's when measured (the study's unit)."""
        return self.system_grade if self.system_grade is not None else self.grade

    @property
    def level(self) -> str:
        """The level :attr:`level_grade` comes from."""
        return "system" if self.system_grade is not None else "runtime"

    @property
    def level_reason(self) -> str:
        """Why the cell has its :attr:`level_grade`."""
        reason = (self.system_level or {}).get("reason") if self.system_grade is not None else None
        return str(reason) if reason else self.reason

    @property
    def cell(self) -> str:
        return f"{self.system}/{self.format}/{self.stack}"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["cell"] = self.cell
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Outcome:
        d = dict(d)
        d.pop("cell", None)
        producers = []
        for p in d.pop("producers", []):
            p = dict(p)
            attempts = []
            for a in p.pop("attempts", []):
                a = dict(a)
                a["frictions"] = [Friction.from_dict(f) for f in a.get("frictions", [])]
                attempts.append(Attempt(**a))
            p["frictions"] = [Friction.from_dict(f) for f in p.get("frictions", [])]
            producers.append(ProducerRow(attempts=attempts, **p))
        d["frictions"] = [Friction.from_dict(f) for f in d.get("frictions", [])]
        return cls(producers=producers, **d)
