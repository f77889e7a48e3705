"""Every friction kind the Python side records: a test that makes it fire and one that keeps it silent.

The Node-side kinds (``missing-types`` here against the real TypeScript harness; ``broken-types``,
``extra-toolchain``, ``conversion-step`` and ``bridge`` through the pinned full matrix in
test_end_to_end.py) are made to fire by the real harness and converter.
"""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import add_test_stack

from pytest_exportconf import rubric
from pytest_exportconf.concepts import Friction
from pytest_exportconf.registry import LoadRequest, TensorSpec


def kinds(frictions: list[Friction]) -> list[str]:
    return [f.kind for f in frictions]


# ---- route kinds ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "friction", "source"), [("converted", "conversion-step", "observed"),
                                                           ("bridge", "bridge", "observed"),
                                                           ("unofficial", "unofficial-runtime", "declared")])
def test_route_kind_frictions_fire_with_their_source(kind: str, friction: str, source: str) -> None:
    (f,) = rubric.implied(kind, "what showed it")  # type: ignore[arg-type]
    assert (f.kind, f.source, f.evidence) == (friction, source, "what showed it")


def test_a_native_route_implies_no_friction() -> None:
    assert rubric.implied("native") == []


def test_every_friction_kind_has_a_severity_and_a_source_is_validated() -> None:
    assert {"input-coercion", "exporter-fallback"} <= set(rubric.FRICTIONS)
    with pytest.raises(ValueError, match="valid sources: observed, declared"):
        Friction("bridge", source="guessed")  # type: ignore[arg-type]
    f = Friction("bridge", "d", "declared", "a documented fact")
    assert Friction.from_dict(f.to_dict()) == f


# ---- io-signature-supplied -----------------------------------------------------------------------------

def _scripted(tmp_path: Path, text: bool) -> Path:
    import torch

    from pytest_exportconf.fixtures.torch_text import TextModel

    if text:
        spec = {"vocabulary": {"good": 0, "bad": 1}, "idf": [1.0, 2.0]}
        module: Any = TextModel(spec, torch.nn.Linear(2, 1))
    else:
        module = torch.nn.Sequential(torch.nn.Linear(3, 1))
    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(module.eval()), str(path))
    return path


def test_torchscript_tensor_input_fires_io_signature_supplied(tmp_path: Path) -> None:
    from pytest_exportconf.stacks.python import TorchJit

    loaded = TorchJit().load(LoadRequest(_scripted(tmp_path, text=False), (TensorSpec("x", "float32", (None, 3)),)))
    (f,) = loaded.frictions
    assert f.kind == "io-signature-supplied" and f.source == "observed"
    assert "Tensor" in f.evidence and "dtype None" in f.evidence  # read off the schema and graph inputs


def test_torchscript_text_input_carries_its_signature(tmp_path: Path) -> None:
    from pytest_exportconf.stacks.python import TorchJit

    loaded = TorchJit().load(LoadRequest(_scripted(tmp_path, text=True), (TensorSpec("text", "string", (None,)),)))
    assert loaded.frictions == []
    assert "str[] texts" in loaded.notes[0]
    out = loaded.predict({"text": np.array(["GOOD good", "bad", ""], dtype=object)})
    assert out[0].shape == (3, 1)


class WithExample:
    """Stands in for a Lightning-style module: carries ``example_input_array``."""


def _pickled(tmp_path: Path, obj: Any) -> Path:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(obj))
    return path


def test_pickled_module_is_inspected_and_fires(tmp_path: Path) -> None:
    import torch

    from pytest_exportconf.stacks.python import PickleLoad

    path = _pickled(tmp_path, torch.nn.Linear(3, 1))
    loaded = PickleLoad().load(LoadRequest(path, (TensorSpec("x", "float32", (None, 3)),)))
    (f,) = loaded.frictions
    assert f.kind == "io-signature-supplied" and f.source == "observed"
    assert f.evidence.startswith("inspected torch.nn.modules.linear.Linear.forward(input: torch.Tensor)")


