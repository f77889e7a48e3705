"""A project that uses exportconf in its CI: its own models, required cells, expectations, JUnit."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, clean_env

EXAMPLE = ROOT / "examples" / "ci-project"


def _run(py: Path, project: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([py, "-m", "pytest", "--exportconf", f"--exportconf-cache-dir={cache}",
                           "-p", "no:cacheprovider", *args],
                          cwd=project, capture_output=True, text=True, env=clean_env(), timeout=1200)


def test_example_project_from_the_readme(wheel_python: Path, tmp_path: Path, shared_cache: Path) -> None:
    project = tmp_path / "ci-project"
    shutil.copytree(EXAMPLE, project)
    run = _run(wheel_python, project, shared_cache, "-n", "2", "--junitxml=junit.xml")
    assert run.returncode == 0, run.stdout[-4000:]
    cells = {c["cell"]: c for c in json.loads((project / "exportconf-results.json").read_text())["cells"]}
    expected = {line.split()[0] for line in (EXAMPLE / "exportconf-expectations.txt").read_text().splitlines()
                if line and not line.startswith("#")}
    assert set(cells) == expected  # n/a cells (sklearn -> TorchScript) are not in the matrix
    assert cells["churn/onnx/python"]["primary_framework"] == "sklearn"
    assert cells["churn/onnx/python"]["study_grade"] is None  # the study graded its own systems only
    props = {(tc.get("name"), p.get("name")): p.get("value")
             for tc in ET.parse(project / "junit.xml").iter("testcase") for p in tc.iter("property")}
    assert props[("test_cell[churn-onnx-python]", "exportconf_grade")] == "++"

    # an accepted grade better than what is measured now: a downgrade fails that cell, with the reason
    exp = project / "exportconf-expectations.txt"
    exp.write_text(exp.read_text().replace("churn_torch/onnx/python                  +",
                                           "churn_torch/onnx/python                  ++"))
    run = _run(wheel_python, project, shared_cache)
    assert run.returncode == 1
    assert "churn_torch/onnx/python graded + at the system level, down from ++ in" in run.stdout
    assert "external-data-file (weights in model.onnx.data beside model.onnx)" in run.stdout
    assert "1 failed" in run.stdout

    # accepting the measurement rewrites the file; then the run is clean again
    assert _run(wheel_python, project, shared_cache, "--exportconf-update").returncode == 0
    assert "churn_torch/onnx/python                  +   #" in exp.read_text()
    assert _run(wheel_python, project, shared_cache).returncode == 0


def test_required_cells_fail_with_cell_grade_requirement_and_frictions(
    pytester: pytest.Pytester, run_subprocess: Callable[..., pytest.RunResult]
) -> None:
    shutil.copytree(EXAMPLE, pytester.path, dirs_exist_ok=True)
    (pytester.path / "exportconf-expectations.txt").unlink()  # system-level grades; this run is the runtime level's
    result = run_subprocess("--exportconf-require=churn_torch/*:python>=++", "-m", "system_churn_torch",
                            "--strict-markers")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "*churn_torch/onnx/python graded + at the runtime level, required >= ++ by 'churn_torch/*:python>=++'*",
    ])
    assert "frictions: io-signature-supplied" in result.stdout.str()
    # -m selected only the torch model's cells
    data = json.loads((pytester.path / "exportconf-results.json").read_text())
    assert {c["system"] for c in data["cells"]} == {"churn_torch"}


def test_upgrades_and_missing_cells_are_reported_not_failed(
    pytester: pytest.Pytester, run_subprocess: Callable[..., pytest.RunResult]
) -> None:
    shutil.copytree(EXAMPLE, pytester.path, dirs_exist_ok=True)
    exp = pytester.path / "exportconf-expectations.txt"
    exp.write_text(exp.read_text().replace("churn/onnx/python                        ++",
                                           "churn/onnx/python                        -")
                   + "churn/savedmodel/python  ++\n")
    result = run_subprocess("-k", "churn-", "--exportconf-level=system")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "*upgrade: churn/onnx/python graded ++, up from -*",
        "*missing: churn/savedmodel/python (expected ++) was not measured in this run*",
    ])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--exportconf-require=onnx>=+"], "cannot read requirement 'onnx>=+'; write [[]system/[]]format:stack>=grade"),
        (["--exportconf-require=onnx:fortran>=+"], "unknown stack 'fortran'; valid stacks:*"),
    ],
)
def test_bad_requirements_are_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    result = pytester.runpytest_subprocess("--exportconf", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_bad_project_table_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.exportconf]\nsystems = [{name = "m", factory = "x:y"}]\n')
    result = pytester.runpytest_subprocess("--exportconf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pyproject.toml [[]tool.exportconf[]] systems[[]0[]]: a factory needs 'framework'*"])


def test_pre_exported_artifacts_with_golden_file(pytester: pytest.Pytester,
                                                 run_subprocess: Callable[..., pytest.RunResult]) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    x = np.random.default_rng(3).normal(size=(20, 4)).astype(np.float32)
    model = LinearRegression().fit(x, x @ np.array([1.0, -2.0, 0.5, 3.0]))
    (pytester.path / "models").mkdir()
    (pytester.path / "models" / "lin.onnx").write_bytes(to_onnx(model, x[:1]).SerializeToString())
    np.savez(pytester.path / "models" / "golden.npz", inputs=x[:8], outputs=model.predict(x[:8]))
    pytester.makepyprojecttoml("""
        [tool.pytest.ini_options]
        exportconf_systems = "lin"
        exportconf_stacks = "python"
        [[tool.exportconf.systems]]
        name = "lin"
        artifacts = {onnx = "models/lin.onnx"}
        golden = "models/golden.npz"
        atol = 1e-4
    """)
    result = run_subprocess("--exportconf-require=lin/onnx:python>=++")
    assert result.ret == 0, result.stdout.str()
    cells = {c["cell"]: c for c in json.loads((pytester.path / "exportconf-results.json").read_text())["cells"]}
    assert list(cells) == ["lin/onnx/python"]
    row = cells["lin/onnx/python"]["producers"][0]
    assert row["framework"] == "prebuilt" and row["attempts"][0]["ok"]
    assert row["exporter"].startswith("pre-exported")
