"""The JavaScript and TypeScript stacks: routes run by the Node.js harnesses (``node_harness/``).

Each route is executed by the long-lived harness of its stack's runtime (``node-js``: the plain ESM
harness, ``node-ts``: the strict TypeScript harness compiled with tsc), provisioned by
:mod:`pytest_exportconf.node`. The route classes here only say what runs where; the loading code is
in ``node_harness/src/harness.mjs`` and ``harness.ts``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..concepts import RouteKind
from ..registry import PythonRoute, Route, Stack
from ..snippets import js_print_type
from . import python as py

if TYPE_CHECKING:
    from ..snippets import SnippetContext

JAVASCRIPT = Stack("javascript", "JavaScript", "javascript")
TYPESCRIPT = Stack("typescript", "TypeScript", "typescript")
STACKS: tuple[Stack, ...] = (JAVASCRIPT, TYPESCRIPT)

RUNTIMES = {"javascript": "node-js", "typescript": "node-ts"}


class NodeRoute(Route):
    """A route the Node harness runs by name."""

    packages: ClassVar[tuple[str, ...]] = ()  # npm packages; the harness reports their versions

    @classmethod
    def snippet_parts(cls, ctx: SnippetContext, ts: bool) -> tuple[list[str], list[str]] | None:
        """Imports and body of this route's JS/TS program (see ``snippets.js_program``)."""
        return None

    @classmethod
    def snippet(cls, ctx: SnippetContext) -> str:
        from ..snippets import js_program

        ts = cls.stack == "typescript"
        parts = cls.snippet_parts(ctx, ts)
        return js_program(ctx, ts, *parts) if parts else ""


def _ort_snippet(ctx: SnippetContext, ts: bool, package: str, create: list[str]) -> tuple[list[str], list[str]]:
    dtype = "string" if ctx.text else ctx.input_spec.dtype
    data = "DATA" if ctx.text else "Float32Array.from(DATA)" if dtype == "float32" else "DATA"
    pt = js_print_type(ts)
    return [f'import * as ort from "{package}";'], [
        *create,
        "const name = session.inputNames[0] ?? \"\";",
        "const meta = session.inputMetadata[0];  // the IO signature the session carries",
        "const rank = meta !== undefined && meta.isTensor ? meta.shape.length : SHAPE.length;",
        "const dims = rank === 2 && SHAPE.length === 1 ? [SHAPE[0] ?? 0, 1] : SHAPE;  // an [N, 1] column",
        f'const results = await session.run({{ [name]: new ort.Tensor("{dtype}", {data}, dims) }});',
        f"const printed{pt} = session.outputNames.map((n) => {{",
        "  const t = results[n];",
        "  if (t === undefined) throw new Error(`no output ${n}`);",
        "  return { shape: t.dims.map(Number), data: Array.from(t.data as ArrayLike<number>, Number) };"
        if ts else "  return { shape: t.dims.map(Number), data: Array.from(t.data, Number) };",
        "});",
    ]


class OnnxRuntimeNode(NodeRoute):
    """ONNX Runtime's Node.js binding (N-API, CPU); IO signature from ``session.inputMetadata``."""

    name = "onnxruntime-node"
    kind: ClassVar[RouteKind] = "native"
    format = "onnx"
    packages = ("onnxruntime-node",)

    @classmethod
    def snippet_parts(cls, ctx: SnippetContext, ts: bool) -> tuple[list[str], list[str]]:
        create = ["const session = await ort.InferenceSession.create(ARTIFACT);"]
        return _ort_snippet(ctx, ts, "onnxruntime-node", create)


class OnnxRuntimeWeb(NodeRoute):
    """ONNX Runtime compiled to WebAssembly, run in Node; external ``.data`` files via ``externalData``."""

    name = "onnxruntime-web"
    kind: ClassVar[RouteKind] = "native"
    format = "onnx"
    packages = ("onnxruntime-web",)

    @classmethod
    def snippet_parts(cls, ctx: SnippetContext, ts: bool) -> tuple[list[str], list[str]]:
        folder = ctx.artifact.parent
        external = sorted(p.name for p in folder.iterdir()
                          if p.name != ctx.artifact.name and p.suffix in (".data", ".bin")) if folder.is_dir() else []
        create = ["ort.env.wasm.numThreads = 1;"]
        options = '{ executionProviders: ["wasm"] }'
        if external:  # onnxruntime-web cannot open files itself: pass them as externalData
            create.append("const externalData = " + json.dumps(external) + ".map((p) => ({ path: p, data: "
                          "new Uint8Array(fs.readFileSync(path.join(path.dirname(ARTIFACT), p))) }));")
            options = '{ executionProviders: ["wasm"], externalData }'
        create.append("const session = await ort.InferenceSession.create("
                      f"new Uint8Array(fs.readFileSync(ARTIFACT)), {options});")
        imports, body = _ort_snippet(ctx, ts, "onnxruntime-web", create)
        return ['import fs from "node:fs";', 'import path from "node:path";', *imports], body


