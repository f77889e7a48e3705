"""Systems declared by a project that uses exportconf: its own trained model, or artifacts it exported
elsewhere. Declared in ``[tool.exportconf]`` of its pyproject.toml or built in a conftest hook.

Both are checked before anything runs (:mod:`.declarations` for the fields, :meth:`check` for what
needs the registry or the disk); what is wrong is a usage error, never a measured grade.
"""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import declarations
from .compare import Scores, Tolerance
from .digest import tree_digest
from .registry import Exportable, Exporter, ExportResult, Format, System, TensorSpec, resolve

if TYPE_CHECKING:
    from .registry import Registry

Task = Literal["regression", "classification"]
PREBUILT = "prebuilt"  # the framework name of artifacts exported outside exportconf
Inputs = np.ndarray | dict[str, np.ndarray]


def _digest(paths: list[Path]) -> str:
    return tree_digest(paths)


def _specs(inputs: Inputs, single_name: str) -> TensorSpec | tuple[TensorSpec, ...]:
    """Input specs from golden inputs: any batch size, the rest of the shape as given."""
    def spec(name: str, a: np.ndarray) -> TensorSpec:
        return TensorSpec(name, "string" if a.dtype.kind in "OUS" else a.dtype.name, (None, *a.shape[1:]))

    if isinstance(inputs, dict):
        return tuple(spec(n, a) for n, a in inputs.items())
    return spec(single_name, inputs)


def _named(inputs: Inputs, single_name: str) -> dict[str, np.ndarray]:
    return dict(inputs) if isinstance(inputs, dict) else {single_name: inputs}


def _rows(inputs: Inputs) -> list[str]:
    n = len(next(iter(inputs.values()))) if isinstance(inputs, dict) else len(inputs)
    return [f"row {i}" for i in range(n)]


class DeclaredSystem(System):
    """What a project's systems share: validated fields, tolerance, no study grade."""

    name: str  # type: ignore[misc]
    task: Task  # type: ignore[misc]
    outputs: Scores
    atol: float
    rtol: float
    label: str  # type: ignore[misc]
    input_name: str
    trust: bool

    def _validate(self) -> None:
        fields = {k: getattr(self, k) for k in declarations.SystemFields.model_fields}
        declarations.validate(declarations.SystemFields, fields, f"system {fields['name']!r}:")
        self.label = self.label or self.name

    def tolerance(self) -> Tolerance:
        return Tolerance(self.task, atol=self.atol, rtol=self.rtol, scores=self.outputs)

    def check(self, registry: Registry) -> list[str]:
        """What is wrong with the declaration, given what is registered (empty when nothing)."""
        return []


