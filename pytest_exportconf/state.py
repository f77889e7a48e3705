"""What one pytest process knows about the run, kept in ``config.stash``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .concepts import Outcome
from .registry import Registry


@dataclass
class Selection:
    systems: list[str]
    formats: list[str]
    stacks: list[str]
    frameworks: list[str]

    def cells(self) -> list[tuple[str, str, str]]:
        return [(s, f, st) for s in self.systems for f in self.formats for st in self.stacks]


@dataclass
class State:
    registry: Registry
    selection: Selection
    results_path: Path
    cache_dir: Path | None  # None: under pytest's cache directory
    timeout: float
    repeats: int
    seed: int
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # controller only: cell -> outcome


STATE = pytest.StashKey[State]()
