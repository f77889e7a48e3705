"""The expectations snapshot: the grades a project has accepted, one cell per line.

::

    # exportconf expectations: written by `pytest --exportconf --exportconf-update`
    # level: system
    number_predictor/onnx/python  ++  # onnxruntime (native) on the tensorflow export, plain: no friction

The grades are of the level the file was written at (``# level:``; a file without that line is from
before the system level and holds runtime grades): the system grade where the system level measured
the cell, else the runtime grade (:attr:`Outcome.level_grade`). A run at another level is refused, not
compared with grades of another unit. A later run fails a cell that grades worse than its line (a
downgrade), and reports upgrades, cells missing from the run and cells new to the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import rubric
from .concepts import Outcome
from .fsutil import atomic_write_text
from .system_level import LEVELS

HEADER = ("# exportconf expectations: one cell per line, 'system/format/stack  grade  # why'.\n"
          "# Written by `pytest --exportconf --exportconf-update`; a worse grade fails the run.\n")
LEVEL_PREFIX = "# level:"


def file_level(path: Path) -> str:
    """The level whose grades the file holds (ValueError for a level line naming no level)."""
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith(LEVEL_PREFIX):
            level = line[len(LEVEL_PREFIX):].strip()
            if level not in LEVELS:
                raise ValueError(f"{path}:{n}: unknown level {level!r}; levels: {', '.join(LEVELS)}")
            return level
    return "runtime"


def read(path: Path, level: str) -> dict[str, str]:
    """The file's grades, for a run at ``level`` (ValueError if the file holds another level's)."""
    written = file_level(path)
    if written != level:
        raise ValueError(f"{path} holds {written}-level grades and this run grades at the {level} level: run "
                         f"with --exportconf-level={written}, or keep a file per level (--exportconf-expectations "
                         f"PATH; --exportconf-update writes it)")
    grades: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        parts = body.split()
        if len(parts) != 2 or parts[1] not in rubric.GRADES or parts[0].count("/") != 2:
            raise ValueError(f"{path}:{n}: expected 'system/format/stack grade', got {line.strip()!r}")
        grades[parts[0]] = parts[1]
    return grades


def write(path: Path, outcomes: dict[str, Outcome], level: str) -> None:
    """Write the measured grades; cells this run did not measure keep their old line if the file holds
    this level's grades (another level's are replaced whole)."""
    keep = read(path, level) if path.is_file() and file_level(path) == level else {}
    lines = {cell: f"{cell:<40} {grade:<3}" for cell, grade in keep.items()}
    for cell, o in outcomes.items():
        lines[cell] = f"{cell:<40} {o.level_grade:<3} # {o.level} level: {o.level_reason.splitlines()[0][:150]}"
    atomic_write_text(path, HEADER + f"{LEVEL_PREFIX} {level}\n"
                      + "".join(lines[c].rstrip() + "\n" for c in sorted(lines)))


def downgrade(o: Outcome, expected: dict[str, str], path: Path) -> str | None:
    want = expected.get(o.cell)
    if want is not None and rubric.rank(o.level_grade) > rubric.rank(want):
        return (f"{o.cell} graded {o.level_grade} at the {o.level} level, down from {want} in {path} "
                f"(run with --exportconf-update to accept)")
    return None


@dataclass
class Drift:
    upgrades: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)


def drift(outcomes: dict[str, Outcome], expected: dict[str, str]) -> Drift:
    d = Drift()
    for cell, want in sorted(expected.items()):
        o = outcomes.get(cell)
        if o is None:
            d.missing.append(f"{cell} (expected {want}) was not measured in this run")
        elif rubric.rank(o.level_grade) < rubric.rank(want):
            d.upgrades.append(f"{cell} graded {o.level_grade}, up from {want}: --exportconf-update records it")
    d.new = [f"{c} graded {o.level_grade} is not in the expectations file" for c, o in sorted(outcomes.items())
             if c not in expected]
    return d
