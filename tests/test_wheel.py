"""Installed as a wheel into a directory that is not this repository, ``pytest --exportconf`` works."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import clean_env


def test_wheel_installed_elsewhere(wheel_python: Path, tmp_path: Path, shared_cache: Path) -> None:
    py = wheel_python
    project = tmp_path / "someone-elses-project"
    project.mkdir()
    env = clean_env()
    run = subprocess.run(
        [py, "-m", "pytest", "--exportconf", "--exportconf-systems=number_predictor",
         "--exportconf-formats=onnx,pickle", "--exportconf-stacks=python,javascript",
         f"--exportconf-cache-dir={shared_cache}", "-p", "no:cacheprovider"],
        cwd=project, capture_output=True, text=True, env=env, timeout=1200,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    where = subprocess.run([py, "-c", "import pytest_exportconf; print(pytest_exportconf.__file__)"],
                           capture_output=True, text=True, cwd=project, env=env).stdout
    assert str(py.parents[1]) in where, f"imported from {where}, not from the wheel"
    data = json.loads((project / "exportconf-results.json").read_text())
    cells = {c["cell"]: c for c in data["cells"]}
    assert sorted(cells) == [f"number_predictor/{f}/{s}" for f in ("onnx", "pickle") for s in ("javascript", "python")]
    # the Node harness shipped inside the wheel ran: ONNX natively, Pickle through the Python bridge
    assert cells["number_predictor/onnx/javascript"]["winner"] == "tensorflow/plain/onnxruntime-node"
    assert cells["number_predictor/pickle/javascript"]["winner"].endswith("/python-bridge")
    assert "exportconf: ease of integration" in (project / "exportconf-report.html").read_text()
