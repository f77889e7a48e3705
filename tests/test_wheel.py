"""Installed as a wheel into a directory that is not this repository, ``pytest --exportconf`` works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installed_elsewhere(tmp_path: Path, shared_cache: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(dist.glob("exportconf-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # The heavy dependencies come from this environment (a .pth line does not run the project's
    # editable-install hook, so only the wheel's copy of exportconf is importable).
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([py, "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True, capture_output=True)

    project = tmp_path / "someone-elses-project"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    run = subprocess.run(
        [py, "-m", "pytest", "--exportconf", "--exportconf-systems=number_predictor",
         "--exportconf-formats=onnx,pickle", f"--exportconf-cache-dir={shared_cache}", "-p", "no:cacheprovider"],
        cwd=project, capture_output=True, text=True, env=env, timeout=1200,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    where = subprocess.run([py, "-c", "import pytest_exportconf; print(pytest_exportconf.__file__)"],
                           capture_output=True, text=True, cwd=project, env=env).stdout
    assert str(venv) in where, f"imported from {where}, not from the wheel"
    data = json.loads((project / "exportconf-results.json").read_text())
    assert sorted(c["cell"] for c in data["cells"]) == ["number_predictor/onnx/python",
                                                         "number_predictor/pickle/python"]
    assert "exportconf: ease of integration" in (project / "exportconf-report.html").read_text()
