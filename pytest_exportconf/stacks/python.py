"""The Python stack: the official runtimes, each load in the Python worker process."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from ..concepts import Friction
from ..feeding import Coercions, assign
from ..registry import Loaded, LoadRequest, PythonRoute, Route, Stack
from .objects import caller_for, torch_call

STACK = Stack("python", "Python", "python")


class _Loaded(Loaded):
    def __init__(self, predict: Any, notes: list[str], frictions: list[Friction] | None = None,
                 output_names: list[str] | None = None) -> None:
        self._predict = predict
        self.notes = notes
        self.frictions = frictions if frictions is not None else []
        self.output_names = output_names or []

    def predict(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(o) for o in self._predict(inputs)]


def _supplied(req: LoadRequest, why: str) -> Friction:
    fed = "; ".join(f"{s.name} {s.dtype}[{', '.join('N' if d is None else str(d) for d in s.shape)}]"
                    for s in req.input_specs)
    return Friction("io-signature-supplied", f"{why}; fed {fed} from the system")


class OnnxRuntime(PythonRoute):
    name = "onnxruntime"
    kind = "native"
    format = "onnx"
    stack = "python"
    imports = ("onnxruntime",)
    packages = ("onnxruntime", "onnx")

    def session(self, model: Any) -> Any:
        import onnxruntime as ort

        return ort.InferenceSession(model, providers=["CPUExecutionProvider"])

    def model_bytes(self, req: LoadRequest) -> Any:
        return str(req.artifact)

    def load(self, req: LoadRequest) -> Loaded:
        sess = self.session(self.model_bytes(req))
        inp = sess.get_inputs()
        notes = ["IO signature read from the session: "
                 + "; ".join(f"in {i.name} {i.type} {i.shape}" for i in inp)
                 + "; " + "; ".join(f"out {o.name} {o.type} {o.shape}" for o in sess.get_outputs())]
        frictions: list[Friction] = []
        coerce = Coercions(frictions)

        def predict(inputs: dict[str, np.ndarray]) -> list[Any]:
            feed = {}
            for (name, x), m in zip(assign([i.name for i in inp], inputs), inp, strict=True):
                dtype = object if m.type == "tensor(string)" else _ONNX_DTYPES[m.type]
                x = coerce.cast(name, np.asarray(x), dtype, f"the graph declares {m.type}")
                feed[name] = coerce.column(name, x, len(m.shape), f"the graph declares shape {m.shape}")
            return sess.run(None, feed)

        return _Loaded(predict, notes, frictions, [o.name for o in sess.get_outputs()])


_ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
                "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


class OnnxRuntimeHostLocale(OnnxRuntime):
    """ONNX Runtime after pointing StringNormalizer nodes at a locale this host has (C.UTF-8).

    skl2onnx's text pipelines ask for en_US.UTF-8, which minimal images do not carry.
    """

    name = "onnxruntime+C.UTF-8"
    locale = "C.UTF-8"

    def model_bytes(self, req: LoadRequest) -> Any:
        import onnx

        model = onnx.load(str(req.artifact))
        nodes = [n for n in model.graph.node if n.op_type == "StringNormalizer"]
        if not nodes:
            raise RuntimeError("not applicable: the model has no StringNormalizer node")
        for n in nodes:
            for a in [a for a in n.attribute if a.name == "locale"]:
                n.attribute.remove(a)
            n.attribute.append(onnx.helper.make_attribute("locale", self.locale))
        return model.SerializeToString()

    def load(self, req: LoadRequest) -> Loaded:
        loaded = super().load(req)
        loaded.frictions.append(Friction("environment-locale", f"StringNormalizer locale set to {self.locale}: "
                                         "the model asks for en_US.UTF-8, which this host lacks"))
        return loaded


class TfSavedModel(PythonRoute):
    name = "tf.saved_model"
    kind = "native"
    format = "savedmodel"
    stack = "python"
    imports = ("tensorflow",)
    packages = ("tensorflow-cpu", "tensorflow")

    def load(self, req: LoadRequest) -> Loaded:
        import tensorflow as tf

        fn = tf.saved_model.load(str(req.artifact)).signatures["serving_default"]
        specs = fn.structured_input_signature[1]
        notes = ["IO signature read from signature serving_default: "
                 + "; ".join(f"in {k} {v.dtype.name}{v.shape}" for k, v in specs.items())
                 + f"; out {sorted(fn.structured_outputs)}"]
        frictions: list[Friction] = []
        coerce = Coercions(frictions)

        def predict(inputs: dict[str, np.ndarray]) -> list[Any]:
            feed = {}
            for name, x in assign(list(specs), inputs):
                spec = specs[name]
                if spec.dtype == tf.string:
                    feed[name] = tf.constant(np.asarray(x).astype(str))
                else:
                    feed[name] = tf.constant(coerce.cast(name, np.asarray(x), spec.dtype.as_numpy_dtype,
                                                         f"the signature declares {spec.dtype.name}"))
            out = fn(**feed)
            return [out[k].numpy() for k in sorted(out)]

        return _Loaded(predict, notes, frictions, sorted(fn.structured_outputs))


class TorchJit(PythonRoute):
    name = "torch.jit"
    kind = "native"
    format = "torchscript"
    stack = "python"
    imports = ("torch",)
    packages = ("torch",)

    def load(self, req: LoadRequest) -> Loaded:
        import torch

        module = torch.jit.load(str(req.artifact), map_location="cpu").eval()
        schema = str(module.forward.schema)
        frictions = [_supplied(req, f"{schema} declares no dtype or shape")]
        return _Loaded(lambda inputs: torch_call(module, inputs), [f"TorchScript schema: {schema}"], frictions)


class _ObjectRoute(PythonRoute):
    """pickle and joblib hand back the model object; call it by its family."""

    def read(self, req: LoadRequest) -> Any:
        raise NotImplementedError

    def load(self, req: LoadRequest) -> Loaded:
        obj = self.read(req)
        caller = caller_for(obj)
        sig = caller.signature(obj)
        notes = [f"deserialised a {type(obj).__module__}.{type(obj).__qualname__} ({caller.family})"]
        frictions = []
        if sig:
            notes.append(f"input signature from the object: {sig}")
        else:
            frictions.append(_supplied(req, f"a {caller.family} object records no input signature"))
        return _Loaded(lambda inputs: caller.call(obj, inputs), notes, frictions)


class PickleLoad(_ObjectRoute):
    name = "pickle"
    kind = "native"
    format = "pickle"
    stack = "python"

    def read(self, req: LoadRequest) -> Any:
        with open(req.artifact, "rb") as f:
            return pickle.load(f)  # noqa: S301 - measuring exactly this; scanning comes with the untrusted-artifact work


class JoblibLoad(_ObjectRoute):
    name = "joblib"
    kind = "native"
    format = "joblib"
    stack = "python"
    imports = ("joblib",)
    packages = ("joblib",)

    def read(self, req: LoadRequest) -> Any:
        import joblib

        return joblib.load(req.artifact)


ROUTES: tuple[type[Route], ...] = (OnnxRuntime, OnnxRuntimeHostLocale, TfSavedModel, TorchJit, PickleLoad, JoblibLoad)