@dataclass
class ModelSystem(DeclaredSystem):
    """A project's own model: ``factory()`` returns ``(model, golden_inputs)`` (or a dict with those keys).

    ``model`` is a trained Keras model, torch module or scikit-learn estimator; the golden inputs are one
    array or a dict of named arrays (in the model's input order). The reference outputs are the
    in-memory model's own outputs on them, every output as the model returns it.
    """

    name: str  # type: ignore[misc]
    framework: str
    factory: Callable[[], Any] | str
    task: Task = "regression"  # type: ignore[misc]
    outputs: Scores = "probabilities"
    atol: float = 1e-4
    rtol: float = 0.0
    label: str = ""  # type: ignore[misc]
    input_name: str = "x"
    trust: bool = False
    _made: tuple[Any, Inputs] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._validate()
        if not isinstance(self.framework, str):
            raise ValueError(f"system {self.name!r}: framework = {self.framework!r}: must be a framework name")
        if not (callable(self.factory) or isinstance(self.factory, str)):
            raise ValueError(f"system {self.name!r}: factory = {self.factory!r}: must be a callable or "
                             "an import path 'package.module:function'")

    @property
    def frameworks(self) -> tuple[str, ...]:
        return (self.framework,)

    def check(self, registry: Registry) -> list[str]:
        found = []
        if self.framework not in registry.frameworks:
            found.append(f"system {self.name!r}: framework = {self.framework!r}: unknown framework; valid "
                         f"frameworks: {', '.join(sorted(f for f in registry.frameworks if f != PREBUILT))}")
        if isinstance(self.factory, str):
            try:
                fn = resolve(self.factory)
            except Exception as e:
                found.append(f"system {self.name!r}: factory = {self.factory!r} does not import: "
                             f"{type(e).__name__}: {e}")
            else:
                if not callable(fn):
                    found.append(f"system {self.name!r}: factory = {self.factory!r} is not callable")
        return found

    def _factory(self) -> Callable[[], Any]:
        return resolve(self.factory) if isinstance(self.factory, str) else self.factory

    def _make(self) -> tuple[Any, Inputs]:
        if self._made is None:
            made = self._factory()()
            if isinstance(made, dict):
                model, inputs = made["model"], made["inputs"]
            else:
                model, inputs = made
            if isinstance(inputs, dict):
                inputs = {str(k): _as_fed(v) for k, v in inputs.items()}
                if not inputs:
                    raise ValueError("the factory returned no golden inputs (an empty dict)")
            else:
                inputs = _as_fed(inputs)
            if self.framework == "torch":
                model.eval()  # the reference must not see dropout or batch-norm updates
            self._made = (model, inputs)
        return self._made

    def golden(self) -> tuple[Inputs, list[str]]:
        inputs = self._make()[1]
        return inputs, _rows(inputs)

    def train(self, framework: str, seed: int) -> list[Exportable]:
        from .stacks.objects import caller_for

        model, inputs = self._make()
        try:
            ref = caller_for(model).call(model, _named(inputs, self.input_name))
        except Exception as e:
            raise ValueError(f"the model rejects its golden inputs: {type(e).__name__}: {e}") from e
        return [Exportable(framework, "plain", model, _specs(inputs, self.input_name), ref)]

    def cache_token(self) -> str:
        """Which factory (two factories in one file are two models) and the source file it lives in."""
        fn = self._factory()
        return f"{fn.__module__}:{fn.__qualname__}:{_digest([Path(inspect.getfile(fn))])}"

    def primary_framework(self, fmt: Format) -> str:
        return self.framework


def _as_fed(value: Any) -> np.ndarray:
    arr = np.asarray(value)
    # what every runtime here is fed; numpy's default float64 is rarely what a model was exported for
    return arr.astype(np.float32) if arr.dtype == np.float64 else arr


