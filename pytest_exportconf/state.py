"""What one pytest process knows about the run, kept in ``config.stash``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .concepts import Outcome
from .registry import Registry
from .requirements import Requirement


@dataclass
class Selection:
    systems: list[str]
    formats: list[str]
    stacks: list[str]
    frameworks: list[str]

    def cells(self, registry: Registry) -> list[tuple[str, str, str]]:
        """Selected cells whose format the system can be written in at all."""
        return [(s, f, st) for s in self.systems for f in self.formats for st in self.stacks
                if registry.applicable(s, f)]


@dataclass
class State:
    registry: Registry
    selection: Selection
    results_path: Path
    cache_dir: Path | None  # None until session start: then pytest's cache directory
    timeout: float
    repeats: int
    seed: int
    sandbox_memory: float = 8.0  # GiB of address space for each sandboxed load
    level: str = "system"  # "runtime" | "system" (see pytest_exportconf.system_level)
    requirements: list[Requirement] = field(default_factory=list)
    expectations_path: Path | None = None
    expected: dict[str, str] = field(default_factory=dict)  # cell -> accepted grade
    update: bool = False  # --exportconf-update: write expectations instead of checking them
    strict: bool = False  # --exportconf-strict: requirements/expectations matching no cell fail the run
    unmatched: list[str] = field(default_factory=list)  # such lines, for the terminal summary
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # controller only: cell -> outcome
    apps_dir: Path | None = None  # an xdist worker at the system level: the controller's app state files


STATE = pytest.StashKey[State]()