def test_pickled_module_with_an_example_input_is_silent(tmp_path: Path) -> None:
    import torch

    from pytest_exportconf.stacks.python import PickleLoad

    module = torch.nn.Linear(3, 1)
    module.example_input_array = torch.zeros(1, 3)  # type: ignore[assignment]
    loaded = PickleLoad().load(LoadRequest(_pickled(tmp_path, module), (TensorSpec("x", "float32", (None, 3)),)))
    assert loaded.frictions == []
    assert "example_input_array torch.float32[1, 3]" in " ".join(loaded.notes)


# ---- environment-locale ----------------------------------------------------------------------------------

def _normalizer(path: Path, locale: str | None) -> Path:
    from onnx import TensorProto, helper, save

    attrs: dict[str, Any] = {"case_change_action": "LOWER"}
    if locale:
        attrs["locale"] = locale
    node = helper.make_node("StringNormalizer", ["text"], ["lower"], **attrs)
    score = helper.make_node("Constant", [], ["score"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5]))
    graph = helper.make_graph([node, score], "g", [helper.make_tensor_value_info("text", TensorProto.STRING, [None])],
                              [helper.make_tensor_value_info("lower", TensorProto.STRING, [None]),
                               helper.make_tensor_value_info("score", TensorProto.FLOAT, [1])])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


TEXT = TensorSpec("text", "string", (None,))


def test_locale_fires_only_after_the_plain_load_failed_on_the_locale(tmp_path: Path) -> None:
    from pytest_exportconf.stacks.python import OnnxRuntime, OnnxRuntimeHostLocale

    req = LoadRequest(_normalizer(tmp_path / "m.onnx", "en_US.UTF-8"), (TEXT,))
    try:
        OnnxRuntime().load(req)
    except Exception as e:
        assert "locale" in str(e)
    else:
        pytest.skip("this host has the en_US.UTF-8 locale: the plain load works, nothing to detect")
    loaded = OnnxRuntimeHostLocale().load(req)
    (f,) = loaded.frictions
    assert f.kind == "environment-locale" and f.source == "observed"
    assert f.detail == "StringNormalizer locale changed from en_US.UTF-8 to C.UTF-8"
    assert f.evidence.startswith("plain load failed: ") and "Failed to construct locale" in f.evidence
    assert loaded.notes[0].startswith("attempt 1, plain onnxruntime load: ")
    assert loaded.notes[1].startswith("attempt 2, StringNormalizer locale en_US.UTF-8 -> C.UTF-8: loaded")
    assert list(loaded.predict({"text": np.array(["MiXeD"], dtype=object)})[0]) == ["mixed"]


@pytest.mark.parametrize("model", ["locale C.UTF-8", "no StringNormalizer"])
def test_locale_silent_when_the_plain_load_works(tmp_path: Path, model: str) -> None:
    from onnx import TensorProto

    from pytest_exportconf.stacks.python import OnnxRuntimeHostLocale

    path = (_normalizer(tmp_path / "m.onnx", "C.UTF-8") if model == "locale C.UTF-8"
            else _identity(tmp_path / "m.onnx", TensorProto.STRING, ["N"]))
    with pytest.raises(RuntimeError, match="not applicable: the plain onnxruntime load works"):
        OnnxRuntimeHostLocale().load(LoadRequest(path, (TEXT,)))


def test_locale_silent_when_the_plain_load_fails_for_another_reason(tmp_path: Path) -> None:
    from pytest_exportconf.stacks.python import OnnxRuntimeHostLocale

    bad = tmp_path / "m.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="not applicable: the plain load failed, but not on a locale"):
        OnnxRuntimeHostLocale().load(LoadRequest(bad, (TEXT,)))


# ---- input-coercion --------------------------------------------------------------------------------------

def _identity(path: Path, elem: int, shape: list[Any]) -> Path:
    from onnx import helper, save

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", elem, shape)],
                              [helper.make_tensor_value_info("y", elem, shape)])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


