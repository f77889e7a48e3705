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
    facts: Callable[[Any], dict[str, str]] = lambda obj: {}  # what a snippet needs to call it the same way


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


def _torch_signature(obj: Any) -> str | None:
    """What an ``nn.Module`` says about its input: an example input it carries (Lightning's
    ``example_input_array`` convention), or ``forward`` annotations that are complete types (``list[str]``);
    a ``Tensor`` annotation (or none) names no dtype or shape."""
    import inspect

    import torch

    example = getattr(obj, "example_input_array", None)
    if example is not None and hasattr(example, "dtype") and hasattr(example, "shape"):
        return f"example_input_array {example.dtype}{list(example.shape)}"
    try:
        params = list(inspect.signature(obj.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    anns = [p.annotation for p in params]
    if params and all(a is not inspect.Parameter.empty and a is not torch.Tensor and "Tensor" not in str(a)
                      for a in anns):
        return "forward(" + ", ".join(f"{p.name}: {p.annotation}" for p in params) + ")"
    return None


def inspected(obj: Any) -> str:
    """What inspecting the object showed of its input: the call's Python signature and annotations."""
    import inspect

    fn_name = next((n for n in ("forward", "predict_proba", "predict", "__call__") if callable(getattr(obj, n, None))),
                   None)
    if fn_name is None:
        return f"{type(obj).__qualname__} has no forward/predict/__call__"
    try:
        sig = str(inspect.signature(getattr(obj, fn_name)))
    except (TypeError, ValueError) as e:
        sig = f"(signature not readable: {e})"
    extra = [a for a in ("example_input_array", "n_features_in_", "inputs", "input_signature") if hasattr(obj, a)]
    return (f"inspected {type(obj).__module__}.{type(obj).__qualname__}.{fn_name}{sig}; "
            f"input attributes present: {', '.join(extra) or 'none'}")


def _torch_arg(x: np.ndarray) -> Any:
    """Text goes to a torch module as a list of str (List[str] in TorchScript); numbers as a tensor."""
    import torch

    if x.dtype.kind in "OUS":
        return [str(t) for t in x.reshape(-1)]
    return torch.from_numpy(np.ascontiguousarray(x))


def torch_call(obj: Any, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """A torch module or TorchScript module, inputs passed by position, without autograd."""
    import torch

    with torch.no_grad():
        out = obj(*(_torch_arg(x) for x in inputs.values()))
    return [o.numpy() for o in out] if isinstance(out, list | tuple) else [out.numpy()]


def torch_bind(obj: Any, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
    """The timed call: the arguments converted once, then the module alone, without autograd (what a plain
    script times; :func:`torch_call` gives the outputs that are compared)."""
    import torch

    args = [_torch_arg(x) for x in inputs.values()]

    def call() -> Any:
        with torch.no_grad():
            return obj(*args)

    return call


CALLERS: tuple[Caller, ...] = (
    Caller("keras", lambda o: _module(o) == "keras", _tf_call, _keras_signature),
    Caller("torch", lambda o: _module(o) == "torch" or hasattr(o, "_modules") and hasattr(o, "forward"),
           torch_call, _torch_signature),
    Caller("sklearn", lambda o: hasattr(o, "fit") and (hasattr(o, "predict") or hasattr(o, "predict_proba")),
           _sklearn_call, _sklearn_signature,
           lambda o: {"methods": "predict,predict_proba" if hasattr(o, "predict_proba") else "predict"}),
    Caller("tf.Module", lambda o: hasattr(o, "trainable_variables") and callable(o), _tf_call,
           _tf_module_signature),
)


def caller_for(obj: Any) -> Caller:
    for c in CALLERS:
        if c.matches(obj):
            return c
    raise TypeError(f"do not know how to call a {type(obj).__module__}.{type(obj).__qualname__}; "
                    f"known families: {', '.join(c.family for c in CALLERS)}")


# ---- snippets: the same calls, written out (see pytest_exportconf/snippets.py) ----------------------------

def torch_snippet(name: str, text: bool) -> list[str]:
    arg = "[str(t) for t in x.reshape(-1)]" if text else "torch.from_numpy(np.ascontiguousarray(x))"
    return ["with torch.no_grad():", f"    outputs = [{name}({arg}).numpy()]"]


def _snippet_sklearn(ctx: Any) -> tuple[list[str], list[str]]:
    data = "[str(t) for t in x.reshape(-1)]" if ctx.text else "x"
    methods = ctx.facts.get("methods", "predict").split(",")
    return [], [f"outputs = [{', '.join(f'model.{m}({data})' for m in methods)}]"]


def _snippet_tf(ctx: Any) -> tuple[list[str], list[str]]:
    value = "x.astype(str)" if ctx.text else "x"
    return ["import tensorflow as tf"], [f"outputs = [np.asarray(model(tf.constant({value})))]"]


SNIPPET_CALLS: dict[str, Callable[[Any], tuple[list[str], list[str]]]] = {
    "sklearn": _snippet_sklearn,
    "keras": _snippet_tf,
    "tf.Module": _snippet_tf,
    "torch": lambda ctx: (["import torch"], torch_snippet("model", ctx.text)),
}
