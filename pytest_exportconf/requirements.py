"""Required cells: ``[system/]format:stack>=grade``, with ``*`` for any name.

Examples: ``onnx:javascript>=+`` (every system), ``*:python>=++``, ``sentiment/onnx:*>=-``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from . import rubric
from .concepts import Outcome
from .registry import Registry

_SPEC = re.compile(r"^\s*(?:(?P<system>[\w.*-]+)/)?(?P<format>[\w.*-]+):(?P<stack>[\w.*-]+)\s*>=\s*"
                   r"(?P<grade>\+\+|\+|--|-)\s*$")


@dataclass(frozen=True)
class Requirement:
    system: str
    format: str
    stack: str
    grade: str
    text: str

    def applies(self, o: Outcome) -> bool:
        return all(want in ("*", got) for want, got in
                   ((self.system, o.system), (self.format, o.format), (self.stack, o.stack)))

    def holds(self, grade: str) -> bool:
        return rubric.rank(grade) <= rubric.rank(self.grade)


def parse(text: str, registry: Registry) -> Requirement:
    m = _SPEC.match(text)
    if not m:
        raise ValueError(f"cannot read requirement {text!r}; write [system/]format:stack>=grade, "
                         f"e.g. 'onnx:javascript>=+' or 'sentiment/*:python>=++' (grades: ++ + - --)")
    req = Requirement(m["system"] or "*", m["format"], m["stack"], m["grade"], text.strip())
    for kind, name in (("systems", req.system), ("formats", req.format), ("stacks", req.stack)):
        if name != "*":
            registry.check(kind, [name])
    return req


def parse_all(texts: Iterable[str], registry: Registry) -> list[Requirement]:
    out = []
    for t in texts:
        for part in t.split(","):
            if part.strip():
                out.append(parse(part, registry))
    return out


def violations(o: Outcome, requirements: Iterable[Requirement]) -> list[str]:
    """Requirements the cell's grade misses: the system grade where the system level measured the cell
    (the study's unit), else the runtime grade; the message names which."""
    return [f"{o.cell} graded {o.level_grade} at the {o.level} level, required >= {r.grade} by '{r.text}'"
            for r in requirements if r.applies(o) and not r.holds(o.level_grade)]


def unmatched(requirements: Iterable[Requirement], cells: Iterable[str]) -> list[str]:
    """A line per requirement that applies to none of the selected cells (``system/format/stack``)."""
    coords = [c.split("/") for c in cells]
    return [f"requirement {r.text!r} matches no selected cell" for r in requirements
            if not any(all(w in ("*", g) for w, g in zip((r.system, r.format, r.stack), c, strict=True))
                       for c in coords)]
