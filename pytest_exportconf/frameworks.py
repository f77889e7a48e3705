"""Frameworks: what trains and exports a model (the producer)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata


@dataclass(frozen=True)
class Framework:
    name: str
    label: str
    packages: tuple[str, ...]  # distributions whose versions identify the producer (cache key, outcome)
    # imported by a sandbox zygote before it forks the child that loads this producer's code-executing
    # artifact: the import is paid once per process instead of once per artifact
    modules: tuple[str, ...] = ()

    def versions(self) -> dict[str, str]:
        return package_versions(self.packages)


def package_versions(packages: tuple[str, ...] | list[str]) -> dict[str, str]:
    out = {}
    for p in packages:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


# numpy and onnx are in every producer's key: envs of a version matrix share one cache, and an export
# must come from its own env's versions (a pickle written under numpy 2 does not load under numpy 1.26;
# onnx 1.19 with TensorFlow 2.16's ml-dtypes 0.3 cannot export at all, which a reused export would hide).
BUILTIN = (
    Framework("tensorflow", "TensorFlow/Keras", ("tensorflow-cpu", "tensorflow", "keras", "tf2onnx", "numpy", "onnx"),
              ("tensorflow",)),
    Framework("torch", "PyTorch", ("torch", "onnxscript", "numpy", "onnx"), ("torch",)),
    Framework("sklearn", "scikit-learn", ("scikit-learn", "skl2onnx", "joblib", "numpy", "onnx"), ("sklearn",)),
)
