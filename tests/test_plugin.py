"""The plugin as pytest sees it, driven with pytester."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import add_test_stack

HEAVY = ("numpy", "tensorflow", "torch", "keras", "sklearn", "onnxruntime", "onnx")


def test_loading_the_plugin_imports_no_framework() -> None:
    code = ("import sys, pytest_exportconf.plugin; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_without_the_flag_the_plugin_stays_out_of_the_way(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f"""
        import sys
        def test_plain():
            assert [m for m in {HEAVY!r} if m in sys.modules] == []
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "exportconf" not in result.stdout.str().replace("exportconf-0", "")
    assert not (pytester.path / "exportconf-results.json").exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--exportconf-formats=onnx,keras",
         "unknown format 'keras'; valid formats: joblib, onnx, pickle, savedmodel, torchscript"),
        ("--exportconf-systems=mnist", "unknown system 'mnist'; valid systems: number_predictor, sentiment"),
        ("--exportconf-frameworks=jax", "unknown framework 'jax'; valid frameworks: sklearn, tensorflow, torch"),
        ("--exportconf-stacks=cobol", "unknown stack 'cobol'; valid stacks:"),
        ("--exportconf-repeats=many", "--exportconf-repeats = 'many': Input should be a valid integer"),
        ("--exportconf-timeout=0", "--exportconf-timeout = '0': Input should be greater than 0"),
        ("--exportconf-seed=-1", "--exportconf-seed = '-1': Input should be greater than or equal to 0"),
    ],
)
def test_unknown_names_are_usage_errors(pytester: pytest.Pytester, option: str, message: str) -> None:
    result = pytester.runpytest_subprocess("--exportconf", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_selection_from_ini_and_command_line(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nexportconf_formats = onnx savedmodel\nexportconf_systems = sentiment\n"
                     "exportconf_stacks = python\n")
    result = pytester.runpytest_subprocess("--exportconf", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_cell[[]sentiment-onnx-python[]]",
                                 "*test_cell[[]sentiment-savedmodel-python[]]"])
    assert "number_predictor" not in result.stdout.str()
    result = pytester.runpytest_subprocess("--exportconf", "--collect-only", "-q", "--exportconf-formats=pickle")
    result.stdout.fnmatch_lines(["*test_cell[[]sentiment-pickle-python[]]", "*1 test collected*"])


def _results(path: Path) -> dict:  # type: ignore[type-arg]
    data = json.loads(path.read_text())
    assert data["schema"] == "exportconf-results/1"
    return data


def test_real_cells_under_xdist(pytester: pytest.Pytester, run_subprocess: Callable[..., pytest.RunResult]) -> None:
    result = run_subprocess("-n", "2", "--exportconf-systems=number_predictor", "--exportconf-stacks=python",
                            "--exportconf-formats=onnx,torchscript", "--junitxml=junit.xml")
    assert result.ret == 0, result.stdout.str()
    out = result.stdout.str()
    assert "warnings summary" not in out, "framework warnings are field notes of their cell"
    assert "exportconf: 2 cells graded" in out
    data = _results(pytester.path / "exportconf-results.json")
    cells = {c["cell"]: c for c in data["cells"]}
    assert set(cells) == {"number_predictor/onnx/python", "number_predictor/torchscript/python"}
    onnx = cells["number_predictor/onnx/python"]
    assert [p["framework"] for p in onnx["producers"]] == ["tensorflow", "torch", "sklearn"]
    tf_row = onnx["producers"][0]
    assert tf_row["primary"] and tf_row["attempts"][0]["route"] == "onnxruntime"
    assert tf_row["attempts"][0]["ok"] and tf_row["attempts"][0]["max_abs_error"] < 1e-3
    assert tf_row["attempts"][0]["p50_ms"] > 0 and tf_row["attempts"][0]["load_ms"] > 0
    assert data["summary"]["cells"] == 2 and sum(data["summary"]["grades"].values()) == 2
    html = (pytester.path / "exportconf-report.html").read_text()
    assert "exportconf: ease of integration" in html and "number_predictor/onnx/python" in html
    assert "not measured" in html and "study (Tables II/III)" in html
    assert "<th>Grade</th>" in html and "<th>Reason</th>" in html
    # JUnit: the grade and a one-line reason, not the whole outcome
    props = {(tc.get("name"), p.get("name")): p.get("value")
             for tc in ET.parse(pytester.path / "junit.xml").iter("testcase") for p in tc.iter("property")}
    onnx_props = {k[1]: v for k, v in props.items() if k[0] == "test_cell[number_predictor-onnx-python]"}
    assert set(onnx_props) == {"exportconf_grade", "exportconf_reason"}
    assert onnx_props["exportconf_grade"] == onnx["grade"] and onnx_props["exportconf_reason"] == " ".join(
        onnx["reason"].split()) and "\n" not in onnx_props["exportconf_reason"]
    # grades are the tests' statuses
    same = sum(1 for c in cells.values() if c["grade"] == onnx["grade"])
    assert f"{same} {onnx['grade']}" in out.splitlines()[-1]


