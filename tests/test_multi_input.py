"""A model with two named inputs (numeric features and a categorical id), fed by name in every stack."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

SCORER = """
import torch


class Scorer(torch.nn.Module):
    \"\"\"Numeric features and a categorical id in, one score out.\"\"\"

    def __init__(self):
        super().__init__()
        self.numeric = torch.nn.Linear(3, 4)
        self.category = torch.nn.Embedding(5, 4)
        self.out = torch.nn.Linear(4, 1)

    def forward(self, numeric: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.numeric(numeric) + self.category(category)))
"""

CONFTEST = """
import numpy as np
from pytest_exportconf.user import ModelSystem


def two_inputs():
    import torch
    from scorer import Scorer  # a module-level class: pickle finds it again when loading

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    golden = {"numeric": rng.normal(size=(8, 3)).astype(np.float32),
              "category": np.array([0, 1, 2, 3, 4, 0, 1, 2], dtype=np.int64)}
    return Scorer().eval(), golden


def pytest_exportconf_register(registry):
    # trust: the pickle names the project's own class (scorer.Scorer), which no scan allow-list knows
    registry.add_system(ModelSystem(name="two_inputs", framework="torch", factory=two_inputs, trust=True))
"""


def test_two_named_inputs_in_every_stack(pytester: pytest.Pytester,
                                         run_subprocess: Callable[..., pytest.RunResult]) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(scorer=SCORER)
    result = run_subprocess("--exportconf-systems=two_inputs", "--exportconf-formats=onnx,torchscript,pickle",
                            "--exportconf-stacks=python,javascript,typescript", "-n", "2")
    assert result.ret == 0, result.stdout.str()[-3000:]
    cells = {c["cell"]: c for c in json.loads((pytester.path / "exportconf-results.json").read_text())["cells"]}
    assert len(cells) == 9
    for cell, outcome in cells.items():
        assert outcome["grade"] != "--", f"{cell}: {outcome['reason']}"
        winner = next(p for p in outcome["producers"] if p["winner"] is not None)
        attempt = winner["attempts"][winner["winner"]]
        assert attempt["outputs"] and attempt["outputs"][0]["shape"] == [8, 1], cell
    # ONNX keeps the input names; onnxruntime in Python and Node feeds them by name
    onnx_py = cells["two_inputs/onnx/python"]["producers"][0]["attempts"][0]
    assert "in numeric tensor(float)" in " ".join(onnx_py["notes"])
    assert "in category tensor(int64)" in " ".join(onnx_py["notes"])
