"""Calling a deserialised model object (what pickle and joblib hand back) without knowing its class.

Each caller recognises one family of objects by duck typing and says whether the object itself told
us its input signature (so a missing one is recorded as a friction, not guessed silently).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Caller:
    family: str
    matches: Callable[[Any], bool]
    call: Callable[[Any, dict[str, np.ndarray]], list[np.ndarray]]  # golden inputs by name, in order
    signature: Callable[[Any], str | None]  # the input signature the object carries, if any


def _module(obj: Any) -> str:
    return type(obj).__module__.split(".")[0]


def _only(inputs: dict[str, np.ndarray], family: str) -> np.ndarray:
    if len(inputs) != 1:
        raise ValueError(f"a {family} object is called with one input; the system feeds {len(inputs)}: "
                         f"{', '.join(inputs)}")
    return next(iter(inputs.values()))


def _sklearn_call(obj: Any, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """A classifier answers as skl2onnx's graphs do: the labels, then the probability of each class."""
    x = _only(inputs, "scikit-learn")
    data: Any = [str(t) for t in x.reshape(-1)] if x.dtype == object else x
    if hasattr(obj, "predict_proba"):
        return [np.asarray(obj.predict(data)), np.asarray(obj.predict_proba(data))]
    return [np.asarray(obj.predict(data))]


def _sklearn_signature(obj: Any) -> str | None:
    n = getattr(obj, "n_features_in_", None)
    if n is not None:
        return f"n_features_in_ = {n}"
    steps = getattr(obj, "steps", None)
    return f"pipeline {[name for name, _ in steps]} taking raw text" if steps else None


def _tf_call(obj: Any, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """A Keras model or a callable tf.Module: called on a tensor (strings as tf.string), or on a list of
    them in the system's order for a model with several inputs."""
    import tensorflow as tf

    xs = [tf.constant(x.astype(str) if x.dtype == object else x) for x in inputs.values()]
    out = obj(xs[0] if len(xs) == 1 else xs)
    if isinstance(out, dict):
        return [np.asarray(out[k]) for k in sorted(out)]
    return [np.asarray(o) for o in out] if isinstance(out, list | tuple) else [np.asarray(out)]


def _keras_signature(obj: Any) -> str | None:
    inputs = getattr(obj, "inputs", None)
    return f"inputs {[tuple(i.shape) for i in inputs]}" if inputs else None


def _tf_module_signature(obj: Any) -> str | None:
    sig = getattr(type(obj).__call__, "input_signature", None)
    return f"input_signature {sig}" if sig else None


def torch_call(obj: Any, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """A torch module or TorchScript module, inputs passed by position, without autograd."""
    import torch

    with torch.no_grad():
        out = obj(*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs.values()))
    return [o.numpy() for o in out] if isinstance(out, list | tuple) else [out.numpy()]


CALLERS: tuple[Caller, ...] = (
    Caller("keras", lambda o: _module(o) == "keras", _tf_call, _keras_signature),
    Caller("torch", lambda o: _module(o) == "torch" or hasattr(o, "_modules") and hasattr(o, "forward"),
           torch_call, lambda o: None),  # nn.Module records no input dtype or shape
    Caller("sklearn", lambda o: hasattr(o, "fit") and (hasattr(o, "predict") or hasattr(o, "predict_proba")),
           _sklearn_call, _sklearn_signature),
    Caller("tf.Module", lambda o: hasattr(o, "trainable_variables") and callable(o), _tf_call,
           _tf_module_signature),
)


def caller_for(obj: Any) -> Caller:
    for c in CALLERS:
        if c.matches(obj):
            return c
    raise TypeError(f"do not know how to call a {type(obj).__module__}.{type(obj).__qualname__}; "
                    f"known families: {', '.join(c.family for c in CALLERS)}")
