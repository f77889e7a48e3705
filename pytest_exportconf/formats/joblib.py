"""Joblib: pickle with numpy arrays stored apart (runs code on load)."""

from __future__ import annotations

from pathlib import Path

from ..registry import Exportable, Exporter, ExportResult, Format

MAIN = "model.joblib"


def export_object(ex: Exportable, out: Path) -> ExportResult:
    import joblib

    joblib.dump(ex.model, out / MAIN)
    return ExportResult(MAIN, f"joblib.dump {joblib.__version__}")


class Joblib(Format):
    name = "joblib"
    label = "Joblib"
    study_label = "Joblib"
    primary_framework = "tensorflow"
    executes_code_on_load = True

    def exporters(self) -> dict[str, Exporter]:
        return {"tensorflow": export_object, "torch": export_object, "sklearn": export_object}
