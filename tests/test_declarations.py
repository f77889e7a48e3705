"""A project's declarations: checked before anything runs; a broken one is an error, never a grade."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx  # imported here, before pytester's sys.modules snapshot: its C extension cannot be loaded twice
import pytest
from onnx import TensorProto, helper, numpy_helper

SYSTEM = '[[tool.exportconf.systems]]\nname = "m"\nframework = "sklearn"\nfactory = "mymodels:linear"\n'
MODELS = """
import numpy as np

def data(n=64, features=4):
    x = np.random.default_rng(0).normal(size=(n, features)).astype(np.float32)
    return x, x @ np.arange(1.0, features + 1)

def linear():
    from sklearn.linear_model import LinearRegression
    x, y = data()
    return LinearRegression().fit(x, y), x[:8]

def broken():
    raise RuntimeError("the data warehouse is down")

def wrong_width():
    from sklearn.linear_model import LinearRegression
    x, y = data()
    return LinearRegression().fit(x, y), x[:8, :3]
"""


def usage_error(pytester: pytest.Pytester, toml: str, *args: str) -> str:
    pytester.makepyprojecttoml(toml)
    pytester.makepyfile(mymodels=MODELS)
    result = pytester.runpytest_subprocess("--exportconf", "-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    return result.stderr.str()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (SYSTEM + "colour = 'red'\n", "systems[0].colour: unknown key"),
        ('[tool.exportconf]\nrequire = 5\n', "require = 5: Input should be a valid"),
        ('[tool.exportconf]\nthresholds = 1\n', "[tool.exportconf] thresholds: unknown key"),
        ('[[tool.exportconf.systems]]\nname = 123\nframework = "sklearn"\nfactory = "mymodels:linear"\n',
         "systems[0].name = 123: Input should be a valid string"),
        ('[[tool.exportconf.systems]]\nname = "p"\nartifacts = "x"\ngolden = "g.npz"\n',
         "systems[0].artifacts = 'x': Input should be a valid dictionary"),
        ('[[tool.exportconf.systems]]\nname = "p"\nartifacts = {onnx = "m.onnx"}\ngolden = 5\n',
         "systems[0].golden = 5: Input should be a valid string"),
        (SYSTEM + 'atol = "abc"\n', "systems[0].atol = 'abc': Input should be a valid number"),
        (SYSTEM + "atol = 0\n", "systems[0].atol = 0: Input should be greater than 0"),
        (SYSTEM + "rtol = -1e-3\n", "systems[0].rtol = -0.001: Input should be greater than or equal to 0"),
        (SYSTEM + 'task = "ranking"\n',
         "systems[0].task = 'ranking': Input should be 'regression' or 'classification'"),
        (SYSTEM.replace("name = \"m\"", "name = \"../../x\""),
         "systems[0].name = '../../x': system name '../../x' is not a plain name"),
        (SYSTEM.replace('"sklearn"', '"pytorch"'),
         "system 'm': framework = 'pytorch': unknown framework; valid frameworks: sklearn, tensorflow, torch"),
        (SYSTEM.replace('"sklearn"', '"scikit-learn"'), "framework = 'scikit-learn': unknown framework"),
        (SYSTEM.replace("mymodels:linear", "mymodel:linear"),
         "factory = 'mymodel:linear' does not import: ModuleNotFoundError: No module named 'mymodel'"),
        (SYSTEM.replace("mymodels:linear", "mymodels:linearr"),
         "factory = 'mymodels:linearr' does not import: AttributeError"),
        (SYSTEM + SYSTEM, "system 'm' is declared twice"),
        (SYSTEM.replace('name = "m"', 'name = "sentiment"'),
         "system 'sentiment' is declared twice (the first is a built-in reference system)"),
        ('[[tool.exportconf.systems]]\nname = "p"\nartifacts = {keras = "m.keras"}\ngolden = "g.npz"\n',
         "artifacts.keras: unknown format; valid formats: joblib, onnx, pickle, savedmodel, torchscript"),
        ('[[tool.exportconf.systems]]\nname = "p"\nartifacts = {onnx = "missing.onnx"}\ngolden = "g.npz"\n',
         "artifacts.onnx = '*missing.onnx': no such file"),
    ],
)
def test_broken_declarations_are_usage_errors(pytester: pytest.Pytester, toml: str, message: str) -> None:
    toml = toml if toml.startswith("[tool.exportconf]") else "[tool.exportconf]\n" + toml
    stderr = usage_error(pytester, toml)
    assert "INTERNALERROR" not in stderr
    pattern = ".*" + ".*".join(re.escape(part) for part in message.split("*")) + ".*"
    assert re.search(pattern, stderr), stderr


def test_golden_file_without_the_needed_arrays(pytester: pytest.Pytester) -> None:
    (pytester.path / "m.onnx").write_bytes(b"not used before the check")
    np.savez(pytester.path / "g.npz", x=np.zeros((2, 3)), y=np.zeros(2))
    stderr = usage_error(pytester, '[[tool.exportconf.systems]]\nname = "p"\nartifacts = {onnx = "m.onnx"}\n'
                                   'golden = "g.npz"\n')
    assert "golden: " in stderr and "needs the inputs as 'inputs' (one) or 'in:<name>'" in stderr
    assert "it has ['x', 'y']" in stderr


def test_model_system_fields_are_validated_in_a_conftest(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        from pytest_exportconf.user import ModelSystem
        def pytest_exportconf_register(registry):
            registry.add_system(ModelSystem(name="m", framework="sklearn", factory=lambda: None, atol=-1))
    """)
    result = pytester.runpytest_subprocess("--exportconf", "-p", "no:cacheprovider")
    assert result.ret != 0 and "INTERNALERROR" not in result.stderr.str()
    assert "system 'm': atol = -1: Input should be greater than 0" in result.stdout.str() + result.stderr.str()


