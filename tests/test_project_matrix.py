"""The example project across framework versions: its tox.ini run by real tox, and its GitHub Actions
matrix workflow, whose steps run here as the runner would run them (bash -e, the same environment
variables), on results the example's own suite writes."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, clean_env

EXAMPLE = ROOT / "examples" / "ci-project"
WORKFLOW = EXAMPLE / ".github" / "workflows" / "exportconf-matrix.yml"
SMALL = "--exportconf-systems=churn --exportconf-stacks=python -p no:cacheprovider"
DOWNGRADE_HOOK = '''
def pytest_exportconf_grade(outcome):
    if outcome.format == "onnx":
        return "--"
'''


def _tox_envs() -> dict[str, str]:
    """The example tox.ini's envs and the scikit-learn pin of each."""
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(EXAMPLE / "tox.ini")
    pins = {}
    for line in ini["testenv"]["deps"].strip().splitlines():
        env, _, pin = line.strip().partition(":")
        pins[env] = pin.strip().removeprefix("scikit-learn==")
    return pins


def _workflow() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    doc: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return doc


def _step(job: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in job["steps"] if s.get("name") == name)


def _expand(text: str, matrix: dict[str, str]) -> str:
    out = re.sub(r"\$\{\{\s*matrix\.([\w-]+)\s*\}\}", lambda m: matrix[m.group(1)], text)
    assert "${{" not in out, f"an expression this test cannot evaluate: {out}"
    return out


def _run_step(step: dict[str, Any], cwd: Path, env: dict[str, str],
              matrix: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a step's script as GitHub's runner does (bash -e), with its env: block."""
    step_env = {k: _expand(str(v), matrix or {}) for k, v in (step.get("env") or {}).items()}
    script = _expand(step["run"], matrix or {})
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, capture_output=True, text=True,
                          env={**env, **step_env}, timeout=1800)


def test_workflow_matrix_matches_tox_and_gates_on_diff(tmp_path: Path, shared_cache: Path) -> None:
    wf = _workflow()
    measure, merge = wf["jobs"]["measure"], wf["jobs"]["merge"]
    matrix = measure["strategy"]["matrix"]["include"]
    assert {m["env"]: m["scikit-learn"] for m in matrix} == _tox_envs()  # one job per tox env, same pins
    assert merge["needs"] == "measure" and merge["if"] == "always()"

    project = tmp_path / "ci-project"
    shutil.copytree(EXAMPLE, project)
    summary = tmp_path / "step-summary.md"
    summary.write_text("")
    env = {**clean_env(), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GITHUB_STEP_SUMMARY": str(summary), "EXPORTCONF_CACHE_DIR": str(shared_cache),
           "PYTEST_ADDOPTS": SMALL}  # a small selection of the same command
    entry = next(m for m in matrix if m["env"] == "sklearn19")  # the scikit-learn installed here
    results = project / "results" / "sklearn19.json"

    # a run on main: measured, merged, kept as the baseline
    run = _run_step(_step(measure, "exportconf"), project, env, entry)
    assert run.returncode == 0, run.stdout[-6000:]
    assert json.loads(results.read_text())["env"] == "sklearn19"
    steps = {name: _run_step(_step(merge, name), project, env)
             for name in ("merge", "diff against main", "keep as the baseline")}
    assert all(s.returncode == 0 for s in steps.values()), {n: s.stdout + s.stderr for n, s in steps.items()}
    assert "no baseline for results/sklearn19.json yet" in steps["diff against main"].stdout
    assert (project / "baseline" / "sklearn19.json").is_file()

    # a pull request that downgrades a cell: the measure job fails on its expectation, the gate fails too
    (project / "conftest.py").write_text(DOWNGRADE_HOOK)
    g = next(c["grade"] for c in json.loads(results.read_text())["cells"] if c["cell"] == "churn/onnx/python")
    assert g != "--"
    run = _run_step(_step(measure, "exportconf"), project, env, entry)
    assert run.returncode == 1 and "churn/onnx/python graded -- at the" in run.stdout
    assert "level, down from" in run.stdout
    summary.write_text("")
    assert _run_step(_step(merge, "merge"), project, env).returncode == 0
    gate = _run_step(_step(merge, "diff against main"), project, env)
    assert gate.returncode == 1, gate.stdout
    assert f"FAIL downgrade: churn/onnx/python {g} -> --" in gate.stdout
    text = summary.read_text()
    assert text.startswith("### exportconf drift: ")
    assert "### exportconf diff: 1 failing change(s)" in text
    assert f"| :x: downgrade | `churn/onnx/python` | `{g} -> --` |" in text
    assert (project / "results" / "drift.html").is_file()

    # the pull request fixed: the gate passes again
    (project / "conftest.py").unlink()
    assert _run_step(_step(measure, "exportconf"), project, env, entry).returncode == 0
    assert _run_step(_step(merge, "diff against main"), project, env).returncode == 0


@pytest.fixture
def tox() -> Path:
    exe = Path(sys.executable).parent / "tox"
    if not exe.is_file():
        pytest.skip("tox is not installed (it is in exportconf's dev extra)")
    return exe


def test_tox_runs_the_example_with_one_shared_cache(tox: Path, wheel_python: Path, tmp_path: Path,
                                                    shared_cache: Path) -> None:
    """Real tox, one env: it installs the example and exportconf (from the wheel built for this session)
    and passes through what npm and pip need."""
    dist = wheel_python.parents[2] / "dist"
    project = tmp_path / "ci-project"
    shutil.copytree(EXAMPLE, project)
    env = {**clean_env(), "EXPORTCONF_CACHE_DIR": str(shared_cache),
           "PIP_FIND_LINKS": f"{os.environ.get('PIP_FIND_LINKS', '')} {dist}".strip(),
           "NODE_EXTRA_CA_CERTS": os.environ.get("NODE_EXTRA_CA_CERTS", "/etc/ssl/certs/ca-certificates.crt"),
           "npm_config_fetch_retries": "3"}
    run = subprocess.run([tox, "-e", "sklearn19", "--", "--exportconf-systems=churn",
                          "--exportconf-stacks=python,javascript", "--exportconf-formats=onnx,joblib"],
                         cwd=project, capture_output=True, text=True, env=env, timeout=2400)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    data = json.loads((project / "results" / "sklearn19.json").read_text())
    assert data["env"] == "sklearn19"
    cells = {c["cell"]: c["grade"] for c in data["cells"]}
    assert cells["churn/onnx/javascript"] == "++"  # Node ran inside the tox env
    assert (project / "results" / "sklearn19.html").is_file()
    assert not (project / ".tox" / "exportconf").exists()  # the cache given by EXPORTCONF_CACHE_DIR was used

    probe = ("import os, json; print(json.dumps({k: os.environ.get(k) for k in "
             "('NODE_EXTRA_CA_CERTS', 'npm_config_fetch_retries', 'PIP_FIND_LINKS')}))")
    seen = subprocess.run([tox, "exec", "-e", "sklearn19", "-qq", "--", "python", "-c", probe], cwd=project,
                          capture_output=True, text=True, env=env, timeout=600)
    assert json.loads(seen.stdout.strip().splitlines()[-1]) == {
        k: env[k] for k in ("NODE_EXTRA_CA_CERTS", "npm_config_fetch_retries", "PIP_FIND_LINKS")}
