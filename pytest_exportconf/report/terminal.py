"""Terminal summary: the matrix per system and the count of cells per grade."""

from __future__ import annotations

from .. import expectations, rubric
from ..state import State
from .matrix import grade_counts, matrices


def summary(state: State) -> list[str]:
    system = any(o.system_grade is not None for o in state.outcomes.values())
    title = ("runtime grade / system grade (in the stack's web app), the study's Table IV grade in brackets"
             if system else "measured; the study's Table IV grade in brackets")
    lines = ["", f"exportconf: ease of integration ({title})"]
    for m in matrices(state):
        lines.append(f"  {m.label} ({m.system})")
        lines.append("    " + f"{'format':<13}" + "".join(f"{c.label:<18}" for c in m.columns))
        for row in m.rows:
            cells = []
            for col, o in zip(m.columns, row.cells, strict=True):
                study = f"[{o.study_grade}]" if o and o.study_grade else ""
                grade = f"{o.grade} / {o.system_grade or 'n/m'}" if o and system else (o.grade if o else "")
                cells.append(f"{(grade + ' ' + study) if o else ('not measured' if not col.measured else '?'):<18}")
            lines.append("    " + f"{row.label:<13}" + "".join(cells))
    if state.expected and not state.update:
        d = expectations.drift(state.outcomes, state.expected)
        lines += [f"exportconf: upgrade: {u}" for u in d.upgrades]
        lines += [f"exportconf: missing: {m}" for m in d.missing]
        lines += [f"exportconf: new: {n}" for n in d.new]
    counts = grade_counts(state)
    lines.append("exportconf: " + f"{len(state.outcomes)} cells graded: "
                 + ", ".join(f"{counts.get(g, 0)} {g}" for g in rubric.GRADES))
    return lines