def test_a_factory_that_raises_errors_its_cells_once_in_full(
    pytester: pytest.Pytester, run_subprocess: Callable[..., pytest.RunResult]
) -> None:
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\nexportconf_systems = 'm'\nexportconf_stacks = 'python'\n"
                               "[tool.exportconf]\n" + SYSTEM.replace("linear", "broken"))
    pytester.makepyfile(mymodels=MODELS)
    pytester.syspathinsert()
    result = run_subprocess("--exportconf-update")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    result.assert_outcomes(errors=3)  # onnx, pickle, joblib: errors, not graded cells
    errors = out.split("short test summary info")[0]  # (under CI=true the summary repeats messages whole)
    assert errors.count('raise RuntimeError("the data warehouse is down")') == 1  # the traceback once
    assert errors.count("the traceback is shown once, with the first cell of m") == 2
    assert "training m with sklearn failed" in out
    assert "cells graded" in out and "0 cells graded" in out
    assert not (pytester.path / "exportconf-expectations.txt").exists()  # nothing accepted from an error


def test_golden_inputs_the_model_rejects_are_errors(
    pytester: pytest.Pytester, run_subprocess: Callable[..., pytest.RunResult]
) -> None:
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\nexportconf_systems = 'm'\nexportconf_stacks = 'python'\n"
                               "exportconf_formats = 'onnx'\n[tool.exportconf]\n"
                               + SYSTEM.replace("linear", "wrong_width"))
    pytester.makepyfile(mymodels=MODELS)
    pytester.syspathinsert()
    result = run_subprocess()
    result.assert_outcomes(errors=1)
    assert "the model rejects its golden inputs: ValueError: X has 3 features" in result.stdout.str()


def test_requirements_matching_no_cell_are_reported_and_fail_when_strict(
    pytester: pytest.Pytester, run_subprocess: Callable[..., pytest.RunResult]
) -> None:
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\nexportconf_systems = 'm'\nexportconf_stacks = 'python'\n"
                               "exportconf_formats = 'onnx'\n[tool.exportconf]\n"
                               "require = ['m/savedmodel:python>=++', 'm/onnx:python>=+']\n" + SYSTEM)
    pytester.makepyfile(mymodels=MODELS)
    pytester.syspathinsert()
    result = run_subprocess()
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*requirement 'm/savedmodel:python>=++' matches no selected cell*"])
    assert "'m/onnx:python>=+' matches no" not in result.stdout.str()
    strict = pytester.runpytest_subprocess("--exportconf", "--exportconf-strict", "-p", "no:cacheprovider")
    assert strict.ret == pytest.ExitCode.USAGE_ERROR
    strict.stderr.fnmatch_lines(["*requirement 'm/savedmodel:python>=++' matches no selected cell*",
                                 "*selected cells: m/onnx/python*"])


def test_report_for_a_project_system_keeps_to_its_own_cells(  # (no "study" in a tmp path)
    pytester: pytest.Pytester, run_subprocess: Callable[..., pytest.RunResult]
) -> None:
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\nexportconf_systems = 'm'\nexportconf_stacks = 'python'\n"
                               "[tool.exportconf]\n" + SYSTEM)
    pytester.makepyfile(mymodels=MODELS)
    pytester.syspathinsert()
    result = run_subprocess()
    assert result.ret == 0, result.stdout.str()
    html = (pytester.path / "exportconf-report.html").read_text()
    section = html[html.index("exportconf: ease of integration"):]
    assert "study" not in section.split("Field notes")[0].lower()
    assert "Every measured cell matches the study" not in html
    assert "<h3>m</h3>" in section and "m (m)" not in section  # the heading once
    sizes = section[section.index("<h3>Sizes</h3>"):section.index("Field notes")]
    assert "TorchScript" not in sizes and "SavedModel" not in sizes and "tensorflow" not in sizes
    assert "<th>sklearn</th>" in sizes and "ONNX" in sizes


