"""The structured model every report renders: per system, rows = formats, columns = stacks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .. import study
from ..concepts import Outcome
from ..state import State


@dataclass
class Column:
    stack: str
    label: str
    measured: bool  # False: no such stack registered/selected in this run


@dataclass
class Row:
    format: str
    label: str
    cells: list[Outcome | None]  # aligned with columns; None = not measured


@dataclass
class SystemMatrix:
    system: str
    label: str
    columns: list[Column]
    rows: list[Row]
    in_study: bool  # the study graded this system: its Table IV grades apply
    empty_reason: str = ""  # why no row can be measured, when there is none

    @property
    def heading(self) -> str:
        """The label, with the name beside it only when they differ."""
        return self.label if self.label == self.system else f"{self.label} ({self.system})"


def columns(state: State) -> list[Column]:
    """The study's three columns first (in its order), then any other stack of this run."""
    reg = state.registry
    names = list(study.STACKS) + [s for s in state.selection.stacks if s not in study.STACKS]
    return [Column(n, reg.stacks[n].label if n in reg.stacks else study.STACKS.get(n, n), n in state.selection.stacks)
            for n in names]


def matrices(state: State) -> list[SystemMatrix]:
    reg, cols = state.registry, columns(state)
    out = []
    for system in state.selection.systems:
        rows = []
        for fmt in state.selection.formats:
            if not reg.applicable(system, fmt):
                continue
            cells = [state.outcomes.get(f"{system}/{fmt}/{c.stack}") for c in cols]
            rows.append(Row(fmt, reg.formats[fmt].label, cells))
        sys_ = reg.systems[system]
        empty = "" if rows else (
            f"none of the selected formats ({', '.join(state.selection.formats)}) can be written by "
            f"{system}'s framework(s) ({', '.join(sys_.frameworks)}) or was declared for it")
        out.append(SystemMatrix(system, sys_.label, cols, rows, sys_.in_study, empty))
    return out


def grade_counts(state: State) -> Counter[str]:
    return Counter(o.grade for o in state.outcomes.values())


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, factor in (("MB", 1e6), ("kB", 1e3)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"
