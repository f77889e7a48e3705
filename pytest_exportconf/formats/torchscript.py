"""PyTorch TorchScript: a zip of code and tensors written by torch.jit.save."""

from __future__ import annotations

from pathlib import Path

from ..registry import Exportable, Exporter, ExportResult, Format

MAIN = "model.pt"


def export_torch(ex: Exportable, out: Path) -> ExportResult:
    import torch

    torch.jit.save(torch.jit.script(ex.model), str(out / MAIN))
    return ExportResult(MAIN, f"torch.jit.script {torch.__version__}")


class TorchScript(Format):
    name = "torchscript"
    label = "TorchScript"
    study_label = "PyTorch"
    primary_framework = "torch"
    executes_code_on_load = True  # TorchScript code runs; the zip also holds pickled data

    def exporters(self) -> dict[str, Exporter]:
        return {"torch": export_torch}
