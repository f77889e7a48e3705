from __future__ import annotations

import numpy as np
import pytest

from pytest_exportconf import tensors
from pytest_exportconf.compare import Comparison, Tolerance, compare

REG = Tolerance("regression", atol=1e-3, rtol=1e-4)
CLS = Tolerance("classification", atol=1e-4)


def one(got: np.ndarray, want: np.ndarray, tol: Tolerance = REG) -> Comparison:
    return compare([(None, got)], [(None, want)], tol)


def test_regression_within_and_beyond_tolerance() -> None:
    want = np.array([1.0, 10.0, 100.0])
    ok = one(want + 5e-4, want)
    assert ok.ok and ok.max_abs_error == pytest.approx(5e-4)
    bad = one(want + np.array([0, 0, 0.5]), want)
    assert not bad.ok
    assert bad.min_atol == pytest.approx(0.5 - 1e-4 * 100)  # the atol that would just have passed


def test_binary_probability_needs_labels_and_probabilities() -> None:
    want = np.array([[0.2], [0.49999], [0.9]])
    assert one(want + 5e-6, want, CLS).ok
    flipped = one(np.array([[0.2], [0.50001], [0.9]]), want, CLS)
    assert not flipped.ok and "1 label(s) differ (probability >= 0.5)" in flipped.detail


def test_binary_logits_flip_at_zero_not_at_one_half() -> None:
    logits = Tolerance("classification", atol=1e-3, scores="logits")
    want = np.array([[0.3], [-2.0]])  # both would be "negative" probabilities, but a logit of 0.3 is positive
    res = one(np.array([[-0.3], [-2.0]]), want, logits)
    assert not res.ok and "(logit >= 0)" in res.detail and res.outputs[0].label_flips == 1


@pytest.mark.parametrize("classes", [10, 1000])
def test_every_class_is_compared(classes: int) -> None:
    rng = np.random.default_rng(0)
    want = rng.dirichlet(np.ones(classes), size=8)
    assert one(want.copy(), want, CLS).ok
    got = want.copy()
    got[3, classes - 2] += 0.5  # a non-first class of one row moves: the argmax may change, the value does
    res = one(got, want, CLS)
    assert not res.ok and res.max_abs_error == pytest.approx(0.5)
    got = want.copy()
    got[:, 1:] = rng.random((8, classes - 1))  # columns 1..N replaced: labels move too
    res = one(got, want, CLS)
    assert not res.ok and res.outputs[0].label_flips and "argmax over classes" in res.detail


def test_every_output_tensor_is_compared() -> None:
    labels, probs = np.array([1, 0]), np.array([[0.3, 0.7], [0.9, 0.1]], dtype=np.float32)
    want = [("label", labels), ("probabilities", probs.astype(np.float64))]
    assert compare([("label", labels), ("probabilities", probs)], want, CLS).ok
    wrong_label = compare([("label", np.array([1, 1])), ("probabilities", probs)], want, CLS)
    assert not wrong_label.ok and "1 of 2 value(s) differ" in wrong_label.detail
    # by name, whatever the order the route returns them in
    assert compare([("probabilities", probs), ("label", labels)], want, CLS).detail.startswith(
        "2 output(s) matched by name")
    # an output without a reference, or a reference without an output, is no pass
    assert "every output must have a reference" in compare([(None, probs)], want, CLS).detail
    extra = compare([("label", labels), ("probabilities", probs), ("extra", probs)], want, CLS)
    assert not extra.ok and "'extra'" in extra.detail


def test_shapes_differing_in_unit_dimensions_only_are_aligned() -> None:
    assert one(np.array([[1.5], [2.5]]), np.array([1.5, 2.5])).ok
    assert not one(np.zeros(2), np.zeros(3)).ok
    assert not one(np.zeros((2, 3)), np.zeros((3, 2))).ok
    assert not one(np.array([np.nan]), np.zeros(1)).ok


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
