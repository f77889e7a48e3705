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
            proto, _ = tf2onnx.convert.from_keras(ex.model, input_signature=[tf_spec(ex.input_spec)], opset=OPSET)
            (out / MAIN).write_bytes(proto.SerializeToString())
            return ExportResult(MAIN, f"tf2onnx {tf2onnx.__version__} from_keras", notes, _external(out))
        except Exception as e:
            error = f"{type(e).__name__}: {str(e)[:300]}"
            notes.append(f"tf2onnx.convert.from_keras failed ({error}); "
                         "used from_function on a tf.function wrapping the model")
            fallback.append(Friction("exporter-fallback", "tf2onnx.convert.from_keras failed; "
                                     "tf2onnx.convert.from_function on a tf.function wrapping the model exported it",
                                     "observed", f"from_keras raised {error}"))
    fn = serving_function(ex.model, ex.input_spec)
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=[tf_spec(ex.input_spec)], opset=OPSET)
    (out / MAIN).write_bytes(proto.SerializeToString())
    return ExportResult(MAIN, f"tf2onnx {tf2onnx.__version__} from_function", notes, fallback + _external(out))


def export_torch(ex: Exportable, out: Path) -> ExportResult:
    import torch

    if ex.input_spec.dtype == "string":  # a module taking List[str]: what does the exporter make of it?
        return _export_torch_text(ex, out)
    dims = [int(d or 1) for d in ex.input_spec.shape[1:]]
    example = torch.zeros((2, *dims), dtype=getattr(torch, ex.input_spec.dtype))
    torch.onnx.export(
        ex.model, (example,), str(out / MAIN), input_names=[ex.input_spec.name], output_names=["score"],
        dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=max(OPSET, 18),
    )
    return ExportResult(MAIN, f"torch.onnx.export (dynamo) {torch.__version__}", [], _external(out))


def _export_torch_text(ex: Exportable, out: Path) -> ExportResult:
    """torch.onnx.export on a text module: it traces the example strings into constants and writes a
    graph with no text input. Checked, not assumed: such a graph is refused with what it holds."""
    import onnx
    import torch

    torch.onnx.export(ex.model, (["an example review", "another one"],), str(out / MAIN),
                      input_names=[ex.input_spec.name], output_names=["score"], opset_version=max(OPSET, 18))
    graph = onnx.load(str(out / MAIN), load_external_data=False).graph
    if not graph.input:
        raise RuntimeError(f"torch.onnx.export {torch.__version__} wrote a graph with no inputs "
                           f"({len(graph.node)} nodes): the example text was traced into constants, the "
                           "preprocessing did not become graph ops")
    return ExportResult(MAIN, f"torch.onnx.export (dynamo) {torch.__version__}", [], _external(out))


def export_sklearn(ex: Exportable, out: Path) -> ExportResult:
    import skl2onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    spec = ex.input_spec
    # skl2onnx wants text as a [N, 1] column of strings
    kind: Any = StringTensorType([None, 1]) if spec.dtype == "string" else FloatTensorType([None, spec.shape[1]])
    options = {"zipmap": False} if hasattr(ex.model, "predict_proba") else None
    proto = skl2onnx.to_onnx(ex.model, initial_types=[(spec.name, kind)], target_opset=OPSET,
                             options={id(ex.model): options} if options else None)
    (out / MAIN).write_bytes(proto.SerializeToString())
    return ExportResult(MAIN, f"skl2onnx {metadata.version('skl2onnx')}", [], _external(out))


class Onnx(Format):
    name = "onnx"
    label = "ONNX"
    study_label = "ONNX"
    primary_framework = "tensorflow"

    def exporters(self) -> dict[str, Exporter]:
        return {"tensorflow": export_tensorflow, "torch": export_torch, "sklearn": export_sklearn}