@dataclass
class ArtifactSystem(DeclaredSystem):
    """Artifacts exported elsewhere, with golden inputs and expected outputs in an ``.npz`` file: arrays
    ``inputs`` (one input) or ``in:<name>`` (one per input, in the model's order), and ``outputs`` (one
    output) or ``out:<name>`` (every output the model returns)."""

    name: str  # type: ignore[misc]
    artifacts: dict[str, Path]  # format -> file or directory
    golden_file: Path
    task: Task = "regression"  # type: ignore[misc]
    outputs: Scores = "probabilities"
    atol: float = 1e-4
    rtol: float = 0.0
    label: str = ""  # type: ignore[misc]
    input_name: str = "x"
    trust: bool = False
    action = "loading"
    _companions: dict[str, list[Path]] = field(default_factory=dict, repr=False)  # found by check()
    rebuildable = False  # its cache entry is a copy of the user's files: a mismatch is refused, not remade

    def __post_init__(self) -> None:
        self._validate()

    @property
    def frameworks(self) -> tuple[str, ...]:
        return (PREBUILT,)

    def check(self, registry: Registry) -> list[str]:
        where = f"system {self.name!r}:"
        found = [f"{where} artifacts.{fmt}: unknown format; valid formats: {', '.join(sorted(registry.formats))}"
                 for fmt in self.artifacts if fmt not in registry.formats]
        for what, p in [*((f"artifacts.{f}", p) for f, p in self.artifacts.items()), ("golden", self.golden_file)]:
            if not Path(p).exists():
                found.append(f"{where} {what} = {str(p)!r}: no such file")
        for fmt, p in self.artifacts.items():
            if fmt in registry.formats and Path(p).is_file():
                try:  # for the cache key; one that escapes is refused when the cell copies the artifact
                    self._companions[fmt] = [Path(p).parent / c for c in registry.formats[fmt].companions(Path(p))]
                except ValueError:
                    pass
        if Path(self.golden_file).is_file():
            try:
                self._golden()
            except ValueError as e:
                found.append(f"{where} golden: {e}")
        return found

    def _golden(self) -> tuple[Inputs, list[tuple[str | None, np.ndarray]]]:
        try:
            loaded = np.load(self.golden_file, allow_pickle=False)
        except Exception as e:
            raise ValueError(f"{self.golden_file} is not a readable .npz without pickles: {e}") from None
        if isinstance(loaded, np.ndarray):  # a .npy: one array, so no expected outputs beside the inputs
            raise ValueError(f"{self.golden_file} holds one array (a .npy); golden needs a .npz with the inputs "
                             "and the expected outputs: np.savez(path, inputs=X, outputs=model_outputs)")
        with loaded as data:
            arrays = {k: data[k] for k in data.files}
        ins = {k.removeprefix("in:"): a for k, a in arrays.items() if k.startswith("in:")}
        outs: list[tuple[str | None, np.ndarray]] = [(k.removeprefix("out:"), a) for k, a in arrays.items()
                                                      if k.startswith("out:")]
        inputs: Inputs = ins
        if "inputs" in arrays:
            inputs = arrays["inputs"] if not ins else {}
        if "outputs" in arrays:
            outs = [(None, arrays["outputs"])] if not outs else []
        other = sorted(k for k in arrays if k not in ("inputs", "outputs") and not k.startswith(("in:", "out:")))
        if (isinstance(inputs, dict) and not inputs) or not outs or other:
            raise ValueError(f"{self.golden_file} needs the inputs as 'inputs' (one) or 'in:<name>' (several) and "
                             f"the expected outputs as 'outputs' (one) or 'out:<name>' (every output), not both "
                             f"forms of either; it has {sorted(arrays)}")
        return inputs, outs

    def golden(self) -> tuple[Inputs, list[str]]:
        inputs = self._golden()[0]
        return inputs, _rows(inputs)

    def train(self, framework: str, seed: int) -> list[Exportable]:
        inputs, outputs = self._golden()
        return [Exportable(PREBUILT, "plain", None, _specs(inputs, self.input_name), [a for _, a in outputs],
                           output_names=tuple(n for n, _ in outputs))]

    def exporter(self, fmt: Format, framework: str) -> Exporter | None:
        src = self.artifacts.get(fmt.name)
        if src is None or framework != PREBUILT:
            return None

        def copy(ex: Exportable, out: Path) -> ExportResult:
            dest = out / Path(src).name
            if Path(src).is_dir():
                shutil.copytree(src, dest)
                return ExportResult(dest.name, f"pre-exported {src}")
            try:
                companions = fmt.companions(Path(src))  # e.g. ONNX external data beside the graph
            except ValueError as e:  # one that escapes is not copied: the scan refuses the artifact
                companions, notes = [], [f"companions not copied: {e}"]
            else:
                notes = []
            shutil.copy2(src, dest)
            for rel in companions:
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(src).parent / rel, out / rel)
            notes += [f"copied with {', '.join(str(c) for c in companions)}"] if companions else []
            return ExportResult(dest.name, f"pre-exported {src}", notes)

        return copy

    def cache_token(self) -> str:
        files = [Path(p) for p in [*self.artifacts.values(), self.golden_file]]
        return _digest(files + [c for cs in self._companions.values() for c in cs])

    def primary_framework(self, fmt: Format) -> str:
        return PREBUILT


def from_config(entry: Any, root: Path, where: str) -> System:
    """One ``[[tool.exportconf.systems]]`` table -> a system. Paths are relative to ``root``."""
    table = declarations.validate(declarations.SystemTable, entry, where)
    common = {k: getattr(table, k) for k in declarations.SystemFields.model_fields}
    if table.factory is not None:
        assert table.framework is not None  # the schema requires it with a factory
        return ModelSystem(framework=table.framework, factory=table.factory, **common)
    assert table.artifacts is not None and table.golden is not None
    arts = {fmt: root / p for fmt, p in table.artifacts.items()}
    return ArtifactSystem(artifacts=arts, golden_file=root / table.golden, **common)
