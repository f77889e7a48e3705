"""Compare a route's outputs with the reference under the system's tolerance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    task: Literal["regression", "classification"]
    atol: float
    rtol: float = 0.0
    threshold: float = 0.5  # classification: probability >= threshold is the positive label


@dataclass(frozen=True)
class Comparison:
    ok: bool
    max_abs_error: float
    min_atol: float  # the smallest atol (with the system's rtol) that would have passed
    detail: str


def normalise(outputs: list[np.ndarray], task: str) -> np.ndarray:
    """Pick the model's score from a route's raw outputs: one value per input row.

    The first floating output is the score; a (N, 2) classifier output is [P(neg), P(pos)].
    """
    floats = [np.asarray(o) for o in outputs if np.asarray(o).dtype.kind == "f"]
    if not floats:
        raise ValueError(f"no floating-point output among {[np.asarray(o).dtype.name for o in outputs]}")
    out = floats[0]
    if task == "classification" and out.ndim == 2 and out.shape[1] == 2:
        out = out[:, 1]
    return out.reshape(out.shape[0], -1)[:, 0].astype(np.float64) if out.ndim else out.reshape(1)


def compare(got: np.ndarray, want: np.ndarray, tol: Tolerance) -> Comparison:
    got = np.asarray(got, dtype=np.float64).reshape(-1)
    want = np.asarray(want, dtype=np.float64).reshape(-1)
    if got.shape != want.shape:
        return Comparison(False, float("inf"), float("inf"), f"shape {got.shape} != reference {want.shape}")
    if not np.all(np.isfinite(got)):
        return Comparison(False, float("inf"), float("inf"), "non-finite outputs")
    err = np.abs(got - want)
    max_err = float(err.max()) if err.size else 0.0
    min_atol = float(np.max(err - tol.rtol * np.abs(want), initial=0.0))
    close = bool(np.all(err <= tol.atol + tol.rtol * np.abs(want)))
    if tol.task == "classification":
        flips = int(np.sum((got >= tol.threshold) != (want >= tol.threshold)))
        ok = close and flips == 0
        detail = f"{flips} label(s) differ; max |dp| {max_err:.3g} (atol {tol.atol:g})"
        return Comparison(ok, max_err, max(min_atol, 0.0), detail)
    detail = f"max |dy| {max_err:.3g} (atol {tol.atol:g}, rtol {tol.rtol:g})"
    return Comparison(close, max_err, max(min_atol, 0.0), detail)
