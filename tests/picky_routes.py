"""A route that refuses one exporter's artifacts, so that the format's primary framework fails for real
(importable by the worker)."""

from __future__ import annotations

from pytest_exportconf.registry import Loaded, LoadRequest
from pytest_exportconf.stacks.python import OnnxRuntime


class RefusesTf2onnx(OnnxRuntime):
    """onnxruntime, except on graphs tf2onnx wrote: a runtime with a gap on the primary's exports."""

    name, kind, format, stack = "refuses-tf2onnx", "native", "onnx", "picky"

    def load(self, req: LoadRequest) -> Loaded:
        import onnx

        producer = onnx.load(str(req.artifact), load_external_data=False).producer_name
        if producer == "tf2onnx":
            raise ValueError(f"this runtime does not take graphs produced by {producer}")
        return super().load(req)
