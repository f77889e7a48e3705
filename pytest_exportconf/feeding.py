"""Feeding the golden inputs to a loaded model: which given input goes to which model input, and
what had to be changed on the way (a cast, a reshape), which the route records as ``input-coercion``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .concepts import Friction


def assign(model_inputs: Sequence[str], given: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """The given inputs in the model's order: by name when the model names every one of them, else by
    position (the counts must agree)."""
    names = list(given)
    if all(m in given for m in model_inputs) and len(model_inputs) == len(given):
        return [(m, given[m]) for m in model_inputs]
    if len(model_inputs) != len(given):
        raise ValueError(f"the model takes {len(model_inputs)} input(s) {list(model_inputs)}; "
                         f"the system feeds {len(given)} {names}")
    return [(m, given[n]) for m, n in zip(model_inputs, names, strict=True)]


class Coercions:
    """The changes a route made to the inputs it was given, each appended once to ``frictions`` (the
    loaded model's, which the worker reports after the inferences)."""

    def __init__(self, frictions: list[Friction]) -> None:
        self.frictions = frictions
        self.done: list[str] = []

    def cast(self, name: str, x: np.ndarray, dtype: np.dtype | type, why: str) -> np.ndarray:
        want = np.dtype(dtype)
        if x.dtype == want or (x.dtype.kind in "OUS" and want.kind in "OUS"):
            return x
        self._note(f"input {name}: cast {x.dtype.name} to {want.name} ({why})",
                   f"the system sends {name} as {x.dtype.name}{list(x.shape)}; {why}")
        return x.astype(want)

    def column(self, name: str, x: np.ndarray, rank: int, why: str) -> np.ndarray:
        """A batch of scalars (N,) fed to a model that declares a column (N, 1)."""
        if rank == 2 and x.ndim == 1:
            self._note(f"input {name}: reshaped {list(x.shape)} to {[x.shape[0], 1]} ({why})",
                       f"the system sends {name} as {x.dtype.name}{list(x.shape)}; {why}")
            return x.reshape(x.shape[0], 1)
        return x

    def _note(self, what: str, evidence: str) -> None:
        if what not in self.done:
            self.done.append(what)
            self.frictions.append(Friction("input-coercion", what, "observed", evidence))