@pytest.mark.parametrize(("elem", "shape", "x", "detail"), [
    ("DOUBLE", ["N", 3], np.ones((2, 3), np.float32), "input x: cast float32 to float64"),
    ("STRING", ["N", 1], np.array(["a", "b"], dtype=object), "input x: reshaped [2] to [2, 1]"),
])
def test_input_coercion_fires_with_what_was_coerced(tmp_path: Path, elem: str, shape: list[Any], x: np.ndarray,
                                                    detail: str) -> None:
    from onnx import TensorProto

    from pytest_exportconf.stacks.python import OnnxRuntime

    model = _identity(tmp_path / "m.onnx", getattr(TensorProto, elem), shape)
    loaded = OnnxRuntime().load(LoadRequest(model, (TensorSpec("x", "float32", (None, 3)),)))
    assert loaded.frictions == []  # nothing coerced before a call
    loaded.predict({"x": x})
    loaded.predict({"x": x})
    (f,) = loaded.frictions  # once, however many calls
    assert (f.kind, f.source) == ("input-coercion", "observed") and f.detail.startswith(detail)
    assert f.evidence.startswith("the system sends x as ") and "the graph declares" in f.evidence


def test_input_coercion_silent_when_the_input_fits(tmp_path: Path) -> None:
    from onnx import TensorProto

    from pytest_exportconf.stacks.python import OnnxRuntime

    loaded = OnnxRuntime().load(LoadRequest(_identity(tmp_path / "m.onnx", TensorProto.FLOAT, ["N", 3]),
                                            (TensorSpec("x", "float32", (None, 3)),)))
    loaded.predict({"x": np.ones((2, 3), np.float32)})
    assert loaded.frictions == []


# ---- exporter-fallback and external-data-file ----------------------------------------------------------------

def test_exporter_fallback_fires_when_from_keras_fails(tmp_path: Path) -> None:
    import keras

    from pytest_exportconf.formats.onnx import export_tensorflow
    from pytest_exportconf.registry import Exportable

    model = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(1)])
    res = export_tensorflow(Exportable("tensorflow", "plain", model, TensorSpec("x", "float32", (None, 3)),
                                       np.zeros(1)), tmp_path)
    if int(keras.__version__.split(".")[0]) < 3:
        pytest.skip(f"Keras {keras.__version__}: tf2onnx from_keras may work here")
    assert res.exporter.endswith("from_function")
    (f,) = [f for f in res.frictions if f.kind == "exporter-fallback"]
    assert f.source == "observed" and f.evidence.startswith("from_keras raised ")


def test_exporter_fallback_silent_when_the_first_exporter_is_the_one(tmp_path: Path) -> None:
    import tensorflow as tf

    from pytest_exportconf.formats.onnx import export_tensorflow
    from pytest_exportconf.registry import Exportable

    class Doubler(tf.Module):  # no Keras layers: from_function is the documented entry point
        def __call__(self, x: Any) -> Any:
            return x * 2.0

    res = export_tensorflow(Exportable("tensorflow", "plain", Doubler(), TensorSpec("x", "float32", (None, 3)),
                                       np.zeros(1)), tmp_path)
    assert res.exporter.endswith("from_function") and res.frictions == []


def test_external_data_file_fires_on_the_file_found(tmp_path: Path) -> None:
    from pytest_exportconf.formats.onnx import MAIN, _external

    (tmp_path / MAIN).write_bytes(b"")
    assert _external(tmp_path) == []
    (tmp_path / f"{MAIN}.data").write_bytes(b"")
    (f,) = _external(tmp_path)
    assert f.kind == "external-data-file" and f.evidence == f"files found in the export directory: {MAIN}.data"


# ---- framework-switch ------------------------------------------------------------------------------------------

def _cells(path: Path) -> dict[str, Any]:
    return {c["cell"]: c for c in json.loads((path / "exportconf-results.json").read_text())["cells"]}


def test_no_framework_switch_when_the_primary_framework_was_not_measured(
    pytester: pytest.Pytester, run_subprocess: Callable[..., pytest.RunResult]
) -> None:
    result = run_subprocess("--exportconf-systems=number_predictor", "--exportconf-formats=onnx",
                            "--exportconf-stacks=python", "--exportconf-frameworks=sklearn")
    assert result.ret == 0, result.stdout.str()[-2000:]
    cell = _cells(pytester.path)["number_predictor/onnx/python"]
    assert cell["grade"] == "++", cell["reason"]
    assert "framework-switch" not in [f["kind"] for f in cell["frictions"]]
    assert "primary framework not measured (tensorflow" in cell["reason"]


