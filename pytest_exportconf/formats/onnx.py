"""ONNX: a protobuf graph; exported by tf2onnx, torch.onnx (dynamo) and skl2onnx."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from ..concepts import Friction
from ..registry import Exportable, Exporter, ExportResult, Format
from ._tf import serving_function, tf_spec

MAIN = "model.onnx"
OPSET = 17


def _external(out: Path) -> list[Friction]:
    extra = sorted(p.name for p in out.iterdir() if p.name != MAIN)
    return [Friction("external-data-file", f"weights in {', '.join(extra)} beside {MAIN}", "observed",
                     f"files found in the export directory: {', '.join(extra)}")] if extra else []


def export_tensorflow(ex: Exportable, out: Path) -> ExportResult:
    import tf2onnx

    notes: list[str] = []
    fallback: list[Friction] = []
    if hasattr(ex.model, "layers"):  # a Keras model: the documented entry point first
        try:
            proto, _ = tf2onnx.convert.from_keras(ex.model, input_signature=[tf_spec(s) for s in ex.input_specs],
                                                  opset=OPSET)
            (out / MAIN).write_bytes(proto.SerializeToString())
            return ExportResult(MAIN, f"tf2onnx {tf2onnx.__version__} from_keras", notes, _external(out))
        except Exception as e:
            error = f"{type(e).__name__}: {str(e)[:300]}"
            notes.append(f"tf2onnx.convert.from_keras failed ({error}); "
                         "used from_function on a tf.function wrapping the model")
            fallback.append(Friction("exporter-fallback", "tf2onnx.convert.from_keras failed; "
                                     "tf2onnx.convert.from_function on a tf.function wrapping the model exported it",
                                     "observed", f"from_keras raised {error}"))
    fn = serving_function(ex.model, ex.input_specs)
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=[tf_spec(s) for s in ex.input_specs], opset=OPSET)
    (out / MAIN).write_bytes(proto.SerializeToString())
    return ExportResult(MAIN, f"tf2onnx {tf2onnx.__version__} from_function", notes, fallback + _external(out))


def export_torch(ex: Exportable, out: Path) -> ExportResult:
    import torch

    if any(s.dtype == "string" for s in ex.input_specs):  # a module taking List[str]: what does the exporter do?
        return _export_torch_text(ex, out)
    examples = tuple(torch.zeros((2, *[int(d or 1) for d in s.shape[1:]]), dtype=getattr(torch, s.dtype))
                     for s in ex.input_specs)
    torch.onnx.export(
        ex.model, examples, str(out / MAIN), input_names=[s.name for s in ex.input_specs],
        output_names=["score"], dynamic_shapes=tuple({0: torch.export.Dim("batch")} for _ in examples),
        opset_version=max(OPSET, 18),
    )
    return ExportResult(MAIN, f"torch.onnx.export (dynamo) {torch.__version__}", [], _external(out))


def _export_torch_text(ex: Exportable, out: Path) -> ExportResult:
    """torch.onnx.export on a text module: it traces the example strings into constants and writes a
    graph with no text input. Checked, not assumed: such a graph is refused with what it holds."""
    import onnx
    import torch

    examples = tuple(["an example review", "another one"] for _ in ex.input_specs)
    torch.onnx.export(ex.model, examples, str(out / MAIN), input_names=[s.name for s in ex.input_specs],
                      output_names=["score"], opset_version=max(OPSET, 18))
    graph = onnx.load(str(out / MAIN), load_external_data=False).graph
    if not graph.input:
        raise RuntimeError(f"torch.onnx.export {torch.__version__} wrote a graph with no inputs "
                           f"({len(graph.node)} nodes): the example text was traced into constants, the "
                           "preprocessing did not become graph ops")
    return ExportResult(MAIN, f"torch.onnx.export (dynamo) {torch.__version__}", [], _external(out))


def export_sklearn(ex: Exportable, out: Path) -> ExportResult:
    import skl2onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    spec, = ex.input_specs  # a scikit-learn estimator takes one input
    # skl2onnx wants text as a [N, 1] column of strings
    kind: Any = StringTensorType([None, 1]) if spec.dtype == "string" else FloatTensorType([None, spec.shape[1]])
    options = {"zipmap": False} if hasattr(ex.model, "predict_proba") else None
    proto = skl2onnx.to_onnx(ex.model, initial_types=[(spec.name, kind)], target_opset=OPSET,
                             options={id(ex.model): options} if options else None)
    (out / MAIN).write_bytes(proto.SerializeToString())
    return ExportResult(MAIN, f"skl2onnx {metadata.version('skl2onnx')}", [], _external(out))


def _tensors(graph: Any) -> list[Any]:
    """Every initializer of a graph and of the subgraphs in its nodes' attributes."""
    out = list(graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            out += [attr.t] if attr.HasField("t") else []
            for g in [attr.g] if attr.HasField("g") else list(attr.graphs):
                out += _tensors(g)
    return out


class Onnx(Format):
    name = "onnx"
    label = "ONNX"
    study_label = "ONNX"
    primary_framework = "tensorflow"

    def exporters(self) -> dict[str, Exporter]:
        return {"tensorflow": export_tensorflow, "torch": export_torch, "sklearn": export_sklearn}

    def companions(self, artifact: Path) -> list[Path]:
        """The external-data files the graph's initializers point at (``model.onnx.data``)."""
        import onnx
        from onnx.external_data_helper import ExternalDataInfo, uses_external_data

        try:
            model = onnx.load(str(artifact), load_external_data=False)
        except Exception as e:
            raise ValueError(f"{artifact} is not a readable ONNX model: {type(e).__name__}: {e}") from None
        found: list[Path] = []
        for tensor in _tensors(model.graph):
            if not uses_external_data(tensor):
                continue
            location = ExternalDataInfo(tensor).location
            rel = Path(location)
            inside = (artifact.parent / rel).resolve().is_relative_to(artifact.parent.resolve())
            if rel.is_absolute() or not inside:
                raise ValueError(f"tensor {tensor.name!r} keeps its data at {location!r}, outside the model's "
                                 "directory; refusing to read or copy it")
            if not (artifact.parent / rel).is_file():
                raise ValueError(f"tensor {tensor.name!r} keeps its data in {location!r}, which does not exist "
                                 f"beside {artifact.name}")
            if rel not in found:
                found.append(rel)
        return found
