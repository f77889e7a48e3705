"""A corpus of malicious and corrupt artifacts, generated at test time.

Generating has no side effect of its own: the payloads are bytes written into ``out``. When loaded,
each payload only tries to write a marker file ``markers/<case>`` (outside the sandbox, so a confined
load cannot) or to reveal a secret environment variable in an error message. Every case names the
format it is declared as and a regular expression its report line must match.
"""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SECRET_VAR = "EXPORTCONF_TEST_SECRET"


@dataclass
class Case:
    name: str
    format: str
    file: str  # relative to the corpus directory
    reason: str  # regex the cell's report (verdict, refusal or error) must match when not trusted


def _s(text: str) -> bytes:
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data if len(data) < 256 else b"X" + struct.pack("<I", len(data)) + data


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _call(module: str, name: str, *args: str) -> bytes:
    """GLOBAL module.name, a tuple of string args, REDUCE: the classic gadget (protocol 2 opcodes)."""
    return _global(module, name) + b"(" + b"".join(_s(a) for a in args) + b"tR"


def _pickle(body: bytes) -> bytes:
    return b"\x80\x04" + body + b"."


def _marker_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('payload ran')"


def _trojan(model_pickle: bytes, payload: bytes) -> bytes:
    """A working model pickle with a payload run (and its result popped) before the model is built."""
    assert model_pickle[:1] == b"\x80"
    body = model_pickle[2:]
    if body[:1] == b"\x95":  # a protocol-4 frame header: drop it (frames are optional)
        body = body[9:]
    return model_pickle[:2] + payload + b"0" + body


class _Exec:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (self.code,))


def _torchscript_bytes() -> bytes:
    """A real TorchScript archive of a tiny module, made with torch.jit (its data.pkl is replaced)."""
    import torch

    module = torch.jit.script(torch.nn.Linear(3, 1))
    buf = io.BytesIO()
    torch.jit.save(module, buf)
    return buf.getvalue()


def _replace_member(zip_bytes: bytes, suffix: str, data: bytes) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(zip_bytes))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info, data if info.filename.endswith(suffix) else src.read(info.filename))
    return out.getvalue()


def _keras_lambda_zip() -> bytes:
    config = {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 3]}},
        {"module": "keras.layers", "class_name": "Lambda",
         "config": {"function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA"}}}},
    ]}}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", b"")
    return out.getvalue()


def _onnx_escaping(path: Path) -> None:
    from onnx import TensorProto, helper

    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3, 1])
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../../../../etc/passwd"), ("offset", "0"), ("length", "12")):
        entry = w.external_data.add()
        entry.key, entry.value = k, v
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())


