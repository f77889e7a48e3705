"""The extension points (system, format, stack, route) and the registry that holds them.

Built-in pieces register through the same ``pytest_exportconf_register`` hook a user's conftest
would use; nothing else in the project names a concrete format or stack.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from .concepts import Friction, RouteKind
from .frameworks import Framework

if TYPE_CHECKING:
    import numpy as np  # annotations only: loading the plugin imports no numpy

    from .compare import Tolerance
    from .snippets import SnippetContext


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name, or "string"
    shape: tuple[int | None, ...]


@dataclass
class Exportable:
    """A trained model in one variant, handed by a system's recipe to the format exporters."""

    framework: str
    variant: str  # "plain" | "embedded" (preprocessing inside) | "separate" (preprocessing as own file)
    model: Any
    input_spec: TensorSpec | tuple[TensorSpec, ...]  # one input, or several in the model's order
    # the in-memory model's outputs on the golden inputs, as the model returns them: one array or a list
    reference: np.ndarray | list[np.ndarray]
    preprocessing: dict[str, Any] | None = None  # the shared spec, for the "separate" variant
    output_names: tuple[str | None, ...] = ()  # names of the reference outputs, where the model has them

    @property
    def input_specs(self) -> tuple[TensorSpec, ...]:
        return (self.input_spec,) if isinstance(self.input_spec, TensorSpec) else tuple(self.input_spec)

    @property
    def references(self) -> list[tuple[str | None, np.ndarray]]:
        import numpy as np  # at run time only: loading the plugin imports no numpy

        outs = [self.reference] if isinstance(self.reference, np.ndarray) else list(self.reference)
        names = list(self.output_names) + [None] * (len(outs) - len(self.output_names))
        return [(n, np.asarray(o)) for n, o in zip(names, outs, strict=False)]


@dataclass
class ExportResult:
    main: str  # path of the artifact to load, relative to the export directory
    exporter: str
    notes: list[str] = field(default_factory=list)
    frictions: list[Friction] = field(default_factory=list)


Exporter = Callable[[Exportable, Path], ExportResult]


class System(abc.ABC):
    """A reference ML-enabled system: data, recipes per framework, golden inputs, tolerance."""

    name: ClassVar[str]
    label: ClassVar[str]
    task: ClassVar[Literal["regression", "classification"]]
    recipe_version: ClassVar[str] = "1"  # bump to invalidate cached artifacts
    in_study: ClassVar[bool] = False  # a reference system of the study: its Table IV grades apply
    study_sizes: ClassVar[dict[str, str]] = {}  # format -> size the study reported
    action: ClassVar[str] = "training"  # what building it means, in messages ("loading" for pre-exported files)
    rebuildable: ClassVar[bool] = True  # a cache entry failing verification is rebuilt (else refused)
    trust: bool = False  # load its artifacts even when the scan finds them dangerous (they stay sandboxed)

    @property
    @abc.abstractmethod
    def frameworks(self) -> tuple[str, ...]: ...

    @abc.abstractmethod
    def tolerance(self) -> Tolerance: ...

    @abc.abstractmethod
    def golden(self) -> tuple[np.ndarray | dict[str, np.ndarray], list[str]]:
        """Golden inputs (a batch: one array, or named arrays in the model's input order) and a short
        description of each row."""

    @abc.abstractmethod
    def train(self, framework: str, seed: int) -> list[Exportable]:
        """Train the model with ``framework`` and return its exportable variants, preferred first."""

    def exporter(self, fmt: Format, framework: str) -> Exporter | None:
        """How this system's model is written in ``fmt``: the format's exporter unless the system
        brings its own artifacts."""
        return fmt.exporters().get(framework)

    def cache_token(self) -> str:
        """Anything outside this package that the trained model depends on (a user's factory code,
        pre-exported files): part of the artifact cache key."""
        return ""

    def primary_framework(self, fmt: Format) -> str:
        """The producer a switch away from counts as ``framework-switch``. The reference systems follow
        the study (the format's primary framework); a system with one framework returns that one."""
        return fmt.primary_framework


class Format(abc.ABC):
    name: ClassVar[str]
    label: ClassVar[str]
    study_label: ClassVar[str]  # the study's name for it (Table IV rows)
    primary_framework: ClassVar[str]
    executes_code_on_load: ClassVar[bool] = False

    @abc.abstractmethod
    def exporters(self) -> dict[str, Exporter]:
        """Framework name -> function writing this format into a directory."""

    def companions(self, artifact: Path) -> list[Path]:
        """Files beside a single-file artifact that it needs (e.g. ONNX external data), relative to its
        directory; raises ValueError for a reference that escapes that directory."""
        return []


@dataclass(frozen=True)
class LoadRequest:
    """What a route receives inside its worker process."""

    artifact: Path
    input_specs: tuple[TensorSpec, ...]  # what the system feeds (after any separate preprocessing), in order

    @property
    def input_spec(self) -> TensorSpec:
        """The only input, for routes of single-input formats."""
        if len(self.input_specs) != 1:
            raise ValueError(f"this route feeds one input; the system feeds {len(self.input_specs)}: "
                             + ", ".join(s.name for s in self.input_specs))
        return self.input_specs[0]


