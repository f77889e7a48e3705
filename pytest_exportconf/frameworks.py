"""Frameworks: what trains and exports a model (the producer)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata


@dataclass(frozen=True)
class Framework:
    name: str
    label: str
    packages: tuple[str, ...]  # distributions whose versions identify the producer (cache key, outcome)

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


# numpy is in every producer's key: a pickle written under numpy 2 does not load under numpy 1.26
# ("MT19937 is not a known BitGenerator module"), so envs sharing one cache must not share such exports.
BUILTIN = (
    Framework("tensorflow", "TensorFlow/Keras", ("tensorflow-cpu", "tensorflow", "keras", "tf2onnx", "numpy")),
    Framework("torch", "PyTorch", ("torch", "onnxscript", "numpy")),
    Framework("sklearn", "scikit-learn", ("scikit-learn", "skl2onnx", "joblib", "numpy")),
)