def test_a_crashing_route_fails_its_cell_and_the_run_goes_on(
    pytester: pytest.Pytester, run_subprocess: Callable[..., pytest.RunResult]
) -> None:
    add_test_stack(pytester, 'crashy', 'crashing_routes', 'Crash', 'Fails')
    result = run_subprocess("--exportconf-systems=number_predictor", "--exportconf-formats=onnx",
                            "--exportconf-stacks=crashy,python", "--exportconf-frameworks=sklearn")
    assert result.ret == 0, result.stdout.str()
    cells = {c["cell"]: c for c in _results(pytester.path / "exportconf-results.json")["cells"]}
    crashy = cells["number_predictor/onnx/crashy"]
    assert crashy["grade"] == "--"
    attempts = crashy["producers"][0]["attempts"]
    assert [a["route"] for a in attempts] == ["crash", "fails"]
    assert "worker died (exit status 3)" in attempts[0]["error"]
    assert attempts[1]["error"] == "ValueError: this runtime cannot read the artifact"
    assert cells["number_predictor/onnx/python"]["producers"][0]["attempts"][0]["ok"]


def test_grade_hook_overrides_the_rubric(pytester: pytest.Pytester,
                                         run_subprocess: Callable[..., pytest.RunResult]) -> None:
    pytester.makeconftest("""
        def pytest_exportconf_grade(outcome):
            return "--" if outcome.format == "pickle" else None
    """)
    result = run_subprocess("--exportconf-systems=number_predictor",
                            "--exportconf-formats=pickle,onnx", "--exportconf-frameworks=sklearn", "-v")
    assert result.ret == 0
    cells = {c["cell"]: c for c in _results(pytester.path / "exportconf-results.json")["cells"]}
    assert cells["number_predictor/pickle/python"]["grade"] == "--"
    assert "set by pytest_exportconf_grade" in cells["number_predictor/pickle/python"]["reason"]
    assert cells["number_predictor/onnx/python"]["grade"] != "--"
    result.stdout.fnmatch_lines(["*test_cell[[]number_predictor-pickle-python[]] GRADE --*"])


def test_without_pytest_html_results_still_written(pytester: pytest.Pytester,
                                                   run_subprocess: Callable[..., pytest.RunResult]) -> None:
    result = run_subprocess("-p", "no:html", "--exportconf-systems=number_predictor",
                            "--exportconf-formats=onnx", "--exportconf-frameworks=sklearn")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*no HTML report: it needs pytest-html*"])
    assert (pytester.path / "exportconf-results.json").exists()
    assert not (pytester.path / "exportconf-report.html").exists()


SETUP_CONFTEST = """
    import json, os
    from pathlib import Path

    def pytest_exportconf_setup(setup):
        role = "controller" if setup.controller else "worker"
        marker = Path({marker!r})
        marker.mkdir(exist_ok=True)
        if setup.controller:
            setup.provide("probe", {{"token": os.getpid()}})
            setup.fail("the probe", "it failed on purpose")
        (marker / f"{{role}}-{{os.getpid()}}").write_text(json.dumps(setup.shared("probe")))
"""