class Loaded(abc.ABC):
    """A model loaded by a route: ``predict`` gives the outputs that are compared; the call that
    :meth:`bind` returns is what the worker times."""

    notes: list[str]
    frictions: list[Friction]
    output_names: list[str] = []  # the outputs' names, where the format has them (else matched by position)

    @abc.abstractmethod
    def predict(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run the golden inputs (name -> array, in the system's order); every output, as returned."""

    def bind(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        """The timed call on these inputs. A route whose ``predict`` adapts the inputs (casts, feeds) may
        do that once here, so that the latency is the runtime's own call, as a plain script times it."""
        return lambda: self.predict(inputs)


class Route(abc.ABC):
    """One way for a stack to run a format. Executed by the long-lived worker of its ``runtime``."""

    name: ClassVar[str]
    kind: ClassVar[RouteKind]
    format: ClassVar[str]
    stack: ClassVar[str]
    runtime: ClassVar[str]  # which long-lived worker executes it (see Registry.runtimes)
    packages: ClassVar[tuple[str, ...]] = ()  # whose versions the outcome records

    @classmethod
    def target(cls) -> str:
        """What the worker is told to run: an import path for Python routes, a name for others."""
        return cls.name

    @classmethod
    def prepare(cls, artifact: Path, out: Path) -> tuple[str, list[str]]:
        """Only for ``converted`` routes: run the conversion step in the pytest process, writing into
        ``out`` (a fresh cache entry); return the converted artifact's path relative to ``out`` and notes."""
        raise NotImplementedError(f"{cls.__name__} is a {cls.kind} route and converts nothing")

    @classmethod
    def snippet(cls, ctx: SnippetContext) -> str:
        """A minimal self-contained program in the stack's language that loads ``ctx.artifact`` the way
        this route does and prints its outputs for the golden inputs (see ``snippets.py``); "" if the
        route writes none."""
        return ""


class PythonRoute(Route):
    """A route run inside the Python load worker (``pytest_exportconf.worker``)."""

    runtime: ClassVar[str] = "python"
    imports: ClassVar[tuple[str, ...]] = ()  # imported (and timed) before the load is timed

    @abc.abstractmethod
    def load(self, req: LoadRequest) -> Loaded:
        """Runs in the worker process: load the artifact with the runtime."""

    @classmethod
    def target(cls) -> str:
        return f"{cls.__module__}:{cls.__qualname__}"

    @classmethod
    def snippet_parts(cls, ctx: SnippetContext) -> tuple[list[str], list[str]] | None:
        """The imports and the body of this route's Python program: the body loads ``ARTIFACT`` and sets
        ``outputs`` from ``x``. Also what a bridge from another stack runs."""
        return None

    @classmethod
    def snippet(cls, ctx: SnippetContext) -> str:
        from .snippets import python_program

        parts = cls.snippet_parts(ctx)
        return python_program(ctx, *parts) if parts else ""


@dataclass(frozen=True)
class Stack:
    name: str
    label: str
    study_column: str  # the study's column (Table IV)


def resolve(ref: str) -> Any:
    """The object an import path ``package.module:attribute.path`` names."""
    module, sep, attr = ref.partition(":")
    if not sep or not attr:
        raise ValueError(f"{ref!r} is not an import path of the form 'package.module:name'")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class UnknownName(ValueError):
    pass


class Registry:
    def __init__(self) -> None:
        self.systems: dict[str, System] = {}
        self.frameworks: dict[str, Framework] = {}
        self.formats: dict[str, Format] = {}
        self.stacks: dict[str, Stack] = {}
        self.routes: list[type[Route]] = []
        # runtime name -> argv of its long-lived worker (speaking docs/protocol.md)
        self.runtimes: dict[str, Callable[[], list[str]]] = {}

    def add_system(self, system: System) -> None:
        from .cache import check_name

        check_name(system.name, "system name")  # it names cache entries: UnsafeName if it could escape

        if system.name in self.systems:
            old = self.systems[system.name]
            what = "a built-in reference system" if old.in_study else f"declared by {type(old).__name__}"
            raise ValueError(f"system {system.name!r} is declared twice (the first is {what}); "
                             "give each system its own name")
        self.systems[system.name] = system

    def add_framework(self, framework: Framework) -> None:
        self.frameworks[framework.name] = framework

    def add_format(self, fmt: Format) -> None:
        self.formats[fmt.name] = fmt

    def add_stack(self, stack: Stack) -> None:
        self.stacks[stack.name] = stack

    def add_route(self, route: type[Route]) -> None:
        self.routes.append(route)

    def applicable(self, system: str, fmt: str) -> bool:
        """Whether any framework of the system can write the format at all (else the cell is n/a)."""
        sys_ = self.systems[system]
        return any(sys_.exporter(self.formats[fmt], fw) for fw in sys_.frameworks)

    def add_runtime(self, name: str, argv: Callable[[], list[str]]) -> None:
        self.runtimes[name] = argv

    def routes_for(self, fmt: str, stack: str) -> list[type[Route]]:
        """The route ladder: registration order within kind, kinds native → converted → bridge/unofficial."""
        from .concepts import ROUTE_KINDS

        found = [r for r in self.routes if r.format == fmt and r.stack == stack]
        return sorted(found, key=lambda r: ROUTE_KINDS.index(r.kind))

    def check(self, kind: str, names: Iterable[str]) -> list[str]:
        """Validate selected names of one kind ("systems", "formats", ...) against the registry."""
        valid = getattr(self, kind)
        names = list(names)
        bad = [n for n in names if n not in valid]
        if bad:
            raise UnknownName(
                f"unknown {kind[:-1]} {', '.join(repr(b) for b in bad)}; valid {kind}: {', '.join(sorted(valid))}"
            )
        return names
