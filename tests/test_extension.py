"""A format added from one small conftest (Keras' native .keras file) is exported, loaded and graded."""

from __future__ import annotations

import json
from collections.abc import Callable

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
