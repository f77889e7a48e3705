"""Scan an artifact that can run code when loaded, before anything loads it.

Two scanners look at every pickle stream found in an artifact (a pickle or joblib file, compressed or
not; the ``.pkl`` members of a TorchScript or ``torch.save`` zip; the pickles nested in those):

* **replay** (this module): the stream is replayed by a pickle machine whose ``find_class`` hands out
  inert stand-ins instead of the real callables, so no constructor, function or ``__reduce__`` of the
  artifact ever runs; only numpy's array primitives and ``io.BytesIO`` are real (joblib needs them to
  read its inline arrays). Every global the stream asks for is checked against an exact allow-list
  (:data:`ALLOWED`, :data:`ALLOWED_PREFIXES`): whatever obfuscation builds the name, the machine
  sees the final ``module.name``. The nested payloads the frameworks themselves use are followed:
  ``torch.storage._load_from_bytes`` (a ``torch.save`` archive inside a pickled module) and Keras's
  ``getattr(Model, "_unpickle_model")`` (a ``.keras`` zip, whose ``config.json`` is checked for
  ``Lambda`` layers and custom objects). A stream that cannot be replayed to its end is *unscannable*,
  never clean.
* **picklescan** (denylist of known gadgets), as a second opinion whose findings are added. Its own
  weak spots are covered by the wrapper: a scan error, "could not parse" and "0 files scanned" are
  failures, not clean results; its input is the decompressed stream.

fickling 0.1.12 was measured on the test corpus and left out: it rates clean torch, sklearn and Keras
pickles up to LIKELY_OVERTLY_MALICIOUS, and at OVERTLY_MALICIOUS (no false positive) it caught 10 of 18
payload files and nothing the replay missed (README, "Security").

ONNX files are checked for external-data paths that escape the model's directory.

Scanners are advisory; the sandbox (:mod:`pytest_exportconf.sandbox`) is the guarantee. The scan itself
runs in a sandboxed child forked from the broker's scanner zygote (the ``scan`` op): a memo or
decompression bomb costs that child, not the run. ``python -m pytest_exportconf.scan PATH`` scans a file
by hand, in this process.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import sys
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

VERSION = "1"  # bump when the rules change: cached verdicts are keyed on it
Status = Literal["clean", "dangerous", "unscannable", "none"]

# (module, name) pairs that are real objects during the replay: numpy's array rebuilding, needed to read
# joblib's inline arrays. Everything else the replay hands out is an inert stand-in.
REAL = {
    ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("_io", "BytesIO"), ("io", "BytesIO"),
}
NUMPY_SCALARS = {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
                 "uint32", "uint64", "bool_", "str_", "bytes_", "object_", "complex64", "complex128"}
# Exact globals a clean model pickle may name (beyond REAL and the prefixes below).
ALLOWED = REAL | {("numpy", s) for s in NUMPY_SCALARS} | {
    ("collections", "OrderedDict"), ("collections", "defaultdict"), ("copyreg", "_reconstructor"),
    ("builtins", "object"), ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "slice"),
    ("builtins", "complex"), ("builtins", "bytearray"), ("builtins", "range"),
    ("numpy.random._pickle", "__randomstate_ctor"), ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"), ("numpy.random._mt19937", "MT19937"),
    ("numpy.random._pcg64", "PCG64"), ("numpy.random.mtrand", "RandomState"),
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"), ("torch", "Size"), ("torch", "device"),
    ("torch", "float32"), ("torch", "float64"), ("torch", "int64"), ("torch", "FloatStorage"),
    ("torch", "DoubleStorage"), ("torch", "LongStorage"), ("torch", "IntStorage"),
    ("torch.storage", "UntypedStorage"), ("torch.storage", "TypedStorage"),
    ("torch.storage", "_load_from_bytes"),  # followed: its argument is scanned as a torch.save archive
    # TorchScript's typed containers (a scripted Dict[str, int] vocabulary): each returns the value it is given
    ("torch.jit._pickle", "restore_type_tag"), ("torch.jit._pickle", "build_intlist"),
    ("torch.jit._pickle", "build_doublelist"), ("torch.jit._pickle", "build_boollist"),
    ("torch.jit._pickle", "build_tensorlist"),
    ("keras.src.saving.keras_saveable", "KerasSaveable"),
    # TensorFlow objects a pickled tf.Module with a lookup table names (the sentiment system's TF model)
    ("tensorflow.python.framework.ops", "name_scope_v2"), ("tensorflow.python.ops.lookup_ops", "StaticHashTable"),
    ("tensorflow.python.ops.lookup_ops", "KeyValueTensorInitializer"),
    ("tensorflow.python.framework.tensor_conversion", "convert_to_tensor"),
    ("tensorflow.python.framework.ops", "convert_to_tensor"),
    ("tensorflow.python.trackable.base", "TrackableReference"),
}
# Module prefixes whose *classes* (a capitalised last name) a model pickle may name: estimators, layers,
# modules. A function under them (a lowercase name) is not allowed.
ALLOWED_PREFIXES = ("sklearn.", "torch.nn.modules.", "__torch__.", "keras.src.models.", "keras.src.layers.",
                    "pytest_exportconf.fixtures.")
KERAS_SAFE_MODULES = ("keras", "keras.layers", "keras.src", "keras.models", "keras.optimizers", "keras.losses",
                      "keras.metrics", "keras.initializers", "keras.regularizers", "keras.activations")
MAX_NESTED = 4
MAX_MEMO = 10_000_000
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # the first pickle of a legacy (non-zip) torch.save archive


def allowed(module: str, name: str) -> bool:
    if (module, name) in ALLOWED:
        return True
    last = name.split(".")[-1]
    return module.startswith(ALLOWED_PREFIXES) and last[:1].isupper() and "." not in name


@dataclass
class Verdict:
    """What the scanners found in one artifact: shown beside the grade, never folded into it."""

    status: Status
    findings: list[str] = field(default_factory=list)  # dangerous globals, or why it could not be scanned
    notes: list[str] = field(default_factory=list)  # what was scanned, by what
    scanners: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.status == "clean":
            return "clean"
        if self.status == "none":
            return "nothing to scan"
        return f"{self.status}: " + ", ".join(dict.fromkeys(self.findings)) if self.findings else self.status

    @property
    def safe(self) -> bool:
        return self.status in ("clean", "none")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"label": self.label}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        return cls(d["status"], list(d.get("findings", [])), list(d.get("notes", [])), list(d.get("scanners", [])))


# ---- the replay ------------------------------------------------------------------------------------------

class _Report:
    def __init__(self) -> None:
        self.dangerous: list[str] = []
        self.unscannable: list[str] = []
        self.notes: list[str] = []
        self.globals: set[str] = set()
        self.keras_getattr = False  # getattr seen only as Keras's own _unpickle_model call


class _StubMeta(type):
    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _stub_class(f"{cls._ref}.{name}")


class _Stub(metaclass=_StubMeta):
    """An inert stand-in for whatever the stream names: accepts any construction, state and items."""

    _ref = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _Stub()


def _stub_class(ref: str) -> type:
    return _StubMeta(ref.rsplit(".", 1)[-1], (_Stub,), {"_ref": ref})


def _unpickler_base() -> type:
    try:  # joblib's unpickler reads its inline arrays (and routes nested object arrays through find_class)
        from joblib.numpy_pickle import NumpyUnpickler

        return NumpyUnpickler
    except ImportError:
        return pickle._Unpickler


def _replay(fileobj: Any, report: _Report, where: str, depth: int) -> None:
    """Replay every pickle stream in ``fileobj`` (stacked ones too) with inert stand-ins."""
    base = _unpickler_base()

    class Replay(base):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            if base is pickle._Unpickler:
                super().__init__(fileobj)
            else:
                try:
                    super().__init__(where, fileobj, ensure_native_byte_order=False)
                except TypeError:  # joblib < 1.5
                    super().__init__(where, fileobj)

        def find_class(self, module: str, name: str) -> Any:
            ref = f"{module}.{name}"
            report.globals.add(ref)
            if not allowed(module, name):
                report.dangerous.append(ref)
            if (module, name) in REAL:
                return getattr(importlib.import_module(module), name)
            if module == "numpy" and name in NUMPY_SCALARS:
                import numpy

                return getattr(numpy, name)
            if (module, name) == ("joblib.numpy_pickle", "NumpyArrayWrapper"):
                from joblib.numpy_pickle import NumpyArrayWrapper

                return NumpyArrayWrapper
            if (module, name) == ("builtins", "getattr"):
                return _guarded_getattr(report, where, depth)
            if (module, name) == ("torch.storage", "_load_from_bytes"):
                return lambda data: _nested(data, report, f"{where} > torch.storage._load_from_bytes", depth)
            return _stub_class(ref)

        def persistent_load(self, pid: Any) -> Any:
            return _Stub()

        def _checked_put(self: Any, index: int) -> None:
            if index > MAX_MEMO:  # the C unpickler would size its memo for this many entries
                raise MemoryError(f"memo index {index:,} (a memo bomb)")
            self.memo[index] = self.stack[-1]

        def load_long_binput(self) -> None:
            self._checked_put(int.from_bytes(self.read(4), "little"))

        def load_put(self) -> None:
            self._checked_put(int(self.readline()[:-1]))

        dispatch = dict(base.dispatch)  # type: ignore[attr-defined]
        dispatch[pickle.LONG_BINPUT[0]] = load_long_binput
        dispatch[pickle.PUT[0]] = load_put

    streams = 0
    legacy_torch = False
    while True:
        head = fileobj.read(1)
        if not head:
            break
        fileobj.seek(-1, os.SEEK_CUR)
        if legacy_torch and streams == 5:  # magic, protocol, sys info, object, storage keys; then raw storages
            report.notes.append(f"{where}: legacy torch.save archive, {_size_left(fileobj)} bytes of raw storage data")
            break
        if streams and head != b"\x80":
            report.unscannable.append(f"{where}: {_size_left(fileobj)} bytes of non-pickle data after the pickle")
            break
        try:
            value = Replay().load()
            legacy_torch = legacy_torch or (streams == 0 and type(value) is int and value == TORCH_LEGACY_MAGIC)
        except MemoryError:
            report.unscannable.append(f"{where}: the pickle needs more memory than the scan allows (memo bomb?)")
            return
        except RecursionError:
            report.unscannable.append(f"{where}: the pickle nests too deep")
            return
        except Exception as e:
            what = "not a pickle" if streams == 0 and head != b"\x80" else "cannot be replayed"
            report.unscannable.append(f"{where}: {what}: {type(e).__name__}: {str(e)[:160]}")
            return
        streams += 1
    if streams > 1:
        report.notes.append(f"{where}: {streams} stacked pickle streams, all replayed")
    if streams == 0:
        report.unscannable.append(f"{where}: empty file")


def _size_left(f: Any) -> int:
    here = f.tell()
    end = f.seek(0, os.SEEK_END)
    f.seek(here)
    return int(end - here)


def _guarded_getattr(report: _Report, where: str, depth: int) -> Any:
    """``builtins.getattr`` as Keras pickles use it: only ``getattr(<keras model class>, "_unpickle_model")``
    is followed (its argument, a ``.keras`` zip, is scanned); any other use is a finding."""

    def ga(obj: Any, name: str, *default: Any) -> Any:
        ref = getattr(obj, "_ref", type(obj).__name__)
        if name == "_unpickle_model" and isinstance(obj, type) and ref.startswith("keras.src.models."):
            report.dangerous[:] = [d for d in report.dangerous if d != "builtins.getattr"]
            report.keras_getattr = True
            report.notes.append(f"{where}: Keras model pickled as getattr({ref}, '_unpickle_model')(.keras zip); "
                                "the zip was scanned")

            def unpickle_model(buf: Any) -> Any:
                data = buf.getvalue() if hasattr(buf, "getvalue") else bytes(buf)
                _scan_keras_zip(data, report, f"{where} > .keras")
                return _Stub()

            return unpickle_model
        report.keras_getattr = False
        report.dangerous.append(f"builtins.getattr({ref}, {name!r})")
        return _stub_class(f"{ref}.{name}")

    return ga


def _nested(data: Any, report: _Report, where: str, depth: int) -> Any:
    if depth >= MAX_NESTED:
        report.unscannable.append(f"{where}: nested deeper than {MAX_NESTED} levels")
    elif isinstance(data, bytes | bytearray):
        _scan_bytes(bytes(data), report, where, depth + 1)
    else:
        report.unscannable.append(f"{where}: argument is not bytes")
    return _Stub()


# ---- containers ----------------------------------------------------------------------------------------

def _scan_bytes(data: bytes, report: _Report, where: str, depth: int) -> None:
    if data[:4] == b"PK\x03\x04":
        _scan_zip(data, report, where, depth)
    else:
        _replay(io.BytesIO(data), report, where, depth)


def _scan_zip(data: bytes, report: _Report, where: str, depth: int) -> None:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        names = zf.namelist()
    except zipfile.BadZipFile as e:
        report.unscannable.append(f"{where}: broken zip: {e}")
        return
    if "config.json" in names and any(n.endswith(".weights.h5") or n == "metadata.json" for n in names):
        _scan_keras_zip(data, report, where)
        return
    pickles = [n for n in names if n.endswith(".pkl")]
    if not pickles:
        report.notes.append(f"{where}: zip without pickles ({len(names)} members)")
    for n in pickles:
        try:
            member = zf.read(n)
        except Exception as e:
            report.unscannable.append(f"{where}/{n}: unreadable: {type(e).__name__}: {e}")
            continue
        _replay(io.BytesIO(member), report, f"{where}/{n}", depth)
    report.notes.append(f"{where}: zip, {len(pickles)} pickle member(s) replayed: {', '.join(pickles)}")


def _scan_keras_zip(data: bytes, report: _Report, where: str) -> None:
    try:
        config = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("config.json"))
    except Exception as e:
        report.unscannable.append(f"{where}: no readable config.json: {type(e).__name__}: {e}")
        return
    for node in _walk(config):
        cls, module = node.get("class_name"), node.get("module")
        if cls in ("Lambda", "TFOpLambda"):
            report.dangerous.append(f"keras {cls} layer (serialized Python code)")
        elif isinstance(module, str) and isinstance(cls, str) and not module.startswith(KERAS_SAFE_MODULES):
            report.dangerous.append(f"keras custom object {module}.{cls} (imports Python code)")
    report.notes.append(f"{where}: Keras config.json checked for Lambda layers and custom objects")


def _walk(obj: Any) -> Any:
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)


def _scan_onnx(path: Path, report: _Report) -> None:
    try:
        import onnx
    except ImportError:
        report.notes.append(f"{path.name}: the onnx package is not installed: external-data paths not checked")
        return

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        report.unscannable.append(f"{path.name}: not a readable ONNX model: {type(e).__name__}: {str(e)[:160]}")
        return
    base = path.parent.resolve()
    tensors = list(model.graph.initializer)
    for t in tensors:
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        loc = next((e.value for e in t.external_data if e.key == "location"), "")
        target = (base / loc).resolve()
        if os.path.isabs(loc) or not target.is_relative_to(base):
            report.dangerous.append(f"onnx external data {loc!r} escapes the model directory")
    report.notes.append(f"{path.name}: ONNX external-data locations checked ({len(tensors)} initializers)")


def _picklescan(data: bytes, where: str, report: _Report) -> None:
    """picklescan on one (decompressed) stream; a failure to parse or to scan is not a clean result."""
    try:
        from picklescan.scanner import SafetyLevel, scan_pickle_bytes
    except ImportError:
        report.notes.append("picklescan not installed: replay only")
        return
    try:
        res = scan_pickle_bytes(io.BytesIO(data), where)
    except Exception as e:
        report.notes.append(f"picklescan failed on {where}: {type(e).__name__}: {e}")
        return
    if res.scan_err:
        report.notes.append(f"picklescan could not parse {where}")
    elif res.scanned_files == 0:
        report.notes.append(f"picklescan scanned 0 files in {where}")
    for g in res.globals:
        ref = f"{g.module}.{g.name}"
        if g.safety == SafetyLevel.Dangerous:
            if ref == "builtins.getattr" and report.keras_getattr:
                report.notes.append("picklescan flags builtins.getattr: the Keras _unpickle_model call the replay "
                                    "followed (no other getattr in the stream)")
                continue
            report.dangerous.append(ref)


def _decompressed(path: Path) -> bytes:
    """The pickle stream of a file, decompressed the way joblib.load would (zlib, gzip, bz2, xz, lzma)."""
    try:
        from joblib import numpy_pickle_utils as npu
    except ImportError:
        return path.read_bytes()
    opener = getattr(npu, "_validate_fileobject_and_memmap", None) or getattr(npu, "_read_fileobject", None)
    if opener is None:
        return path.read_bytes()
    with open(path, "rb") as f, opener(f, str(path), None) as g:
        fobj = g[0] if isinstance(g, tuple) else g
        return bytes(fobj.read())


def scan_path(path: Path, executes_code: bool = True) -> Verdict:
    """Scan one artifact (file or directory) in this process. Use :func:`scan` to do it in a sandbox."""
    path = Path(path)
    report = _Report()
    scanners = ["replay-allowlist"]
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    scanned = 0
    for f in files:
        rel = f.name if f == path else str(f.relative_to(path))
        if f.suffix == ".onnx":
            _scan_onnx(f, report)
            scanners.append("onnx-external-data")
            scanned += 1
            continue
        with open(f, "rb") as fh:
            magic = fh.read(4)
        if magic == b"PK\x03\x04":
            _scan_zip(f.read_bytes(), report, rel, 0)
            scanned += 1
        elif (executes_code and not path.is_dir()) or f.suffix in (".pkl", ".pickle", ".joblib", ".pt", ".pth"):
            try:
                data = _decompressed(f)
            except Exception as e:
                report.unscannable.append(f"{rel}: cannot be decompressed: {type(e).__name__}: {e}")
                scanned += 1
                continue
            _replay(io.BytesIO(data), report, rel, 0)
            _picklescan(data, rel, report)
            scanners.append("picklescan")
            scanned += 1
    scanners = list(dict.fromkeys(scanners))
    if report.dangerous:
        return Verdict("dangerous", list(dict.fromkeys(report.dangerous)), report.unscannable + report.notes, scanners)
    if report.unscannable:
        return Verdict("unscannable", report.unscannable, report.notes, scanners)
    if not scanned:
        return Verdict("none", [], [f"no pickled Python or ONNX file in {path.name}"], [])
    return Verdict("clean", [], report.notes, scanners)


def main(argv: list[str] | None = None) -> int:
    """``python -m pytest_exportconf.scan PATH [--data-only]``: print the verdict as JSON."""
    args = list(sys.argv[1:] if argv is None else argv)
    executes = "--data-only" not in args
    paths = [a for a in args if not a.startswith("--")]
    if len(paths) != 1:
        print("usage: python -m pytest_exportconf.scan PATH [--data-only]", file=sys.stderr)
        return 2
    sys.setrecursionlimit(3000)
    print(json.dumps(scan_path(Path(paths[0]), executes).to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
