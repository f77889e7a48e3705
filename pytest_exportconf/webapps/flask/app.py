"""exportconf's Python system: the number predictor and the sentiment tool as one Flask app.

Served the way a Flask app is deployed, by a production WSGI server::

    EXPORTCONF_MODELS=models.json python -m waitress --listen=127.0.0.1:8000 --call app:create_app

Each model is loaded with its format's own Python runtime, on the first request that needs it:

=========== ==================================================================
ONNX        ``onnxruntime.InferenceSession``
SavedModel  ``tf.saved_model.load(...).signatures["serving_default"]``
TorchScript ``torch.jit.load``
Pickle      ``pickle.load``, then the object's own ``predict_proba``/call
Joblib      ``joblib.load``, likewise
=========== ==================================================================

``models.json``: ``{system: {format: {"loader", "artifact", "preprocessing"}}}``, re-read when a model
not yet known is asked for. A model exported without its text preprocessing gets the tf-idf of its
``preprocessing.json`` applied here (``preprocessing.py``).
"""

from __future__ import annotations

import json
import os
import pickle
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from flask import Flask, abort, jsonify, render_template, request
from preprocessing import apply_preprocessing
from werkzeug.exceptions import HTTPException

FORMATS = ("onnx", "savedmodel", "torchscript", "pickle", "joblib")
TITLES = {"number_predictor": "Number predictor", "sentiment": "Movie-review sentiment"}
MAX_REVIEW = 10_000

Predict = Callable[[np.ndarray], Any]


# ---- loaders: artifact path -> function of a one-row batch -----------------------------------------------
def _onnx(path: str) -> Predict:
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]

    def predict(x: np.ndarray) -> Any:
        if x.dtype == object and len(inp.shape) == 2:
            x = x.reshape(-1, 1)  # a text pipeline wants an [N, 1] column
        outs = sess.run(None, {inp.name: x})
        return next(o for o in outs if np.asarray(o).dtype.kind == "f")

    return predict


def _savedmodel(path: str) -> Predict:
    import tensorflow as tf

    fn = tf.saved_model.load(path).signatures["serving_default"]
    (name, spec), = fn.structured_input_signature[1].items()

    def predict(x: np.ndarray) -> Any:
        out = fn(**{name: tf.constant(x.astype(str) if spec.dtype == tf.string else x)})
        return out[sorted(out)[0]].numpy()

    return predict


def _torchscript(path: str) -> Predict:
    import torch

    module = torch.jit.load(path, map_location="cpu").eval()

    def predict(x: np.ndarray) -> Any:
        # a module with the text preprocessing scripted in takes forward(texts: List[str])
        arg = [str(t) for t in x.reshape(-1)] if x.dtype == object else torch.from_numpy(x)
        with torch.no_grad():
            return module(arg).numpy()

    return predict


def _call_object(obj: Any) -> Predict:
    """What pickle and joblib hand back: scikit-learn estimators, Keras models, torch modules."""
    if hasattr(obj, "predict_proba"):
        return lambda x: obj.predict_proba(list(x) if x.dtype == object else x)
    if type(obj).__module__.startswith("keras"):
        import tensorflow as tf

        return lambda x: np.asarray(obj(tf.constant(x)))
    if hasattr(obj, "forward"):
        import torch

        def call(x: np.ndarray) -> Any:
            with torch.no_grad():
                return obj(torch.from_numpy(x)).numpy()

        return call
    if hasattr(obj, "predict"):
        return obj.predict
    raise TypeError(f"do not know how to call a {type(obj).__module__}.{type(obj).__qualname__}")


def _pickle(path: str) -> Predict:
    with open(path, "rb") as f:
        return _call_object(pickle.load(f))  # noqa: S301 - the app's own model file


def _joblib(path: str) -> Predict:
    import joblib

    return _call_object(joblib.load(path))


LOADERS: dict[str, Callable[[str], Predict]] = {
    "onnxruntime": _onnx, "tf.saved_model": _savedmodel, "torch.jit": _torchscript,
    "pickle": _pickle, "joblib": _joblib,
}


def score(out: Any) -> float:
    """The first row's score: a regressor's value, or P(positive) of a [N, 2] classifier output."""
    y = np.asarray(out, dtype=np.float64)
    return float(y[0, 1]) if y.ndim == 2 and y.shape[1] == 2 else float(y.reshape(-1)[0])


