"""Built-in formats: one module each, an exporter per framework that can produce it."""

from __future__ import annotations

from ..registry import Format
from .joblib import Joblib
from .onnx import Onnx
from .pickle import Pickle
from .savedmodel import SavedModel
from .torchscript import TorchScript

BUILTIN: tuple[Format, ...] = (Onnx(), Pickle(), TorchScript(), SavedModel(), Joblib())
