"""Compare a route's outputs with the reference, tensor by tensor, under the system's tolerance.

Every output the model returns is compared over its full shape: matched by name when the reference
names its outputs and the route returned every one of those names, by position otherwise. A route
that returns more or fewer outputs than the reference fails: an output nobody compared is no pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

Scores = Literal["probabilities", "logits"]
Named = tuple[str | None, np.ndarray]


@dataclass(frozen=True)
class Tolerance:
    task: Literal["regression", "classification"]
    atol: float
    rtol: float = 0.0
    threshold: float = 0.5  # a single-column probability >= threshold is the positive label
    scores: Scores = "probabilities"  # what a classifier's floating outputs are

    @property
    def cut(self) -> float:
        """Where a single-column score turns positive: the threshold, or 0 for a logit."""
        return self.threshold if self.scores == "probabilities" else 0.0

    @property
    def word(self) -> str:
        return {"probabilities": "probability", "logits": "logit"}[self.scores]


@dataclass(frozen=True)
class OutputComparison:
    """One reference output against the route's output it was matched with."""

    name: str  # the reference output's name, or its position ("#0")
    got: str  # the route's output it was compared with
    shape: list[int]
    ok: bool
    max_abs_error: float
    min_atol: float
    detail: str
    label_flips: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    ok: bool
    max_abs_error: float
    min_atol: float  # the smallest atol (with the system's rtol) that would have passed every output
    detail: str
    outputs: list[OutputComparison] = field(default_factory=list)


def _label(name: str | None, i: int) -> str:
    return name if name else f"#{i}"


def _describe(outs: list[Named]) -> str:
    return ", ".join(f"{_label(n, i)} {np.asarray(a).dtype.name}{list(np.asarray(a).shape)}"
                     for i, (n, a) in enumerate(outs))


def pair(got: list[Named], want: list[Named]) -> tuple[list[tuple[int, int]], str]:
    """Pairs (reference index, route index), and how they were matched; raises ValueError when the
    outputs cannot all be paired."""
    want_names = [n for n, _ in want]
    got_names = [n for n, _ in got]
    if want_names and all(want_names) and all(n in got_names for n in want_names):
        extra = [n for n in got_names if n not in want_names]
        if extra:
            raise ValueError(f"the route returned output(s) {extra} that the reference does not have; "
                             f"reference: {_describe(want)}")
        return [(i, got_names.index(n)) for i, n in enumerate(want_names)], "by name"
    if len(got) != len(want):
        raise ValueError(f"the route returned {len(got)} output(s) ({_describe(got)}) and the reference has "
                         f"{len(want)} ({_describe(want)}); every output must have a reference to compare with")
    return [(i, i) for i in range(len(want))], "by position"


def _aligned(got: np.ndarray, want: np.ndarray) -> tuple[np.ndarray | None, str]:
    """The route's output in the reference's shape: equal shapes, or shapes that differ only in
    dimensions of size 1 ((8, 1) against (8,)); None when they really differ."""
    if got.shape == want.shape:
        return got, ""
    if got.size == want.size and [d for d in got.shape if d != 1] == [d for d in want.shape if d != 1]:
        return got.reshape(want.shape), f"shape {list(got.shape)} compared as {list(want.shape)}"
    return None, f"shape {list(got.shape)} != reference {list(want.shape)}"


def compare_one(name: str, got_name: str, got: np.ndarray, want: np.ndarray, tol: Tolerance) -> OutputComparison:
    got, want = np.asarray(got), np.asarray(want)
    shape = list(want.shape)
    aligned, note = _aligned(got, want)
    if aligned is None:
        return OutputComparison(name, got_name, shape, False, float("inf"), float("inf"), note)
    prefix = f"{note}; " if note else ""
    if want.dtype.kind in "OUSbiu":  # labels, strings, flags: compared exactly
        if want.dtype.kind in "OUS" or aligned.dtype.kind in "OUS":
            differ = int(np.sum(aligned.astype(str) != want.astype(str)))
            err = 0.0 if differ == 0 else float("inf")
        else:
            gap = np.abs(aligned.astype(np.float64) - want.astype(np.float64))
            differ, err = int(np.sum(gap != 0)), float(gap.max(initial=0.0))
        return OutputComparison(name, got_name, shape, differ == 0, err, err,
                                f"{prefix}{differ} of {want.size} value(s) differ (compared exactly)",
                                differ if tol.task == "classification" else None)
    g, w = aligned.astype(np.float64), want.astype(np.float64)
    if not np.all(np.isfinite(g)):
        return OutputComparison(name, got_name, shape, False, float("inf"), float("inf"),
                                f"{prefix}{int(np.sum(~np.isfinite(g)))} non-finite value(s)")
    dev = np.abs(g - w)
    max_err = float(dev.max(initial=0.0))
    min_atol = max(float(np.max(dev - tol.rtol * np.abs(w), initial=0.0)), 0.0)
    close = bool(np.all(dev <= tol.atol + tol.rtol * np.abs(w)))
    if tol.task != "classification":
        return OutputComparison(name, got_name, shape, close, max_err, min_atol,
                                f"{prefix}max |dy| {max_err:.3g} (atol {tol.atol:g}, rtol {tol.rtol:g})")
    flips = _label_flips(g, w, tol)
    how = "argmax over classes" if _classes(w) > 1 else f"{tol.word} >= {tol.cut:g}"
    return OutputComparison(name, got_name, shape, close and flips == 0, max_err, min_atol,
                            f"{prefix}{flips} label(s) differ ({how}); max |d{tol.word}| {max_err:.3g} "
                            f"(atol {tol.atol:g})", flips)


def _classes(scores: np.ndarray) -> int:
    return int(scores.shape[-1]) if scores.ndim >= 2 else 1


def _label_flips(got: np.ndarray, want: np.ndarray, tol: Tolerance) -> int:
    """Labels differ where the argmax over classes differs (several columns) or where the single
    column falls on the other side of the cut."""
    if _classes(want) > 1:
        return int(np.sum(np.argmax(got, axis=-1) != np.argmax(want, axis=-1)))
    return int(np.sum((got >= tol.cut) != (want >= tol.cut)))


def compare(got: list[Named], want: list[Named], tol: Tolerance) -> Comparison:
    """Every reference output against the route's output it pairs with."""
    try:
        pairs, how = pair(got, want)
    except ValueError as e:
        return Comparison(False, float("inf"), float("inf"), str(e))
    outs = [compare_one(_label(want[w][0], w), _label(got[g][0], g), got[g][1], want[w][1], tol) for w, g in pairs]
    ok = all(o.ok for o in outs)
    detail = f"{len(outs)} output(s) matched {how}: " + "; ".join(f"{o.name}: {o.detail}" for o in outs)
    return Comparison(ok, max((o.max_abs_error for o in outs), default=0.0),
                      max((o.min_atol for o in outs), default=0.0), detail, outs)