def test_framework_switch_fires_when_the_primary_framework_failed(
    pytester: pytest.Pytester, run_subprocess: Callable[..., pytest.RunResult]
) -> None:
    add_test_stack(pytester, 'picky', 'picky_routes', 'RefusesTf2onnx')
    result = run_subprocess("--exportconf-systems=number_predictor", "--exportconf-formats=onnx",
                            "--exportconf-stacks=picky", "--exportconf-frameworks=tensorflow,sklearn")
    assert result.ret == 0, result.stdout.str()[-2000:]
    cell = _cells(pytester.path)["number_predictor/onnx/picky"]
    assert cell["winner"] == "sklearn/plain/refuses-tf2onnx" and cell["grade"] == "-"
    (switch,) = [f for f in cell["frictions"] if f["kind"] == "framework-switch"]
    assert switch["source"] == "observed"
    assert "does not take graphs produced by tf2onnx" in switch["evidence"]
    tf_row = cell["producers"][0]
    assert tf_row["framework"] == "tensorflow" and tf_row["winner"] is None
    assert "framework-switch" not in [f["kind"] for a in tf_row["attempts"] for f in a["frictions"]]


# ---- missing-types (the TypeScript harness) ---------------------------------------------------------------------

def _ts_harness(shared_cache: Path, tmp_path: Path, strip_types: bool) -> list[str]:
    """argv of the real TypeScript harness; with ``strip_types``, of a copy of it whose onnxruntime-node has
    its type definitions removed (package.json without "types", no .d.ts files)."""
    from pytest_exportconf.node import provision

    env = provision(shared_cache / "node", log=lambda m: None)
    argv = env.ts_argv()
    if not strip_types:
        return argv
    script = next(Path(a) for a in argv if a.endswith(".js") and Path(a).is_relative_to(env.harness))
    copy = tmp_path / "harness"
    shutil.copytree(env.harness, copy, symlinks=True, ignore=shutil.ignore_patterns("node_modules"))
    (copy / "node_modules").mkdir()
    for entry in (env.harness / "node_modules").iterdir():
        if entry.name != "onnxruntime-node":
            (copy / "node_modules" / entry.name).symlink_to(entry)
    untyped = copy / "node_modules" / "onnxruntime-node"
    shutil.copytree(env.harness / "node_modules" / "onnxruntime-node", untyped, symlinks=True,
                    ignore=shutil.ignore_patterns("*.d.ts", "*.d.ts.map"))
    pkg = json.loads((untyped / "package.json").read_text())
    pkg.pop("types", None)
    pkg.pop("typings", None)
    if "exports" in pkg:
        pkg["exports"] = json.loads(json.dumps(pkg["exports"]).replace('"types":', '"x-types":'))
    (untyped / "package.json").write_text(json.dumps(pkg))
    return [str(copy / script.relative_to(env.harness)) if a == str(script) else a for a in argv]


@pytest.mark.parametrize("strip_types", [True, False])
def test_missing_types_fires_only_for_a_package_without_type_definitions(shared_cache: Path, tmp_path: Path,
                                                                          strip_types: bool) -> None:
    """Against the real TypeScript harness (the layout helper's; this pins its behaviour)."""
    from pytest_exportconf import tensors
    from pytest_exportconf.childproc import Worker

    argv = _ts_harness(shared_cache, tmp_path, strip_types)
    model = _identity(tmp_path / "m.onnx", 1, ["N", 3])  # 1: FLOAT
    w = Worker("node-ts", lambda: argv)
    try:
        resp = w.call({"op": "run", "route": "onnxruntime-node", "artifact": str(model), "preprocessing": None,
                       "inputs": tensors.encode(np.ones((2, 3), np.float32), "x"),
                       "input_spec": {"name": "x", "dtype": "float32", "shape": [None, 3]}, "repeats": 1}, 120)
    finally:
        w.close()
    assert resp["ok"], resp
    found = [f for f in resp["frictions"] if f["kind"] == "missing-types"]
    if strip_types:
        (f,) = found
        assert "onnxruntime-node ships no type definitions" in f["detail"]
    else:
        assert found == []