class Models:
    """The models of models.json, each loaded once (on first use) and shared by the server's threads."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.loaded: dict[tuple[str, str], tuple[Predict, dict[str, Any] | None, float]] = {}
        self.lock = threading.Lock()

    def entry(self, system: str, fmt: str) -> dict[str, Any]:
        with open(self.path) as f:
            entry = json.load(f).get(system, {}).get(fmt)
        if entry is None:
            abort(404, f"no model for {system}/{fmt}")
        return dict(entry)

    def get(self, system: str, fmt: str) -> tuple[Predict, dict[str, Any] | None, float]:
        key = (system, fmt)
        with self.lock:
            if key not in self.loaded:
                entry = self.entry(system, fmt)
                loader = LOADERS.get(entry["loader"])
                if loader is None:
                    raise RuntimeError(f"no loader {entry['loader']}; known: {', '.join(LOADERS)}")
                t0 = time.perf_counter()
                prep = None
                if entry.get("preprocessing"):
                    with open(entry["preprocessing"]) as f:
                        prep = json.load(f)
                self.loaded[key] = (loader(entry["artifact"]), prep, (time.perf_counter() - t0) * 1000)
            return self.loaded[key]


# ---- request validation ---------------------------------------------------------------------------------
def _numbers(body: dict[str, Any]) -> np.ndarray:
    if "numbers" not in body:
        abort(400, "missing field 'numbers' (a list of 3 numbers)")
    xs = body["numbers"]
    if not isinstance(xs, list) or len(xs) != 3:
        abort(400, f"'numbers' must be a list of 3 numbers, got "
                   f"{f'{len(xs)} values' if isinstance(xs, list) else type(xs).__name__}")
    for i, v in enumerate(xs):
        if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
            abort(400, f"'numbers'[{i}] is not a finite number: {json.dumps(v)}")
    return np.asarray([xs], dtype=np.float32)


def _review(body: dict[str, Any]) -> np.ndarray:
    if "review" not in body:
        abort(400, "missing field 'review' (the text of a movie review)")
    text = body["review"]
    if not isinstance(text, str):
        abort(400, f"'review' must be a string, got {type(text).__name__}")
    if not text.strip():
        abort(400, "'review' is empty")
    if len(text) > MAX_REVIEW:
        abort(413, f"'review' has {len(text)} characters; at most {MAX_REVIEW}")
    return np.asarray([text], dtype=object)


SYSTEMS: dict[str, tuple[Callable[[dict[str, Any]], np.ndarray], Callable[[float], dict[str, Any]]]] = {
    "number_predictor": (_numbers, lambda s: {"prediction": s}),
    "sentiment": (_review, lambda s: {"label": "positive" if s >= 0.5 else "negative", "probability": s}),
}


def _generic(spec: dict[str, Any]) -> Callable[[dict[str, Any]], np.ndarray]:
    """Any other system of models.json: ``{"features": [k numbers]}`` or ``{"text": "..."}``, answered
    with ``{"score": s}``; ``spec`` is the entry's ``input`` (``{"kind": "numbers", "count": k}`` or text)."""
    if spec.get("kind") == "text":
        return lambda body: _review({"review": body["text"]} if "text" in body else {})
    count = int(spec["count"])

    def parse(body: dict[str, Any]) -> np.ndarray:
        if "features" not in body:
            abort(400, f"missing field 'features' (a list of {count} numbers)")
        xs = body["features"]
        if not isinstance(xs, list) or len(xs) != count:
            abort(400, f"'features' must be a list of {count} numbers, got "
                       f"{f'{len(xs)} values' if isinstance(xs, list) else type(xs).__name__}")
        for i, v in enumerate(xs):
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
                abort(400, f"'features'[{i}] is not a finite number: {json.dumps(v)}")
        return np.asarray([xs], dtype=np.float32)

    return parse


def create_app(models_path: str | None = None) -> Flask:
    app = Flask(__name__)
    models = Models(models_path or os.environ.get("EXPORTCONF_MODELS", "models.json"))

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Any:
        return jsonify(error=e.description), e.code

    @app.errorhandler(Exception)
    def server_error(e: Exception) -> Any:
        app.logger.exception("request failed")
        return jsonify(error=f"{type(e).__name__}: {e}"), 500

    @app.get("/healthz")
    def healthz() -> Any:
        return {"ok": True, "pid": os.getpid()}

    @app.get("/")
    def index() -> Any:
        return render_template("index.html", titles=TITLES, formats=FORMATS)

    @app.get("/<system>")
    def page(system: str) -> Any:
        fmt = request.args.get("format", "onnx")
        if system not in SYSTEMS:  # any other system: a form built from its input, pre-filled with an example
            entry = models.entry(system, fmt)
            return render_template("generic.html", title=f"{entry.get('title', system)} — {fmt} — Flask",
                                   system=system, format=fmt, formats=FORMATS, input=entry["input"],
                                   example=entry.get("example"))
        return render_template(f"{system}.html", title=f"{TITLES[system]} — {fmt} — Flask", system=system,
                               format=fmt, formats=FORMATS)

    @app.post("/api/<system>/<fmt>")
    def predict(system: str, fmt: str) -> Any:
        if request.mimetype != "application/json":
            abort(415, f"Content-Type must be application/json, got {request.mimetype or 'none'}")
        body = request.get_json(silent=True)
        if body is None:
            abort(400, "malformed JSON")
        if not isinstance(body, dict):
            abort(400, "the body must be a JSON object")
        if system in SYSTEMS:
            parse, answer = SYSTEMS[system]
        else:
            parse, answer = _generic(models.entry(system, fmt)["input"]), (lambda s: {"score": s})
        x = parse(body)
        fn, prep, load_ms = models.get(system, fmt)
        t0 = time.perf_counter()
        if prep is not None:
            x = apply_preprocessing(prep, x)
        s = score(fn(x))
        return {"system": system, "format": fmt, **answer(s), "ms": (time.perf_counter() - t0) * 1000,
                "load_ms": load_ms}

    return app
