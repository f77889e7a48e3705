"""Figures of the study this project re-runs (Parida, Gerostathopoulos, Bogner: *How Do Model Export
Formats Impact the Development of ML-Enabled Systems?*), used as data beside the measured ones."""

from __future__ import annotations

# Table IV: aggregated ease of integration per format and language (both systems together).
TABLE_IV: dict[str, dict[str, str]] = {
    "onnx": {"python": "+", "typescript": "++", "javascript": "++"},
    "pickle": {"python": "-", "typescript": "--", "javascript": "--"},
    "torchscript": {"python": "++", "typescript": "-", "javascript": "-"},
    "savedmodel": {"python": "++", "typescript": "+", "javascript": "+"},
    "joblib": {"python": "-", "typescript": "--", "javascript": "--"},
}

# The study's columns, in its order, with their names.
STACKS: dict[str, str] = {"python": "Python", "typescript": "TypeScript", "javascript": "JavaScript"}

# Tables II and III: exported sizes, as printed.
SIZES: dict[str, dict[str, str]] = {
    "number_predictor": {"onnx": "10.9 kB", "savedmodel": "142.8 kB", "torchscript": "29.8 kB",
                         "pickle": "63.7 kB", "joblib": "66.3 kB"},
    "sentiment": {"onnx": "37.3 MB", "savedmodel": "31.6 MB", "torchscript": "10.4 MB",
                  "pickle": "62.2 MB", "joblib": "62.2 MB"},
}


def study_grade(fmt: str, stack: str) -> str | None:
    return TABLE_IV.get(fmt, {}).get(stack)
