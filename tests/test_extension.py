"""A format added from one small conftest (Keras' native .keras file) is exported, loaded and graded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

CONFTEST = '''
from pytest_exportconf.registry import ExportResult, Format, PythonRoute


def export_keras(ex, out):
    ex.model.save(out / "model.keras")
    return ExportResult("model.keras", "keras Model.save")


class KerasFile(Format):
    name, label, study_label, primary_framework = "keras", "Keras (.keras)", "Keras", "tensorflow"

    def exporters(self):
        return {"tensorflow": export_keras}


class KerasLoad(PythonRoute):
    name, kind, format, stack = "keras.saving", "native", "keras", "python"
    imports = ("keras",)

    def load(self, req):
        import keras
        import numpy as np

        model = keras.saving.load_model(req.artifact, safe_mode=True)

        class Loaded:
            notes = [f"inputs {[tuple(i.shape) for i in model.inputs]}"]
            frictions = []

            def predict(self, x):
                return [np.asarray(model(x))]

        return Loaded()


def pytest_exportconf_register(registry):
    registry.add_format(KerasFile())
    registry.add_route(KerasLoad)
'''


def test_a_conftest_adds_a_format(pytester: pytest.Pytester, run_subprocess: Callable[..., pytest.RunResult]) -> None:
    pytester.makeconftest(CONFTEST)
    result = run_subprocess("--exportconf-systems=number_predictor", "--exportconf-formats=keras",
                            "--exportconf-stacks=python")
    assert result.ret == 0, result.stdout.str()
    cells = json.loads((pytester.path / "exportconf-results.json").read_text())["cells"]
    assert [c["cell"] for c in cells] == ["number_predictor/keras/python"]
    assert cells[0]["grade"] == "++" and cells[0]["winner"] == "tensorflow/plain/keras.saving"
    html = (pytester.path / "exportconf-report.html").read_text()
    assert "Keras (.keras)" in html


BROKEN_EXPORTERS = '''
import os, time
from pytest_exportconf.registry import ExportResult, Format


def hang(ex, out):
    time.sleep(3600)


def die(ex, out):
    os._exit(7)


class Hangs(Format):
    name, label, study_label, primary_framework = "hangs", "Hangs", "Hangs", "sklearn"

    def exporters(self):
        return {"sklearn": hang}


class Dies(Format):
    name, label, study_label, primary_framework = "dies", "Dies", "Dies", "sklearn"

    def exporters(self):
        return {"sklearn": die}


def pytest_exportconf_register(registry):
    registry.add_format(Hangs())
    registry.add_format(Dies())
'''


def test_an_exporter_that_hangs_or_crashes_fails_its_producer_and_the_run_goes_on(pytester: pytest.Pytester,
                                                                                 tmp_path: Path) -> None:
    """Training and exporting run in a child process under --exportconf-timeout: a hang or a crash in one
    exporter fails that export with what happened; the other formats of the same build are measured."""
    pytester.makeconftest(BROKEN_EXPORTERS)
    result = pytester.runpytest_subprocess(
        "--exportconf", f"--exportconf-cache-dir={tmp_path / 'cache'}", "-p", "no:cacheprovider",
        "--exportconf-systems=number_predictor", "--exportconf-frameworks=sklearn", "--exportconf-stacks=python",
        "--exportconf-formats=onnx,hangs,dies", "--exportconf-timeout=10", timeout=900)
    assert result.ret == 0, result.stdout.str()
    cells = {c["cell"]: c for c in json.loads((pytester.path / "exportconf-results.json").read_text())["cells"]}
    assert cells["number_predictor/onnx/python"]["grade"] != "--"
    hangs = cells["number_predictor/hangs/python"]["producers"][0]
    dies = cells["number_predictor/dies/python"]["producers"][0]
    assert not hangs["exported"] and "the exporter timed out after 10 s; killed" in hangs["export_error"]
    assert not dies["exported"] and "the exporter crashed (exit status 7)" in dies["export_error"]
