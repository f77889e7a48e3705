"""Pickle: the model object as a Python pickle stream (runs code on load)."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

from ..registry import Exportable, Exporter, ExportResult, Format

MAIN = "model.pkl"


def export_object(ex: Exportable, out: Path) -> ExportResult:
    with open(out / MAIN, "wb") as f:
        pickle.dump(ex.model, f, protocol=pickle.DEFAULT_PROTOCOL)
    return ExportResult(MAIN, f"pickle protocol {pickle.DEFAULT_PROTOCOL} (Python {sys.version.split()[0]})")


class Pickle(Format):
    name = "pickle"
    label = "Pickle"
    study_label = "Pickle"
    primary_framework = "tensorflow"
    executes_code_on_load = True

    def exporters(self) -> dict[str, Exporter]:
        return {"tensorflow": export_object, "torch": export_object, "sklearn": export_object}