def test_setup_runs_once_on_the_controller_and_workers_receive_it(pytester: pytest.Pytester,
                                                                  tmp_path: Path) -> None:
    marker = tmp_path / "setup"
    pytester.makeconftest(SETUP_CONFTEST.format(marker=str(marker)))
    result = pytester.runpytest_subprocess("--exportconf", "-n", "2", "-p", "no:cacheprovider",
                                           "--exportconf-stacks=python", "-k", "no_such_cell")
    out = result.stdout.str()
    files = sorted(p.name.split("-")[0] for p in marker.iterdir())
    assert files == ["controller", "worker", "worker"], files
    (controller,) = [p for p in marker.iterdir() if p.name.startswith("controller")]
    token = json.loads(controller.read_text())
    assert all(json.loads(p.read_text()) == token for p in marker.iterdir()), "workers got the controller's"
    assert out.count("exportconf: the probe unavailable: it failed on purpose") == 1, out


def test_collect_only_provisions_and_writes_nothing(pytester: pytest.Pytester, tmp_path: Path) -> None:
    marker = tmp_path / "setup"
    pytester.makeconftest(SETUP_CONFTEST.format(marker=str(marker)))
    (pytester.path / "exportconf-results.json").write_text("{}")  # an earlier run's results
    result = pytester.runpytest_subprocess("--exportconf", "--collect-only", "-q", "--exportconf-stacks=python")
    result.stdout.fnmatch_lines(["*test_cell[[]number_predictor-onnx-python[]]*"])
    assert not marker.exists(), "no set-up while collecting"
    assert (pytester.path / "exportconf-results.json").read_text() == "{}"
    assert not (pytester.path / ".pytest_cache" / "d" / "exportconf").exists()
    assert not (pytester.path / "exportconf-report.html").exists()


def test_a_failed_node_provision_is_reported_once(pytester: pytest.Pytester,
                                                  run_subprocess: Callable[..., pytest.RunResult],
                                                  tmp_path: Path) -> None:
    result = run_subprocess("-n", "2", "--exportconf-systems=number_predictor", "--exportconf-formats=onnx",
                            "--exportconf-stacks=javascript,typescript", "--exportconf-frameworks=sklearn",
                            f"--exportconf-node={tmp_path / 'no-node-here'}")
    assert result.ret == 0, result.stdout.str()
    out = result.stdout.str() + result.stderr.str()
    assert out.count("exportconf: JavaScript/TypeScript stacks unavailable: no usable Node.js") == 1, out
    assert out.count("node discovery: --exportconf-node override") == 1, "discovered once, by the controller"
    cells = {c["cell"]: c for c in _results(pytester.path / "exportconf-results.json")["cells"]}
    for stack in ("javascript", "typescript"):
        cell = cells[f"number_predictor/onnx/{stack}"]
        assert cell["grade"] == "--"
        errors = [a["error"] for p in cell["producers"] for a in p["attempts"]]
        assert errors and all("no usable Node.js" in e for e in errors), errors


def test_register_reaches_conftests_below_the_rootdir(pytester: pytest.Pytester) -> None:
    """A conftest pytest loads only while collecting a path given (not at start-up) still registers."""
    inner = pytester.path / "checks" / "inner"
    inner.mkdir(parents=True)
    (inner / "conftest.py").write_text(
        "from pytest_exportconf.registry import Stack\n\n"
        "def pytest_exportconf_register(registry):\n"
        "    registry.add_stack(Stack('late', 'Late', 'late'))\n")
    result = pytester.runpytest_subprocess("--exportconf", "--collect-only", "-q", "checks",
                                           "--exportconf-systems=number_predictor", "--exportconf-formats=onnx",
                                           "--exportconf-stacks=python,late", "--strict-markers")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*test_cell[[]number_predictor-onnx-late[]]*"])
    result = pytester.runpytest_subprocess("--exportconf", "--collect-only", "-q", "checks",
                                           "--exportconf-stacks=nowhere")
    assert "unknown stack 'nowhere'; valid stacks: javascript, late, python, typescript" in result.stdout.str()