def generate(out: Path, markers: Path) -> tuple[list[Case], Path]:
    """Write the corpus into ``out``; return its cases and the golden file (inputs and a real model's
    outputs, so a trojaned working model would pass if it were loaded)."""
    import joblib
    from sklearn.linear_model import LinearRegression

    out.mkdir(parents=True, exist_ok=True)
    markers.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    model = LinearRegression().fit(x, x @ np.array([1.0, -2.0, 0.5]))
    golden = out / "golden.npz"
    np.savez(golden, inputs=x[:4], outputs=model.predict(x[:4]))
    clean = pickle.dumps(model, protocol=4)
    cases: list[Case] = []

    def add(name: str, fmt: str, filename: str, data: bytes | Callable[[Path], None], reason: str) -> None:
        path = out / name / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(data):
            data(path)
        else:
            path.write_bytes(data)
        cases.append(Case(name, fmt, f"{name}/{filename}", reason))

    def m(name: str) -> str:
        return _marker_code(markers / name)

    secret = f"raise RuntimeError('SECRET=' + __import__('os').environ.get({SECRET_VAR!r}, 'absent'))"
    add("exec", "pickle", "model.pkl", _pickle(_call("builtins", "exec", m("exec"))), "dangerous: builtins.exec")
    add("eval", "pickle", "model.pkl", _pickle(_call("builtins", "eval", m("eval"))), "dangerous: builtins.eval")
    add("os-system", "pickle", "model.pkl", _pickle(_call("os", "system", f"touch {markers / 'os-system'}")),
        r"dangerous: (os|posix)\.system")
    inner = _pickle(_call("builtins", "exec", m("nested")))
    add("nested-pickle", "pickle", "model.pkl",
        _pickle(_global("pickle", "loads") + b"(" + b"C" + bytes([len(inner)]) + inner + b"tR"),
        r"dangerous: .*pickle\.loads")
    open_file = _call("builtins", "open", str(markers / "methodcaller"), "w")
    add("methodcaller", "pickle", "model.pkl",
        _pickle(_call("operator", "methodcaller", "write", "x") + b"(" + open_file + b"tR"),
        r"dangerous: .*operator\.methodcaller")
    add("stacked", "pickle", "model.pkl", clean + _pickle(_call("builtins", "exec", m("stacked"))),
        "dangerous: builtins.exec")
    # obfuscated: the module and attribute names come back from the memo; __import__ + getattr, no GLOBAL os
    memo = _s("os") + b"q\x01" + _s("system") + b"q\x02"
    obf = (memo + _global("builtins", "getattr") + b"(" + _global("builtins", "__import__") + b"(h\x01tR"
           + b"h\x02tR" + b"(" + _s(f"touch {markers / 'obfuscated'}") + b"tR")
    add("obfuscated-import", "pickle", "model.pkl", _pickle(obf), r"dangerous: .*builtins\.(__import__|getattr)")
    # outside picklescan's denylist: code.InteractiveInterpreter.runsource(interpreter, source)
    interp = (b"\x80\x04" + _s("code") + _s("InteractiveInterpreter.runsource") + b"\x93"
              + b"(" + _s("code") + _s("InteractiveInterpreter") + b"\x93)R" + _s(m("interpreter")) + b"tR.")
    add("interactive-interpreter", "pickle", "model.pkl", interp, r"dangerous: code\.InteractiveInterpreter")
    add("trojan-model", "pickle", "model.pkl", _trojan(clean, _call("builtins", "exec", m("trojan-model"))),
        "dangerous: builtins.exec")
    add("env-secret", "pickle", "model.pkl", _pickle(_call("builtins", "exec", secret)), "dangerous: builtins.exec")
    spawn = ("import subprocess; subprocess.Popen(['setsid', 'sh', '-c', 'sleep 300 # exportconf-corpus-orphan'], "
             f"start_new_session=True); {m('grandchild')}")
    add("grandchild", "pickle", "model.pkl", _pickle(_call("builtins", "exec", spawn)), "dangerous: builtins.exec")

    def joblib_plain(path: Path) -> None:
        buf = io.BytesIO()
        joblib.dump(model, buf)
        path.write_bytes(_trojan(buf.getvalue(), _call("builtins", "exec", m("joblib-trojan"))))

    add("joblib-trojan", "joblib", "model.joblib", joblib_plain, "dangerous: builtins.exec")
    add("joblib-compressed", "joblib", "model.joblib",
        lambda p: joblib.dump(_Exec(m("joblib-compressed")), p, compress=3), "dangerous: builtins.exec")
    add("joblib-object-array", "joblib", "model.joblib",
        lambda p: joblib.dump(np.array([_Exec(m("joblib-object-array")), 1], dtype=object), p),
        "dangerous: builtins.exec")
    torchscript = _torchscript_bytes()
    add("torchscript-data-pkl", "torchscript", "model.pt",
        _replace_member(torchscript, "data.pkl", _pickle(_call("builtins", "exec", m("torchscript-data-pkl")))),
        "dangerous: builtins.exec")
    pt_zip = io.BytesIO()
    with zipfile.ZipFile(pt_zip, "w") as z:
        z.writestr("archive/data.pkl", _pickle(_call("builtins", "exec", m("pt-zip"))))
        z.writestr("archive/version", "3\n")
    add("pt-zip", "torchscript", "model.pt", pt_zip.getvalue(), "dangerous: builtins.exec")
    add("not-a-pickle", "pickle", "model.pkl", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        r"unscannable: .*not a pickle")
    add("truncated-pickle", "pickle", "model.pkl", clean[: len(clean) // 2], r"unscannable: .*cannot be replayed")

    def truncated_joblib(path: Path) -> None:
        buf = io.BytesIO()
        joblib.dump(model, buf)
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])

    add("truncated-joblib", "joblib", "model.joblib", truncated_joblib, r"unscannable: ")
    add("empty", "pickle", "model.pkl", b"", r"unscannable: .*empty")
    # a memo bomb: LONG_BINPUT at index 2**32-2 makes the C unpickler size its memo for 4 G entries
    add("memo-bomb", "pickle", "model.pkl", b"\x80\x04" + b"N" + b"r" + struct.pack("<I", 2**32 - 2) + b".",
        r"unscannable: .*memo bomb")
    add("onnx-external-escape", "onnx", "model.onnx", _onnx_escaping, r"dangerous: onnx external data")
    keras = _keras_lambda_zip()
    keras_pickle = (b"\x80\x04" + _s("builtins") + _s("getattr") + b"\x93" + _s("keras.src.models.sequential")
                    + _s("Sequential") + b"\x93" + _s("_unpickle_model") + b"\x86R" + _s("_io") + _s("BytesIO")
                    + b"\x93" + b"B" + struct.pack("<I", len(keras)) + keras + b"\x85R\x85R.")
    add("keras-lambda", "pickle", "model.pkl", keras_pickle, r"dangerous: keras Lambda layer")
    for c in cases:  # every generated pickle must at least be well-formed where it claims to be one
        if c.name in ("exec", "stacked", "trojan-model"):
            pickletools.genops(io.BytesIO((out / c.file).read_bytes()))
    return cases, golden