class TfjsGraphModel(NodeRoute):
    """SavedModel → ``tensorflowjs_converter`` → a TensorFlow.js graph model, run with ``@tensorflow/tfjs``.

    The converter runs in a tool environment of its own (tensorflowjs 4.22 pins tensorflow 2.19), created
    under ``tools_dir`` on first use; the converted model is cached like the exports.
    """

    name = "tfjs-graph-model"
    kind: ClassVar[RouteKind] = "converted"
    format = "savedmodel"
    packages: ClassVar[tuple[str, ...]] = ("@tensorflow/tfjs",)
    tools_dir: ClassVar[Path | None] = None  # set by configure(); else see tools_root()
    backend: ClassVar[str] = "cpu"

    @classmethod
    def snippet_parts(cls, ctx: SnippetContext, ts: bool) -> tuple[list[str], list[str]]:
        imports = ['import fs from "node:fs";', 'import path from "node:path";',
                   'import * as tf from "@tensorflow/tfjs";']
        body: list[str] = []
        if cls.backend == "wasm":
            imports += ['import { createRequire } from "node:module";',
                        'import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";']
            body += ["// in Node the .wasm files are read from the package's own dist directory",
                     'const wasmMain = createRequire(import.meta.url).resolve("@tensorflow/tfjs-backend-wasm");',
                     'setWasmPaths(path.join(path.dirname(wasmMain), path.sep));']
        dtype = "string" if ctx.text else ctx.input_spec.dtype
        pt = js_print_type(ts)
        body += [
            f'if (!(await tf.setBackend("{cls.backend}"))) throw new Error("backend {cls.backend} did not start");',
            "const json = JSON.parse(fs.readFileSync(ARTIFACT, \"utf8\"));",
            f"const groups{': { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[]' if ts else ''} = "
            "json.weightsManifest;",
            "const shards = groups.flatMap((g) => g.paths.map((p) =>",
            "  fs.readFileSync(path.join(path.dirname(ARTIFACT), p))));",
            "const all = Buffer.concat(shards);",
            "const model = await tf.loadGraphModel(tf.io.fromMemory({ ...json,",
            "  weightSpecs: groups.flatMap((g) => g.weights),",
            "  weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) }));",
            "const input = model.inputs[0];",
            "if (input === undefined) throw new Error(\"the graph model has no input\");",
            "const dims = (input.shape ?? []).length === 2 && SHAPE.length === 1 ? [SHAPE[0] ?? 0, 1] : SHAPE;",
            f'const x = tf.tensor(DATA, dims, "{dtype}");',
            "const out = await model.executeAsync({ [input.name]: x }, model.outputs.map((o) => o.name));",
            f"const list{': tf.Tensor[]' if ts else ''} = Array.isArray(out) ? out : [out];",
            f"const printed{pt} = [];",
            "for (const t of list) printed.push({ shape: t.shape, data: Array.from(await t.data()" +
            (" as ArrayLike<number>" if ts else "") + ", Number) });",
        ]
        return imports, body

    @classmethod
    def tools_root(cls) -> Path:
        """Where tool environments live: shared by every project and run of this user, like pre-commit's
        (a tensorflowjs environment is ~3 GB): configure(tools_dir=...), else $EXPORTCONF_TOOLS_DIR,
        else ~/.cache/exportconf/tools."""
        if TfjsGraphModel.tools_dir is not None:
            return TfjsGraphModel.tools_dir
        env = os.environ.get("EXPORTCONF_TOOLS_DIR")
        return Path(env) if env else Path.home() / ".cache" / "exportconf" / "tools"

    @classmethod
    def prepare(cls, artifact: Path, out: Path) -> tuple[str, list[str]]:
        from ..node import TFJS_TOOL, tool_bin, tool_env

        # A conversion that failed fails again on the same bytes with the same tool: remember it.
        memo = cls.tools_root() / "tfjs-failures" / f"{_tree_digest(artifact, TFJS_TOOL)}.txt"
        if memo.is_file():
            raise RuntimeError(memo.read_text() + "\n(remembered from an earlier run: same artifact bytes, "
                               f"same tool; delete {memo} to retry)")
        root = tool_env(cls.tools_root(), "tfjs", TFJS_TOOL, "import tensorflowjs")
        dest = out / "tfjs"
        argv = [str(tool_bin(root, "tensorflowjs_converter")), "--input_format=tf_saved_model",
                "--output_format=tfjs_graph_model", "--signature_name=serving_default",
                "--saved_model_tags=serve", str(artifact), str(dest)]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["TF_CPP_MIN_LOG_LEVEL"] = "2"
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env, stdin=subprocess.DEVNULL)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0 or not (dest / "model.json").is_file():
            message = (f"tensorflowjs_converter failed (exit status {proc.returncode}): "
                       + _python_error(proc.stderr or proc.stdout))
            if proc.returncode == 1:  # the tool's own verdict, not a kill or a crash: deterministic
                memo.parent.mkdir(parents=True, exist_ok=True)
                memo.write_text(message)
            raise RuntimeError(message)
        tool = ", ".join(TFJS_TOOL)
        (dest / "exportconf-conversion.json").write_text(json.dumps({"frictions": [{
            "kind": "extra-toolchain",
            "detail": f"tensorflowjs_converter ran in a tool environment of its own ({tool}): tensorflowjs "
                      "pins tensorflow 2.19 and fails to import with a newer ydf",
        }]}))
        files = sorted(p.name for p in dest.iterdir() if p.name != "exportconf-conversion.json")
        size = sum((dest / f).stat().st_size for f in files)
        return "tfjs/model.json", [f"converted by tensorflowjs_converter ({tool}) in {seconds:.1f} s: "
                                   f"{', '.join(files)} ({size:,} bytes)"]


