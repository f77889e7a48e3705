"""The runnable snippet per cell: generated from the route that won, run as a user would run it (Python
with this interpreter; JavaScript with the provisioned Node; TypeScript type-checked by tsc --strict,
then run), and its printed outputs compared with the reference the cell was graded against."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from registries import builtin_registry

from pytest_exportconf import tensors
from pytest_exportconf.build import Builder
from pytest_exportconf.cache import ArtifactCache
from pytest_exportconf.compare import compare
from pytest_exportconf.node import NodeEnv, provision

# tsc settings of a strict Node project; skipLibCheck because the runtimes' own .d.ts files fail strict
# checking (the broken-types friction), which is not the snippet's doing
TSC = ["--strict", "--skipLibCheck", "--target", "es2022", "--module", "nodenext", "--moduleResolution", "nodenext",
       "--types", "node"]


def run_snippet(cell: dict[str, Any], env: NodeEnv | None, workdir: Path) -> list[np.ndarray]:
    """Run a cell's snippet in ``workdir``; return the outputs it printed."""
    language, code = cell["snippet_language"], cell["snippet"]
    workdir.mkdir(parents=True, exist_ok=True)
    penv = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHON": sys.executable}
    if language == "python":
        (workdir / "snippet.py").write_text(code)
        argv = [sys.executable, str(workdir / "snippet.py")]
    else:
        assert env is not None
        (workdir / "package.json").write_text(json.dumps({"type": "module", "private": True}))
        if not (workdir / "node_modules").exists():
            (workdir / "node_modules").symlink_to(env.harness / "node_modules")
        if language == "javascript":
            (workdir / "snippet.mjs").write_text(code)
            argv = [*env.node_argv(), str(workdir / "snippet.mjs")]
        else:
            (workdir / "snippet.ts").write_text(code)
            tsc = subprocess.run([*env.node_argv(), str(env.harness / "node_modules/typescript/bin/tsc"), *TSC,
                                  "--outDir", str(workdir / "out"), str(workdir / "snippet.ts")],
                                 cwd=workdir, capture_output=True, text=True, timeout=300)
            assert tsc.returncode == 0, f"tsc --strict rejects the snippet:\n{tsc.stdout}{tsc.stderr}\n{code}"
            argv = [*env.node_argv(), str(workdir / "out" / "snippet.js")]
    proc = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=600, env=penv)
    assert proc.returncode == 0, f"{cell['cell']} snippet failed:\n{proc.stderr[-3000:]}\n{code[:3000]}"
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    return [np.asarray(o["data"], dtype=np.float64).reshape(o["shape"]) for o in printed]


def check_against_reference(cells: dict[str, Any], cache: Path, env: NodeEnv | None, tmp: Path) -> list[str]:
    """Run every cell's snippet and compare with the reference of its winning producer and variant."""
    registry = builtin_registry()
    builder = Builder(registry, ArtifactCache(cache))
    ran = []
    for name, cell in sorted(cells.items()):
        if not cell["snippet"]:
            continue
        framework, variant, _ = cell["winner"].split("/", 2)
        system = registry.systems[cell["system"]]
        want = [(t.get("name"), tensors.decode(t))
                for t in builder.get(cell["system"], framework).variant(variant)["reference"]]
        got: list[tuple[str | None, np.ndarray]] = [
            (None, o) for o in run_snippet(cell, env, tmp / name.replace("/", "-"))]
        cmp = compare(got, want, system.tolerance())
        assert cmp.ok, f"{name}: the snippet's outputs differ from the reference: {cmp.detail}"
        ran.append(name)
    return ran


def test_snippets_of_one_cell_per_stack_print_the_reference(
    pytester: pytest.Pytester, run_subprocess: Callable[..., pytest.RunResult], shared_cache: Path, tmp_path: Path
) -> None:
    result = run_subprocess("-n", "2", "--exportconf-formats=onnx,torchscript")
    assert result.ret == 0, result.stdout.str()[-3000:]
    data = json.loads((pytester.path / "exportconf-results.json").read_text())
    cells = {c["cell"]: c for c in data["cells"]}
    languages = {c["stack"]: c["snippet_language"] for c in cells.values() if c["snippet"]}
    assert languages == {"python": "python", "javascript": "javascript", "typescript": "typescript"}
    # the route that ran wrote the program: a bridge's snippet spawns Python, ONNX Runtime's imports it
    assert "execFileSync(python" in cells["number_predictor/torchscript/javascript"]["snippet"]
    assert 'from "onnxruntime-node"' in cells["number_predictor/onnx/typescript"]["snippet"]
    env = provision(shared_cache / "node", log=lambda m: None)
    ran = check_against_reference(cells, shared_cache, env, tmp_path)
    assert {c.rsplit("/", 1)[1] for c in ran} == {"python", "javascript", "typescript"}
    html = (pytester.path / "exportconf-report.html").read_text()
    assert "Runnable snippet (typescript" in html
