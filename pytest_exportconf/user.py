"""Systems declared by a project that uses exportconf: its own trained model, or artifacts it exported
elsewhere. Declared in ``[tool.exportconf]`` of its pyproject.toml or built in a conftest hook."""

from __future__ import annotations

import hashlib
import inspect
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .compare import Tolerance, normalise
from .registry import Exportable, Exporter, ExportResult, Format, System, TensorSpec, resolve

Task = Literal["regression", "classification"]
PREBUILT = "prebuilt"  # the framework name of artifacts exported outside exportconf


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        files = sorted(p.rglob("*")) if p.is_dir() else [p]
        for f in files:
            if f.is_file():
                h.update(str(f.relative_to(p.parent)).encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


@dataclass
class ModelSystem(System):
    """A project's own model: ``factory()`` returns ``(model, golden_inputs)`` (or a dict with those keys).

    ``model`` is a trained Keras model, torch module or scikit-learn estimator; the reference outputs are
    the in-memory model's own predictions on the golden inputs.
    """

    name: str  # type: ignore[misc]
    framework: str
    factory: Callable[[], Any] | str
    task: Task = "regression"  # type: ignore[misc]
    atol: float = 1e-4
    rtol: float = 0.0
    label: str = ""  # type: ignore[misc]
    input_name: str = "x"
    trust: bool = False
    _made: tuple[Any, np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.label = self.label or self.name

    @property
    def frameworks(self) -> tuple[str, ...]:
        return (self.framework,)

    def tolerance(self) -> Tolerance:
        return Tolerance(self.task, atol=self.atol, rtol=self.rtol)

    def _make(self) -> tuple[Any, np.ndarray]:
        if self._made is None:
            fn = resolve(self.factory) if isinstance(self.factory, str) else self.factory
            made = fn()
            model, inputs = (made["model"], made["inputs"]) if isinstance(made, dict) else made
            inputs = np.asarray(inputs)
            if inputs.dtype == np.float64:  # what every runtime here is fed; numpy's default is float64
                inputs = inputs.astype(np.float32)
            if self.framework == "torch":
                model.eval()  # the reference must not see dropout or batch-norm updates
            self._made = (model, inputs)
        return self._made

    def golden(self) -> tuple[np.ndarray, list[str]]:
        inputs = self._make()[1]
        return inputs, [f"row {i}" for i in range(len(inputs))]

    def train(self, framework: str, seed: int) -> list[Exportable]:
        from .stacks.objects import caller_for

        model, inputs = self._make()
        ref = normalise(caller_for(model).call(model, inputs), self.task)
        dtype = "string" if inputs.dtype.kind in "OUS" else inputs.dtype.name
        spec = TensorSpec(self.input_name, dtype, (None, *inputs.shape[1:]))
        return [Exportable(framework, "plain", model, spec, ref)]

    def cache_token(self) -> str:
        fn = resolve(self.factory) if isinstance(self.factory, str) else self.factory
        return _digest([Path(inspect.getfile(fn))])

    def primary_framework(self, fmt: Format) -> str:
        return self.framework


@dataclass
class ArtifactSystem(System):
    """Artifacts exported elsewhere, with golden inputs and expected outputs in an ``.npz`` file
    (arrays ``inputs`` and ``outputs``)."""

    name: str  # type: ignore[misc]
    artifacts: dict[str, Path]  # format -> file or directory
    golden_file: Path
    task: Task = "regression"  # type: ignore[misc]
    atol: float = 1e-4
    rtol: float = 0.0
    label: str = ""  # type: ignore[misc]
    input_name: str = "x"
    trust: bool = False
    rebuildable = False  # its cache entry is a copy of the user's files: a mismatch is refused, not remade

    def __post_init__(self) -> None:
        self.label = self.label or self.name
        missing = [str(p) for p in [*self.artifacts.values(), self.golden_file] if not Path(p).exists()]
        if missing:
            raise FileNotFoundError(f"system {self.name!r}: no such file: {', '.join(missing)}")

    @property
    def frameworks(self) -> tuple[str, ...]:
        return (PREBUILT,)

    def tolerance(self) -> Tolerance:
        return Tolerance(self.task, atol=self.atol, rtol=self.rtol)

    def _golden(self) -> tuple[np.ndarray, np.ndarray]:
        with np.load(self.golden_file, allow_pickle=False) as data:
            if "inputs" not in data or "outputs" not in data:
                raise ValueError(f"{self.golden_file} needs arrays 'inputs' and 'outputs'; it has {list(data)}")
            return data["inputs"], data["outputs"]

    def golden(self) -> tuple[np.ndarray, list[str]]:
        inputs = self._golden()[0]
        return inputs, [f"row {i}" for i in range(len(inputs))]

    def train(self, framework: str, seed: int) -> list[Exportable]:
        inputs, outputs = self._golden()
        dtype = "string" if inputs.dtype.kind in "OUS" else inputs.dtype.name
        spec = TensorSpec(self.input_name, dtype, (None, *inputs.shape[1:]))
        return [Exportable(PREBUILT, "plain", None, spec, normalise([outputs.astype(np.float64)], self.task))]

    def exporter(self, fmt: Format, framework: str) -> Exporter | None:
        src = self.artifacts.get(fmt.name)
        if src is None or framework != PREBUILT:
            return None

        def copy(ex: Exportable, out: Path) -> ExportResult:
            dest = out / Path(src).name
            (shutil.copytree if Path(src).is_dir() else shutil.copy2)(src, dest)
            return ExportResult(dest.name, f"pre-exported {src}")

        return copy

    def cache_token(self) -> str:
        return _digest([Path(p) for p in [*self.artifacts.values(), self.golden_file]])

    def primary_framework(self, fmt: Format) -> str:
        return PREBUILT


def from_config(entry: dict[str, Any], root: Path) -> System:
    """One ``[[tool.exportconf.systems]]`` table -> a system. Paths are relative to ``root``."""
    known = {"name", "factory", "framework", "artifacts", "golden", "task", "atol", "rtol", "label", "input_name",
             "trust"}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if "name" not in entry:
        raise ValueError("every system needs a 'name'")
    from .cache import check_name

    check_name(str(entry["name"]), "system name")
    common = {k: entry[k] for k in ("task", "atol", "rtol", "label", "input_name", "trust") if k in entry}
    if not isinstance(common.get("trust", False), bool):
        raise ValueError(f"trust must be true or false, not {common['trust']!r}")
    if common.get("task", "regression") not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', not {common['task']!r}")
    if "factory" in entry:
        if "framework" not in entry:
            raise ValueError(f"system {entry['name']!r}: a factory needs 'framework' (tensorflow, torch, sklearn)")
        return ModelSystem(name=entry["name"], framework=entry["framework"], factory=entry["factory"], **common)
    if "artifacts" in entry:
        if "golden" not in entry:
            raise ValueError(f"system {entry['name']!r}: artifacts need 'golden' (an .npz with inputs and outputs)")
        arts = {fmt: root / p for fmt, p in entry["artifacts"].items()}
        return ArtifactSystem(name=entry["name"], artifacts=arts, golden_file=root / entry["golden"], **common)
    raise ValueError(f"system {entry['name']!r} needs either 'factory' (+ 'framework') or 'artifacts' (+ 'golden')")
