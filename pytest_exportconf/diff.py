"""``exportconf diff OLD.json NEW.json``: what changed between two runs, cell by cell.

Downgrades fail (exit status 1) so that a pull request can be gated on the previous main's results;
``--fail-on`` adds other kinds of change (``missing``, ``new``, ``upgrade``, ``changed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import rubric
from .resultsfile import Results

KINDS = ("downgrade", "upgrade", "new", "missing", "changed")  # "changed": same grade, other frictions/route


@dataclass(frozen=True)
class Change:
    kind: str
    cell: str
    old: str | None  # grade, None when the cell is new
    new: str | None  # grade, None when the cell is missing
    why: str


@dataclass
class Diff:
    old: Results
    new: Results
    changes: list[Change] = field(default_factory=list)

    def of(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    def counts(self) -> dict[str, int]:
        return {k: len(self.of(k)) for k in KINDS}


def friction_kinds(cell: dict[str, Any]) -> list[str]:
    return sorted({f["kind"] for f in cell.get("frictions", [])})


def friction_delta(old: dict[str, Any], new: dict[str, Any]) -> str:
    """'+bridge -conversion-step' style: frictions the new cell has that the old one lacked, and back."""
    a, b = set(friction_kinds(old)), set(friction_kinds(new))
    parts = [f"+{k}" for k in sorted(b - a)] + [f"-{k}" for k in sorted(a - b)]
    return " ".join(parts)


def primary_failure(cell: dict[str, Any]) -> str:
    """Why the format's primary producer did not pass, '' when it did: its export error, else the error of
    its first failed attempt (what a framework-switch or a worse grade usually comes from)."""
    for producer in cell.get("producers", []):
        if not producer.get("primary"):
            continue
        if not producer.get("exported", True) and producer.get("export_error"):
            return f"{producer['framework']} export failed: {producer['export_error']}"
        if producer.get("winner") is None:
            errors = [a.get("error", "") for a in producer.get("attempts", []) if a.get("error")]
            if errors:
                return f"{producer['framework']} export did not run: {errors[0]}"
    return ""


def _short(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def explain(old: dict[str, Any] | None, new: dict[str, Any] | None) -> str:
    """One line on why a cell moved: the friction change, the winning route change, the new reason."""
    if old is None and new is not None:
        return str(new.get("reason", ""))
    if new is None and old is not None:
        return f"not measured in the new run (was: {old.get('reason', '')})"
    assert old is not None and new is not None
    parts = []
    delta = friction_delta(old, new)
    if delta:
        parts.append(f"frictions {delta}")
    if old.get("winner", "") != new.get("winner", ""):
        parts.append(f"route {old.get('winner') or 'none'} -> {new.get('winner') or 'none'}")
    if (failure := primary_failure(new)) and failure != primary_failure(old):
        parts.append(_short(failure))
    parts.append(f"now: {new.get('reason', '')}")
    return "; ".join(parts)


def diff(old: Results, new: Results) -> Diff:
    out = Diff(old, new)
    for cell in sorted(set(old.cells) | set(new.cells)):
        a, b = old.cells.get(cell), new.cells.get(cell)
        if a is None:
            assert b is not None
            out.changes.append(Change("new", cell, None, b["grade"], explain(None, b)))
        elif b is None:
            out.changes.append(Change("missing", cell, a["grade"], None, explain(a, None)))
        elif rubric.rank(b["grade"]) > rubric.rank(a["grade"]):
            out.changes.append(Change("downgrade", cell, a["grade"], b["grade"], explain(a, b)))
        elif rubric.rank(b["grade"]) < rubric.rank(a["grade"]):
            out.changes.append(Change("upgrade", cell, a["grade"], b["grade"], explain(a, b)))
        elif friction_kinds(a) != friction_kinds(b) or a.get("winner", "") != b.get("winner", ""):
            out.changes.append(Change("changed", cell, a["grade"], b["grade"], explain(a, b)))
    return out


def version_changes(old: Results, new: Results) -> list[str]:
    """'tensorflow-cpu 2.16.2 -> 2.21.0' for every recorded version that differs."""
    a, b = old.versions(), new.versions()
    return [f"{k} {a.get(k, 'not recorded')} -> {b.get(k, 'not recorded')}" for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k)]


def parse_fail_on(text: str) -> set[str]:
    kinds = {k.strip() for k in text.replace(" ", ",").split(",") if k.strip()}
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise ValueError(f"unknown --fail-on kind(s) {', '.join(unknown)}; valid kinds: {', '.join(KINDS)}")
    return kinds | {"downgrade"}


def failing(d: Diff, fail_on: set[str]) -> list[Change]:
    return [c for c in d.changes if c.kind in fail_on]


def _grades(c: Change) -> str:
    return f"{c.old or '(none)'} -> {c.new or '(none)'}"


def render_text(d: Diff, fail_on: set[str]) -> str:
    lines = [f"exportconf diff: {d.old.path} ({d.old.name}) -> {d.new.path} ({d.new.name})"]
    versions = version_changes(d.old, d.new)
    lines.append("versions: " + ("; ".join(versions) if versions else "no recorded version differs"))
    for kind in KINDS:
        for c in d.of(kind):
            mark = "FAIL " if kind in fail_on else ""
            lines.append(f"{mark}{kind}: {c.cell} {_grades(c)}: {c.why}")
    counts = ", ".join(f"{n} {k}" for k, n in d.counts().items())
    same = len(set(d.old.cells) & set(d.new.cells)) - sum(len(d.of(k)) for k in ("downgrade", "upgrade", "changed"))
    bad = failing(d, fail_on)
    lines.append(f"exportconf diff: {counts}, {same} unchanged; failing on {', '.join(sorted(fail_on))}: "
                 + (f"{len(bad)} failing change(s)" if bad else "ok"))
    return "\n".join(lines)


def render_markdown(d: Diff, fail_on: set[str]) -> str:
    from .merge import md_escape

    bad = failing(d, fail_on)
    head = "### exportconf diff: " + (f"{len(bad)} failing change(s)" if bad else "no failing change")
    lines = [head, "", f"`{d.old.name}` -> `{d.new.name}`", ""]
    versions = version_changes(d.old, d.new)
    if versions:
        lines += ["Versions: " + "; ".join(f"`{v}`" for v in versions), ""]
    if not d.changes:
        return "\n".join([*lines, "No cell changed."]) + "\n"
    lines += ["| change | cell | grade | why |", "|---|---|---|---|"]
    for kind in KINDS:
        for c in d.of(kind):
            icon = ":x: " if kind in fail_on else ""
            lines.append(f"| {icon}{kind} | `{c.cell}` | `{_grades(c)}` | {md_escape(c.why)} |")
    return "\n".join(lines) + "\n"
