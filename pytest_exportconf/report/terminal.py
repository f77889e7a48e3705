"""Terminal summary: the matrix per system and the count of cells per grade."""

from __future__ import annotations

from .. import expectations, rubric
from ..state import State
from .matrix import grade_counts, matrices


def _scan_tag(verdict: str) -> str:
    """The scan verdict beside the grade: 'scan:clean', 'scan:DANGER', 'scan:UNSCANNABLE' (none: no tag)."""
    if not verdict or verdict.startswith("nothing"):
        return ""
    return "scan:clean" if verdict == "clean" else "scan:" + verdict.split(":")[0].upper()


def summary(state: State) -> list[str]:
    system = any(o.system_grade is not None for o in state.outcomes.values())
    title = ("runtime grade / system grade (in the stack's web app), the study's Table IV grade in brackets"
             if system else "measured; the study's Table IV grade in brackets")
    lines = ["", f"exportconf: ease of integration ({title})"]
    for m in matrices(state):
        lines.append(f"  {m.heading}")
        if m.empty_reason:
            lines.append(f"    no cell to measure: {m.empty_reason}")
            continue
        lines.append("    " + f"{'format':<13}" + "".join(f"{c.label:<24}" for c in m.columns))
        for row in m.rows:
            cells = []
            for col, o in zip(m.columns, row.cells, strict=True):
                study = f"[{o.study_grade}]" if o and o.study_grade else ""
                grade = f"{o.grade} / {o.system_grade or 'n/m'}" if o and system else (o.grade if o else "")
                text = f"{grade} {study} {_scan_tag(o.verdict)}".rstrip() if o else (
                    "not measured" if not col.measured else "?")
                cells.append(f"{text:<24}")
            lines.append("    " + f"{row.label:<13}" + "".join(cells))
    for cell, o in sorted(state.outcomes.items()):
        if o.verdict and not o.verdict.startswith(("clean", "nothing")):
            refused = [r for p in o.producers for r in p.refused]
            lines.append(f"exportconf: scan: {cell}: {o.verdict[:160]}" + (f" ({refused[0][:160]})" if refused else ""))
    if state.expected and not state.update:
        d = expectations.drift(state.outcomes, state.expected)
        lines += [f"exportconf: upgrade: {u}" for u in d.upgrades]
        lines += [f"exportconf: missing: {m}" for m in d.missing]
        lines += [f"exportconf: new: {n}" for n in d.new]
    lines += [f"exportconf: {u}" for u in state.unmatched]
    if any(o.executes_code_on_load for o in state.outcomes.values()):
        from ..sandbox import describe

        lines.append(f"exportconf: sandbox for code-executing formats: {describe()}")
    counts = grade_counts(state)
    lines.append("exportconf: " + f"{len(state.outcomes)} cells graded: "
                 + ", ".join(f"{counts.get(g, 0)} {g}" for g in rubric.GRADES))
    return lines
