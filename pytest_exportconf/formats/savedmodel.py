"""TensorFlow SavedModel: a directory (saved_model.pb, variables/, assets/) with serving signatures."""

from __future__ import annotations

from pathlib import Path

from ..registry import Exportable, Exporter, ExportResult, Format
from ._tf import serving_function

MAIN = "savedmodel"


def export_tensorflow(ex: Exportable, out: Path) -> ExportResult:
    import tensorflow as tf

    module = tf.Module()
    module.model = ex.model  # tracked, so its variables and tables are saved
    module.serve = serving_function(ex.model, ex.input_specs)
    tf.saved_model.save(module, str(out / MAIN), signatures={"serving_default": module.serve})
    return ExportResult(MAIN, f"tf.saved_model.save {tf.__version__}", ["signature serving_default -> {score}"])


class SavedModel(Format):
    name = "savedmodel"
    label = "SavedModel"
    study_label = "TensorFlow"
    primary_framework = "tensorflow"
    executes_code_on_load = False  # graph ops only, though some ops read and write files

    def exporters(self) -> dict[str, Exporter]:
        return {"tensorflow": export_tensorflow}