def _tree_digest(path: Path, salt: tuple[str, ...]) -> str:
    h = hashlib.sha256(json.dumps(salt).encode())
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:24]


def _python_error(output: str) -> str:
    """The exception a Python tool died with (its last ``XError: ...`` line and what follows), then the
    traceback lines before it."""
    lines = output.strip().splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b", line)]
    if not starts:
        return "\n".join(lines[-12:])
    i = starts[-1]
    return " ".join(line.strip() for line in lines[i:i + 6]) + "\n" + "\n".join(lines[max(0, i - 8):i])


class TfjsGraphModelWasm(TfjsGraphModel):
    """The same graph model on TensorFlow.js's WebAssembly backend (``@tensorflow/tfjs-backend-wasm``)."""

    name = "tfjs-graph-model-wasm"
    packages = ("@tensorflow/tfjs", "@tensorflow/tfjs-backend-wasm")
    backend: ClassVar[str] = "wasm"


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

    @classmethod
    def snippet_parts(cls, ctx: SnippetContext, ts: bool) -> tuple[list[str], list[str]] | None:
        from ..snippets import python_program

        parts = cls.python_route.snippet_parts(ctx)
        if parts is None:
            return None
        program = python_program(ctx, *parts, from_stdin=True)
        pt = js_print_type(ts)
        return ['import { execFileSync } from "node:child_process";'], [
            "// the Python program the bridge runs: the model is loaded by Python, fed over stdin",
            f"const PROGRAM = {json.dumps(program)};",
            'const python = process.env.PYTHON ?? "python3";',
            "const sent = JSON.stringify({ shape: SHAPE, data: Array.from(DATA) });",
            f"const printed{pt} = JSON.parse(",
            '  execFileSync(python, ["-c", PROGRAM], { input: sent, encoding: "utf8" }));',
        ]


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
        ladder: list[type[NodeRoute]] = [OnnxRuntimeNode, OnnxRuntimeWeb, TfjsGraphModel, TfjsGraphModelWasm]
        ladder += [_bridge(fmt, pr) for fmt, pr in BRIDGED]
        out += [_for_stack(route, stack) for route in ladder]
    return tuple(out)


ROUTES: tuple[type[Route], ...] = _routes()


def configure(registry: Any, cache_dir: str | os.PathLike[str], node: str | os.PathLike[str] | None = None,
              log: Callable[[str], None] | None = None, tools_dir: str | os.PathLike[str] | None = None) -> Any:
    """Give the JS/TS routes their runtimes: the Node harnesses provisioned under ``cache_dir/node`` with
    Node discovered from ``node`` (the ``--exportconf-node`` override) onwards; ``tools_dir`` moves the
    converters' tool environments (default: see :meth:`TfjsGraphModel.tools_root`).
    Returns the :class:`~pytest_exportconf.node.NodeRuntimes` (provisioned lazily, on first use)."""
    from ..node import NodeRuntimes

    runtimes = NodeRuntimes(Path(cache_dir) / "node", node, **({"log": log} if log else {}))
    runtimes.register(registry)
    if tools_dir is not None:
        TfjsGraphModel.tools_dir = Path(tools_dir)
    return runtimes


def setup(registry: Any, stacks: list[str], formats: list[str], cache_dir: str | os.PathLike[str],
          node: str | os.PathLike[str] | None, log: Callable[[str], None], provision_now: bool) -> None:
    """Session set-up for these stacks, when selected: register their runtimes and, where the user sees
    it (the controller, before xdist workers start), provision Node and, for SavedModel, the tensorflowjs
    tool environment. A failure is printed; the cells that need Node then fail with the same reason."""
    if not {s.name for s in STACKS} & set(stacks):
        return
    runtimes = configure(registry, cache_dir, node=node, log=log)
    if not provision_now:
        return
    from ..node import TFJS_TOOL, tool_env

    try:
        runtimes.env()
        if TfjsGraphModel.format in formats:
            tool_env(TfjsGraphModel.tools_root(), "tfjs", TFJS_TOOL, "import tensorflowjs", log=log)
    except Exception as e:
        log(f"exportconf: JavaScript/TypeScript stacks unavailable: {e}")
