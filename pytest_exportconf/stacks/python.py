"""The Python stack: the official runtimes, each load in the Python worker process."""

from __future__ import annotations

import pickle
import re
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from ..concepts import Friction
from ..feeding import Coercions, assign
from ..registry import Loaded, LoadRequest, PythonRoute, Route, Stack
from .objects import SNIPPET_CALLS, caller_for, inspected, torch_bind, torch_call, torch_snippet

if TYPE_CHECKING:
    from ..snippets import SnippetContext

STACK = Stack("python", "Python", "python")


class _Loaded(Loaded):
    def __init__(self, predict: Any, notes: list[str], frictions: list[Friction] | None = None,
                 output_names: list[str] | None = None, bind: Any = None) -> None:
        self._predict = predict
        self._bind = bind  # inputs -> the runtime's own call on them, inputs adapted once
        self.notes = notes
        self.frictions = frictions if frictions is not None else []
        self.output_names = output_names or []
        self.facts: dict[str, str] = {}  # what the load found, for the cell's snippet

    def predict(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(o) for o in self._predict(inputs)]

    def bind(self, inputs: dict[str, np.ndarray]) -> Any:
        return self._bind(inputs) if self._bind else super().bind(inputs)


def _supplied(req: LoadRequest, why: str, evidence: str) -> Friction:
    fed = "; ".join(f"{s.name} {s.dtype}[" + ", ".join("N" if d is None else str(d) for d in s.shape) + "]"
                    for s in req.input_specs)
    return Friction("io-signature-supplied", f"{why}; fed {fed} from the system", "observed", evidence)


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

        def feed(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            fed = {}
            for (name, x), m in zip(assign([i.name for i in inp], inputs), inp, strict=True):
                dtype = object if m.type == "tensor(string)" else _ONNX_DTYPES[m.type]
                x = coerce.cast(name, np.asarray(x), dtype, f"the graph declares {m.type}")
                fed[name] = coerce.column(name, x, len(m.shape), f"the graph declares shape {m.shape}")
            return fed

        return _Loaded(lambda inputs: sess.run(None, feed(inputs)), notes, frictions,
                       [o.name for o in sess.get_outputs()], bind=lambda inputs: partial(sess.run, None, feed(inputs)))

    @classmethod
    def snippet_session(cls) -> list[str]:
        return ['session = ort.InferenceSession(ARTIFACT, providers=["CPUExecutionProvider"])']

    @classmethod
    def snippet_parts(cls, ctx: SnippetContext) -> tuple[list[str], list[str]]:
        return ["import onnxruntime as ort"], [
            *cls.snippet_session(),
            "inp = session.get_inputs()[0]  # the IO signature the session carries",
            "if len(inp.shape) == 2 and x.ndim == 1:",
            "    x = x.reshape(-1, 1)  # the model takes an [N, 1] column",
            "outputs = session.run(None, {inp.name: x})",
        ]


# onnxruntime's StringNormalizer failing to construct the locale the graph names
_LOCALE_ERROR = re.compile(r"Failed to construct locale|_S_create_c_locale")
_LOCALE_NAME = re.compile(r"locale with name:([^:\s]+)")

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
        self._asked: set[str] = set()
        for n in nodes:
            for a in [a for a in n.attribute if a.name == "locale"]:
                self._asked.add(a.s.decode())
                n.attribute.remove(a)
            n.attribute.append(onnx.helper.make_attribute("locale", self.locale))
        return model.SerializeToString()

    @classmethod
    def snippet_parts(cls, ctx: SnippetContext) -> tuple[list[str], list[str]]:
        imports, body = super().snippet_parts(ctx)
        return ["import onnx", *imports], body

    @classmethod
    def snippet_session(cls) -> list[str]:
        return ["model = onnx.load(ARTIFACT)",
                "for node in model.graph.node:  # the graph names a locale this host may lack (en_US.UTF-8)",
                '    if node.op_type == "StringNormalizer":',
                '        for a in [a for a in node.attribute if a.name == "locale"]:',
                "            node.attribute.remove(a)",
                f'        node.attribute.append(onnx.helper.make_attribute("locale", "{cls.locale}"))',
                'session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])']

    def load(self, req: LoadRequest) -> Loaded:
        """Only a detector: the plain load must fail with the locale error, then the patched one runs.
        Both attempts go into the notes and the friction's evidence."""
        try:
            OnnxRuntime.session(self, str(req.artifact))
        except Exception as e:
            plain = f"{type(e).__name__}: {e}"
        else:
            raise RuntimeError("not applicable: the plain onnxruntime load works, no locale change is needed")
        if not _LOCALE_ERROR.search(plain):
            raise RuntimeError(f"not applicable: the plain load failed, but not on a locale: {plain[:300]}")
        loaded = super().load(req)  # the patched model (model_bytes)
        named = _LOCALE_NAME.search(plain)
        asked = ", ".join(sorted(self._asked)) or (f"{named.group(1)} (no locale attribute: onnxruntime's default)"
                                                   if named else "onnxruntime's default")
        loaded.notes[:0] = [f"attempt 1, plain onnxruntime load: {plain[:600]}",
                            f"attempt 2, StringNormalizer locale {asked} -> {self.locale}: loaded"]
        loaded.frictions.append(Friction(
            "environment-locale", f"StringNormalizer locale changed from {asked} to {self.locale}",
            "observed", f"plain load failed: {plain[:300]}; patched load with {self.locale} succeeded"))
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

    @classmethod
    def snippet_parts(cls, ctx: SnippetContext) -> tuple[list[str], list[str]]:
        value = "x.astype(str)" if ctx.text else "x"
        return ["import tensorflow as tf"], [
            'fn = tf.saved_model.load(ARTIFACT).signatures["serving_default"]',
            "(name, spec), = fn.structured_input_signature[1].items()",
            f"out = fn(**{{name: tf.constant({value})}})",
            "outputs = [out[k].numpy() for k in sorted(out)]",
        ]


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
        schema = module.forward.schema
        args = [a for a in schema.arguments if a.name != "self"]
        graph_inputs = list(module.graph.inputs())[1:]  # the first is the module itself
        seen = "; ".join(f"graph input {i.debugName()}: {i.type()} (dtype {_scalar(i.type())}, rank "
                         f"{_sizes(i.type())})" for i in graph_inputs)
        # A Tensor argument in a TorchScript schema carries neither dtype nor shape: the system's spec is
        # what gets fed. A List[str] (say) is a complete type, nothing to supply.
        open_ = [a.name for a, i in zip(args, graph_inputs, strict=False)
                 if isinstance(a.type, torch.TensorType) and (_scalar(i.type()) is None or _sizes(i.type()) is None)]
        frictions = [_supplied(req, f"forward's {', '.join(open_)} is a Tensor of no declared dtype or shape",
                               f"schema {schema}; {seen}")] if open_ else []
        return _Loaded(lambda inputs: torch_call(module, inputs), [f"TorchScript schema: {schema}; {seen}"],
                       frictions, bind=lambda inputs: torch_bind(module, inputs))

    @classmethod
    def snippet_parts(cls, ctx: SnippetContext) -> tuple[list[str], list[str]]:
        return ["import torch"], ['module = torch.jit.load(ARTIFACT, map_location="cpu").eval()',
                                  *torch_snippet("module", ctx.text)]


def _scalar(t: Any) -> Any:
    import torch

    return t.scalarType() if isinstance(t, torch.TensorType) else "n/a"


def _sizes(t: Any) -> Any:
    """The rank a graph input's type records (None: not recorded); ``sizes()`` asserts on unsized types."""
    import torch

    return t.dim() if isinstance(t, torch.TensorType) else "n/a"


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
            seen = inspected(obj)
            notes.append(f"no input signature on the object: {seen}")
            frictions.append(_supplied(req, f"the deserialised {type(obj).__qualname__} records no input "
                                            "dtype or shape", seen))
        loaded = _Loaded(lambda inputs: caller.call(obj, inputs), notes, frictions)
        loaded.facts = {"family": caller.family, **caller.facts(obj)}
        return loaded

    @classmethod
    def snippet_read(cls) -> tuple[list[str], list[str]]:
        raise NotImplementedError

    @classmethod
    def snippet_parts(cls, ctx: SnippetContext) -> tuple[list[str], list[str]] | None:
        call = SNIPPET_CALLS.get(ctx.facts.get("family", ""))
        if call is None:
            return None
        imports, read = cls.snippet_read()
        call_imports, body = call(ctx)
        return [*imports, *call_imports], [*read, *body]


class PickleLoad(_ObjectRoute):
    name = "pickle"
    kind = "native"
    format = "pickle"
    stack = "python"

    @classmethod
    def snippet_read(cls) -> tuple[list[str], list[str]]:
        return ["import pickle"], ['with open(ARTIFACT, "rb") as f:', "    model = pickle.load(f)"]

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

    @classmethod
    def snippet_read(cls) -> tuple[list[str], list[str]]:
        return ["import joblib"], ["model = joblib.load(ARTIFACT)"]

    def read(self, req: LoadRequest) -> Any:
        import joblib

        return joblib.load(req.artifact)


ROUTES: tuple[type[Route], ...] = (OnnxRuntime, OnnxRuntimeHostLocale, TfSavedModel, TorchJit, PickleLoad, JoblibLoad)
