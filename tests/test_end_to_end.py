"""The whole matrix, for real: both systems, every format, every producer, Python, JavaScript, TypeScript."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pytest_exportconf import evidence, rubric
from pytest_exportconf.concepts import SOURCES, Friction
from pytest_exportconf.fixtures.sentiment import GOLDEN, corpus
from pytest_exportconf.preprocessing import apply_preprocessing, spec_from_sklearn

PIN = Path(__file__).parent / "evidence" / "builtin-cells.json"


def _entries(cache: Path) -> dict[str, float]:
    # the built-in systems' entries: other tests share the cache and add their own meanwhile
    return {str(p): p.stat().st_mtime for system in ("number_predictor", "sentiment")
            for p in cache.glob(f"{system}/*/manifest.json")}


def test_full_matrix(pytester: pytest.Pytester, run_subprocess: Callable[..., pytest.RunResult],
                            shared_cache: Path) -> None:
    result = run_subprocess("-n", "2")
    assert result.ret == 0, result.stdout.str()[-3000:]
    data = json.loads((pytester.path / "exportconf-results.json").read_text())
    cells = {c["cell"]: c for c in data["cells"]}
    assert len(cells) == 30
    for name, cell in cells.items():
        assert cell["grade"] in rubric.GRADES
        assert cell["study_grade"] is not None
        assert cell["producers"], name
        for p in cell["producers"]:
            for a in p["attempts"]:
                assert a["ok"] == (not a["error"]), (name, a)
            if p["winner"] is not None:  # the producer's grade follows from its winning attempt
                win = p["attempts"][p["winner"]]
                assert win["ok"] and win["max_abs_error"] is not None
                assert p["grade"] == rubric.grade(True, [Friction.from_dict(f) for f in win["frictions"]])
        primary = [p for p in cell["producers"] if p["primary"] and p["winner"] is not None]
        passing = [p["grade"] for p in primary or cell["producers"] if p["winner"] is not None]
        assert cell["grade"] == rubric.best(passing), name
        for f in cell["frictions"]:
            assert f["source"] in SOURCES, (name, f)
    # The evidence behind every grade is pinned: a detector that starts or stops recording a friction,
    # or a grade that moves, fails here until the pin is updated on purpose (and reviewed).
    shutil.copy(pytester.path / "exportconf-results.json", pytester.path / "full-matrix-results.json")
    diffs = evidence.differences(json.loads(PIN.read_text()), data)
    assert not diffs, (f"the measured evidence differs from {PIN}:\n  " + "\n  ".join(diffs)
                       + "\nif intended: python -m pytest_exportconf.evidence --update --from "
                       + str(pytester.path / "full-matrix-results.json"))
    # every friction kind the matrix records fires in some cell and stays silent in another
    recorded = {f["kind"] for c in cells.values() for f in c["frictions"]}
    for kind in recorded:
        assert any(kind not in {f["kind"] for f in c["frictions"]} for c in cells.values()), kind
    # what this column must show on any machine
    assert cells["number_predictor/onnx/python"]["winner"] == "tensorflow/plain/onnxruntime"
    assert cells["sentiment/savedmodel/python"]["winner"].startswith("tensorflow/embedded/")
    sk = next(p for p in cells["sentiment/onnx/python"]["producers"] if p["framework"] == "sklearn")
    assert sk["attempts"][0]["variant"] == "embedded"  # preprocessing inside the ONNX graph was tried first
    torch_onnx = next(p for p in cells["number_predictor/onnx/python"]["producers"] if p["framework"] == "torch")
    assert torch_onnx["exported"]
    for stack in ("javascript", "typescript"):
        assert cells[f"number_predictor/onnx/{stack}"]["winner"] == "tensorflow/plain/onnxruntime-node"
        # no JavaScript runtime for TorchScript: the study's workaround, a Python worker behind Node
        assert cells[f"number_predictor/torchscript/{stack}"]["winner"] == "torch/plain/python-bridge"
        # SavedModel through the official converter and TensorFlow.js
        assert cells[f"number_predictor/savedmodel/{stack}"]["winner"].startswith("tensorflow/plain/tfjs-graph-model")

    # a second run reuses every cached build and is faster
    before = _entries(shared_cache)
    t = time.monotonic()
    again = run_subprocess("-n", "2")
    warm = time.monotonic() - t
    assert again.ret == 0
    assert _entries(shared_cache) == before
    rerun = json.loads((pytester.path / "exportconf-results.json").read_text())
    grades = {c["cell"]: c["grade"] for c in rerun["cells"]}
    moved = {c["cell"]: [c["reason"], *(a["error"][-600:] for p in c["producers"] for a in p["attempts"])]
             for c in rerun["cells"] if c["grade"] != cells[c["cell"]]["grade"]}
    assert grades == {k: v["grade"] for k, v in cells.items()}, moved
    print(f"warm run of the full matrix: {warm:.1f} s")


def test_shared_preprocessing_equals_sklearn_tfidf() -> None:
    """preprocessing.py is the spec the other stacks follow; it must equal what the models trained on."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from pytest_exportconf.preprocessing import TOKEN_PATTERN

    texts, _ = corpus(0, n=400)
    vec = TfidfVectorizer(token_pattern=TOKEN_PATTERN, max_features=500, dtype=np.float32).fit(texts)
    spec = spec_from_sklearn(vec)
    probe = texts[:50] + [str(g) for g in GOLDEN]
    np.testing.assert_allclose(apply_preprocessing(spec, probe), vec.transform(probe).toarray(), atol=1e-6)
    assert not apply_preprocessing(spec, [""]).any()  # empty text -> zero vector, no NaN
