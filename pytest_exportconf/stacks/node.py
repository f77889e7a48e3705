"""The JavaScript and TypeScript stacks: routes run by the Node.js harnesses (``node_harness/``).

Each route is executed by the long-lived harness of its stack's runtime (``node-js``: the plain ESM
entry point, ``node-ts``: the strict TypeScript one; both over one harness core in
``node_harness/src/core/``), provisioned by :mod:`pytest_exportconf.node`. The route classes here
only say what runs where.

This module is a plugin of its own, like a third party's: it registers its stacks and routes with
``pytest_exportconf_register`` and prepares Node (and, for SavedModel, the tensorflowjs tool
environment) with ``pytest_exportconf_setup``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import pytest

from ..concepts import RouteKind
from ..digest import tree_digest
from ..registry import PythonRoute, Registry, Route, Stack
from ..snippets import js_print_type
from ..toolenv import ToolSpec, tool_bin, tool_env, tool_facts
from . import python as py

if TYPE_CHECKING:
    from ..setup import Setup
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


# tensorflowjs 4.22 pins tensorflow 2.19; ydf 0.13: later ones fail to import there (protobuf gencode)
TFJS_TOOL = ToolSpec("tfjs", ("tensorflowjs==4.22.0", "ydf==0.13.0"), "import tensorflowjs",
                     report=("tensorflowjs", "tensorflow", "tf_keras", "ydf"))


def tools_root() -> Path:
    """Where tool environments live: shared by every project and run of this user, like pre-commit's
    (a tensorflowjs environment is ~3 GB): $EXPORTCONF_TOOLS_DIR, else ~/.cache/exportconf/tools."""
    env = os.environ.get("EXPORTCONF_TOOLS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "exportconf" / "tools"


class TfjsGraphModel(NodeRoute):
    """SavedModel → ``tensorflowjs_converter`` → a TensorFlow.js graph model, run with ``@tensorflow/tfjs``.

    The converter runs in a tool environment of its own (:data:`TFJS_TOOL`) under :func:`tools_root`,
    created on first use; the converted model is cached like the exports.
    """

    name = "tfjs-graph-model"
    kind: ClassVar[RouteKind] = "converted"
    format = "savedmodel"
    packages: ClassVar[tuple[str, ...]] = ("@tensorflow/tfjs",)
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
    def prepare(cls, artifact: Path, out: Path) -> tuple[str, list[str]]:
        # A conversion that failed fails again on the same bytes with the same tool: remember it.
        memo = tools_root() / "tfjs-failures" / f"{tree_digest(artifact, salt=TFJS_TOOL.packages, length=24)}.txt"
        if memo.is_file():
            raise RuntimeError(memo.read_text() + "\n(remembered from an earlier run: same artifact bytes, "
                               f"same tool; delete {memo} to retry)")
        root = tool_env(tools_root(), TFJS_TOOL)
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
        # Observed: the converter ran, in an environment other than the one measured; its versions say why.
        installed = tool_facts(root, TFJS_TOOL).get("versions", {})
        versions = ", ".join(f"{k} {v}" for k, v in installed.items()) or "versions not recorded"
        (dest / "exportconf-conversion.json").write_text(json.dumps({"frictions": [{
            "kind": "extra-toolchain",
            "detail": f"tensorflowjs_converter ran in a tool environment of its own ({versions})",
            "source": "observed",
            "evidence": f"$ {' '.join(argv[:1] + [a for a in argv[1:] if a.startswith('--')])} (exit status 0, "
                        f"{seconds:.1f} s) in {root}; requirements {', '.join(TFJS_TOOL.packages)}; installed "
                        f"{versions}",
        }]}))
        files = sorted(p.name for p in dest.iterdir() if p.name != "exportconf-conversion.json")
        size = sum((dest / f).stat().st_size for f in files)
        return "tfjs/model.json", [f"converted by tensorflowjs_converter ({versions}) in {seconds:.1f} s: "
                                   f"{', '.join(files)} ({size:,} bytes)"]


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


@pytest.hookimpl
def pytest_exportconf_register(registry: Registry) -> None:
    for stack in STACKS:
        registry.add_stack(stack)
    for route in ROUTES:
        registry.add_route(route)


@pytest.hookimpl
def pytest_exportconf_setup(setup: Setup) -> None:
    """When a JavaScript/TypeScript stack is selected: provision Node on the controller (and, for
    SavedModel, the tensorflowjs tool environment), hand the environment to the workers, and give both
    stacks their runtimes. A failure is reported once; the cells that need Node then fail with it."""
    if not {s.name for s in STACKS} & set(setup.stacks):
        return
    from ..node import NodeRuntimes

    if setup.controller:
        runtimes = NodeRuntimes.provision(setup.cache_dir / "node", setup.option("node") or None, log=setup.log)
        setup.provide("node", runtimes.info())
        if runtimes.error is not None:
            setup.fail("JavaScript/TypeScript stacks", runtimes.error)
        elif TfjsGraphModel.format in setup.formats:
            try:
                tool_env(tools_root(), TFJS_TOOL, log=setup.log, retry_failed=True)
            except Exception as e:  # remembered beside the environment: workers fail with it, not retry
                setup.fail("SavedModel through tensorflowjs", str(e))
    else:
        info = setup.received("node")
        runtimes = NodeRuntimes.from_info(info) if info else NodeRuntimes(
            error="the run's controller provided no Node environment (was the exportconf plugin set up there?)")
    runtimes.register(setup.registry)
