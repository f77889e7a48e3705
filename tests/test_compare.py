from __future__ import annotations

import numpy as np
import pytest

from pytest_exportconf import tensors
from pytest_exportconf.compare import Tolerance, compare, normalise

REG = Tolerance("regression", atol=1e-3, rtol=1e-4)
CLS = Tolerance("classification", atol=1e-4)


def test_regression_within_and_beyond_tolerance() -> None:
    want = np.array([1.0, 10.0, 100.0])
    ok = compare(want + 5e-4, want, REG)
    assert ok.ok and ok.max_abs_error == pytest.approx(5e-4)
    bad = compare(want + np.array([0, 0, 0.5]), want, REG)
    assert not bad.ok
    assert bad.min_atol == pytest.approx(0.5 - 1e-4 * 100)  # the atol that would just have passed


def test_classification_needs_labels_and_probabilities() -> None:
    want = np.array([0.2, 0.49999, 0.9])
    assert compare(want + 5e-6, want, CLS).ok
    flipped = compare(np.array([0.2, 0.50001, 0.9]), want, CLS)
    assert not flipped.ok and "1 label(s) differ" in flipped.detail


def test_shape_mismatch_and_nan_fail() -> None:
    assert not compare(np.zeros(2), np.zeros(3), REG).ok
    assert not compare(np.array([np.nan]), np.zeros(1), REG).ok


def test_normalise_picks_the_score() -> None:
    labels, probs = np.array([1, 0]), np.array([[0.3, 0.7], [0.9, 0.1]], dtype=np.float32)
    assert normalise([labels, probs], "classification").tolist() == pytest.approx([0.7, 0.1])
    assert normalise([np.array([[1.5], [2.5]])], "regression").tolist() == [1.5, 2.5]
    with pytest.raises(ValueError, match="no floating-point output"):
        normalise([labels], "regression")


@pytest.mark.parametrize(
    "value",
    [
        np.array([[1, -2**62], [3, 2**63 - 1]], dtype=np.int64),
        np.array([True, False, True]),
        np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
        np.array(["a review", "", "ünïcode ☃"], dtype=object),
    ],
)
def test_tensors_round_trip_exactly(value: np.ndarray) -> None:
    wire = tensors.encode(value, "x")
    back = tensors.decode(wire)
    assert back.dtype.kind == value.dtype.kind and back.shape == value.shape
    assert back.tolist() == value.tolist()


def test_unknown_dtype_is_refused() -> None:
    with pytest.raises(TypeError, match="supported: float32"):
        tensors.encode(np.zeros(2, dtype=np.complex64))
