"""The JavaScript and TypeScript stacks: routes run by the Node.js harnesses (``node_harness/``).

Each route is executed by the long-lived harness of its stack's runtime (``node-js``: the plain ESM
harness, ``node-ts``: the strict TypeScript harness compiled with tsc), provisioned by
:mod:`pytest_exportconf.node`. The route classes here only say what runs where; the loading code is
in ``node_harness/src/harness.mjs`` and ``harness.ts``.
"""

from __future__ import annotations

from typing import ClassVar

from ..concepts import RouteKind
from ..registry import PythonRoute, Route, Stack
from . import python as py

JAVASCRIPT = Stack("javascript", "JavaScript (Node.js)", "javascript")
TYPESCRIPT = Stack("typescript", "TypeScript (Node.js)", "typescript")
STACKS: tuple[Stack, ...] = (JAVASCRIPT, TYPESCRIPT)

RUNTIMES = {"javascript": "node-js", "typescript": "node-ts"}


class NodeRoute(Route):
    """A route the Node harness runs by name."""

    packages: ClassVar[tuple[str, ...]] = ()  # npm packages; the harness reports their versions


class OnnxRuntimeNode(NodeRoute):
    """ONNX Runtime's Node.js binding (N-API, CPU); IO signature from ``session.inputMetadata``."""

    name = "onnxruntime-node"
    kind: ClassVar[RouteKind] = "native"
    format = "onnx"
    packages = ("onnxruntime-node",)


class OnnxRuntimeWeb(NodeRoute):
    """ONNX Runtime compiled to WebAssembly, run in Node; external ``.data`` files via ``externalData``."""

    name = "onnxruntime-web"
    kind: ClassVar[RouteKind] = "native"
    format = "onnx"
    packages = ("onnxruntime-web",)


class PythonBridge(NodeRoute):
    """The study's workaround: a Python load worker spawned from Node with ``child_process``.

    The harness forwards the request to ``python -m pytest_exportconf.worker`` with the Python stack's
    route for the format (``python_route``); a separate variant's preprocessing runs in JS/TS first.
    """

    name = "python-bridge"
    kind: ClassVar[RouteKind] = "bridge"
    python_route: ClassVar[type[PythonRoute]]

    @classmethod
    def target(cls) -> str:
        return f"{cls.name}:{cls.python_route.target()}"


def _bridge(fmt: str, python_route: type[PythonRoute]) -> type[PythonBridge]:
    return type(f"PythonBridge_{fmt}", (PythonBridge,), {
        "format": fmt, "python_route": python_route, "packages": python_route.packages,
        "__module__": __name__, "__doc__": f"{fmt} through the Python bridge ({python_route.target()}).",
    })


def _for_stack(route: type[NodeRoute], stack: Stack) -> type[NodeRoute]:
    """The same route on one stack (its runtime is that stack's harness)."""
    return type(f"{route.__name__}_{stack.name}", (route,), {
        "stack": stack.name, "runtime": RUNTIMES[stack.name], "__module__": __name__, "__doc__": route.__doc__,
    })


BRIDGED: tuple[tuple[str, type[PythonRoute]], ...] = (
    ("torchscript", py.TorchJit),
    ("pickle", py.PickleLoad),
    ("joblib", py.JoblibLoad),
    ("savedmodel", py.TfSavedModel),
)



def _routes() -> tuple[type[Route], ...]:
    out: list[type[Route]] = []
    for stack in STACKS:
        ladder: list[type[NodeRoute]] = [OnnxRuntimeNode, OnnxRuntimeWeb]
        ladder += [_bridge(fmt, pr) for fmt, pr in BRIDGED]
        out += [_for_stack(route, stack) for route in ladder]
    return tuple(out)


ROUTES: tuple[type[Route], ...] = _routes()