def _onnx_classifier(path: Path, classes: int, features: int = 5,
                     external: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A real ONNX graph (MatMul + Softmax over ``classes``), golden inputs, and what it should return
    on them (computed with numpy: the test process keeps onnxruntime out)."""
    rng = np.random.default_rng(classes)
    weights = rng.normal(size=(features, classes)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["logits"]), helper.make_node("Softmax", ["logits"], ["probs"])],
        "clf", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, features])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [None, classes])],
        [numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, location=path.name + ".data",
                        size_threshold=0)
    else:
        onnx.save_model(model, str(path))
    x = rng.normal(size=(8, features)).astype(np.float32)
    logits = x.astype(np.float64) @ weights
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return x, e / e.sum(axis=1, keepdims=True)


PREBUILT = """
[tool.pytest.ini_options]
exportconf_systems = "{names}"
exportconf_stacks = "python"
[tool.exportconf]
"""


def _prebuilt(name: str) -> str:
    return (f'[[tool.exportconf.systems]]\nname = "{name}"\nartifacts = {{onnx = "{name}.onnx"}}\n'
            f'golden = "{name}.npz"\ntask = "classification"\n')


@pytest.mark.parametrize("classes", [10, 1000])
def test_a_non_first_class_that_differs_fails(
    pytester: pytest.Pytester, run_subprocess: Callable[..., pytest.RunResult], classes: int
) -> None:
    x, probs = _onnx_classifier(pytester.path / "good.onnx", classes)
    _onnx_classifier(pytester.path / "bad.onnx", classes)
    np.savez(pytester.path / "good.npz", inputs=x, **{"out:probs": probs})
    wrong = probs.copy()
    wrong[2, classes - 3] += 0.25  # one class of one row, far from the first column
    np.savez(pytester.path / "bad.npz", inputs=x, **{"out:probs": wrong})
    pytester.makepyprojecttoml(PREBUILT.format(names="good bad") + _prebuilt("good") + _prebuilt("bad"))
    result = run_subprocess()
    cells = {c["cell"]: c for c in json.loads((pytester.path / "exportconf-results.json").read_text())["cells"]}
    assert cells["good/onnx/python"]["grade"] == "++", result.stdout.str()
    bad = cells["bad/onnx/python"]
    assert bad["grade"] == "--"
    attempt = bad["producers"][0]["attempts"][0]
    assert attempt["outputs"][0]["name"] == "probs" and attempt["outputs"][0]["shape"] == [8, classes]
    assert attempt["max_abs_error"] == pytest.approx(0.25, rel=1e-3)
    assert "matched by name" in attempt["error"]


def test_pre_exported_onnx_keeps_its_external_data(
    pytester: pytest.Pytester, run_subprocess: Callable[..., pytest.RunResult]
) -> None:
    x, probs = _onnx_classifier(pytester.path / "ext.onnx", 10, external=True)
    assert (pytester.path / "ext.onnx.data").is_file()
    np.savez(pytester.path / "ext.npz", inputs=x, outputs=probs)
    pytester.makepyprojecttoml(PREBUILT.format(names="ext") + _prebuilt("ext"))
    result = run_subprocess()
    cells = {c["cell"]: c for c in json.loads((pytester.path / "exportconf-results.json").read_text())["cells"]}
    row = cells["ext/onnx/python"]["producers"][0]
    assert cells["ext/onnx/python"]["grade"] in ("++", "+"), result.stdout.str()
    assert "ext.onnx.data" in row["files"]


def test_external_data_that_escapes_the_model_directory_is_refused(
    pytester: pytest.Pytester, run_subprocess: Callable[..., pytest.RunResult]
) -> None:
    x, _ = _onnx_classifier(pytester.path / "esc.onnx", 10, external=True)
    model = onnx.load(str(pytester.path / "esc.onnx"), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../../etc/passwd"
    onnx.save_model(model, str(pytester.path / "esc.onnx"))
    np.savez(pytester.path / "esc.npz", inputs=x, outputs=np.zeros((8, 10), np.float32))
    pytester.makepyprojecttoml(PREBUILT.format(names="esc") + _prebuilt("esc"))
    run_subprocess()  # the run completes; the cell says why nothing was loaded
    cell = json.loads((pytester.path / "exportconf-results.json").read_text())["cells"][0]
    assert cell["grade"] == "--" and not cell["producers"][0]["exported"]
    assert cell["verdict"].startswith("dangerous: onnx external data '../../etc/passwd' escapes")
    assert "refused to load esc.onnx" in cell["producers"][0]["refused"][0]


def test_a_npy_golden_file_says_what_to_write_instead(pytester: pytest.Pytester) -> None:
    """A .npy (inputs only, the first thing a new user tries) names the .npz it needs, not numpy's error."""
    (pytester.path / "m.onnx").write_bytes(b"not used before the check")
    np.save(pytester.path / "g.npy", np.zeros((2, 3), dtype=np.float32))
    stderr = usage_error(pytester, '[[tool.exportconf.systems]]\nname = "p"\nartifacts = {onnx = "m.onnx"}\n'
                                   'golden = "g.npy"\n')
    assert "holds one array (a .npy)" in stderr and "np.savez(path, inputs=X, outputs=" in stderr
    assert "context manager" not in stderr
