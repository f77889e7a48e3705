"""``[tool.exportconf]`` in the pyproject.toml of a project that uses exportconf.

::

    [tool.exportconf]
    require = ["onnx:python>=++", "*:python>=+"]
    expectations = "exportconf-expectations.txt"

    [[tool.exportconf.systems]]
    name = "churn"
    framework = "sklearn"
    factory = "churn_model:build"        # returns (trained_model, golden_inputs)
    task = "classification"
    atol = 1e-4

    [[tool.exportconf.systems]]
    name = "churn-prebuilt"
    artifacts = {onnx = "models/churn.onnx", joblib = "models/churn.joblib"}
    golden = "models/golden.npz"          # arrays 'inputs' and 'outputs'
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from . import declarations
from .frameworks import Framework
from .registry import Registry, System
from .user import PREBUILT, from_config


@dataclass
class ProjectConfig:
    path: Path | None = None
    systems: list[System] = field(default_factory=list)
    require: list[str] = field(default_factory=list)
    expectations: str | None = None
    strict: bool = False

    def pytest_exportconf_register(self, registry: Registry) -> None:
        for s in self.systems:
            registry.add_system(s)
            if PREBUILT in s.frameworks and PREBUILT not in registry.frameworks:
                registry.add_framework(Framework(PREBUILT, "pre-exported artifacts", ()))


def pyproject(config: pytest.Config) -> Path | None:
    if config.inipath is not None and config.inipath.name == "pyproject.toml":
        return config.inipath
    candidate = config.rootpath / "pyproject.toml"
    return candidate if candidate.is_file() else None


def load(config: pytest.Config) -> ProjectConfig:
    path = pyproject(config)
    if path is None:
        return ProjectConfig()
    try:
        table: Any = tomllib.loads(path.read_text()).get("tool", {}).get("exportconf", {})
    except tomllib.TOMLDecodeError as e:
        raise pytest.UsageError(f"exportconf: cannot read {path}: {e}") from None
    where = f"{path} [tool.exportconf]"
    try:
        # the table's shape first (every key and type), then each system with its own schema
        raw_systems = table.get("systems", []) if isinstance(table, dict) else []
        project = declarations.validate(declarations.ProjectTable, {**table, "systems": []}
                                        if isinstance(table, dict) else table, where)
        if not isinstance(raw_systems, list):
            raise ValueError(f"{where} systems = {raw_systems!r}: must be an array of tables "
                             "[[tool.exportconf.systems]]")
        systems = [from_config(entry, path.parent, f"{where} systems[{i}]") for i, entry in enumerate(raw_systems)]
    except ValueError as e:
        raise pytest.UsageError(f"exportconf: {e}") from None
    require = [project.require] if isinstance(project.require, str) else list(project.require)
    return ProjectConfig(path, systems, require, project.expectations, project.strict)
