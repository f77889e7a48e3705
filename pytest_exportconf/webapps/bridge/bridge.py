"""The Python side of the Node apps' bridge: the study's workaround for formats no JavaScript runtime reads.

A Node server spawns this script once (``child_process.spawn(python, [bridge.py])``) and writes JSON
lines to its stdin; each answer is one JSON line on stdout with the request's ``id``:

* ``{"op": "load", "format": "torchscript" | "pickle" | "joblib", "artifact": PATH}`` -> ``{"ok": true}``
* ``{"op": "predict", "artifact": PATH, "dtype": "float32" | "string", "rows": [...]}`` -> ``{"score": x}``
  (the model's score for the first row: a regressor's value or a classifier's P(positive))

It exits when its stdin closes, i.e. when the Node server that spawned it is gone.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from typing import Any

import numpy as np


def _torchscript(path: str) -> Any:
    import torch

    module = torch.jit.load(path, map_location="cpu").eval()

    def predict(x: np.ndarray) -> np.ndarray:
        # a module with the text preprocessing scripted in takes forward(texts: List[str])
        arg = [str(t) for t in x.reshape(-1)] if x.dtype == object else torch.from_numpy(np.ascontiguousarray(x))
        with torch.no_grad():
            return module(arg).numpy()

    return predict


def _object(obj: Any) -> Any:
    """A deserialised model: scikit-learn estimators and pipelines, Keras models, torch modules."""
    if hasattr(obj, "predict_proba"):
        return lambda x: obj.predict_proba(list(x) if x.dtype == object else x)
    if type(obj).__module__.startswith("keras"):
        import tensorflow as tf

        return lambda x: np.asarray(obj(tf.constant(x)))
    if hasattr(obj, "forward"):
        import torch

        def call(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return obj(torch.from_numpy(np.ascontiguousarray(x))).numpy()

        return call
    if hasattr(obj, "predict"):
        return obj.predict
    raise TypeError(f"do not know how to call a {type(obj).__module__}.{type(obj).__qualname__}")


def _pickle(path: str) -> Any:
    with open(path, "rb") as f:
        return _object(pickle.load(f))  # noqa: S301 - the app's own model file, as the study did


def _joblib(path: str) -> Any:
    import joblib

    return _object(joblib.load(path))


LOADERS = {"torchscript": _torchscript, "pickle": _pickle, "joblib": _joblib}
MODELS: dict[str, Any] = {}


def score(out: Any) -> float:
    y = np.asarray(out, dtype=np.float64)
    if y.ndim == 2 and y.shape[1] == 2:
        return float(y[0, 1])
    return float(y.reshape(-1)[0])


def handle(req: dict[str, Any]) -> dict[str, Any]:
    if req["op"] == "load":
        if req["artifact"] not in MODELS:
            try:
                loader = LOADERS[req["format"]]
            except KeyError:
                raise ValueError(f"no Python loader for {req['format']}; known: {', '.join(LOADERS)}") from None
            MODELS[req["artifact"]] = loader(req["artifact"])
        return {"ok": True}
    if req["op"] == "predict":
        dtype = object if req["dtype"] == "string" else np.float32
        return {"score": score(MODELS[req["artifact"]](np.asarray(req["rows"], dtype=dtype)))}
    raise ValueError(f"unknown op {req['op']!r}; known: load, predict")


def main() -> None:
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever torch or TensorFlow print goes to stderr, not into the channel
    sys.stdout = sys.stderr
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            resp = handle(req)
        except Exception as e:
            resp = {"error": f"{type(e).__name__}: {e}"}
        resp["id"] = req.get("id")
        channel.write(json.dumps(resp) + "\n")
        channel.flush()


if __name__ == "__main__":
    main()
