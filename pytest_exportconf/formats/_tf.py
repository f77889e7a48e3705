"""TensorFlow helpers shared by the exporters that start from a tf.function."""

from __future__ import annotations

from typing import Any

from ..registry import TensorSpec


def tf_spec(spec: TensorSpec) -> Any:
    import tensorflow as tf

    dtype = tf.string if spec.dtype == "string" else tf.as_dtype(spec.dtype)
    return tf.TensorSpec(list(spec.shape), dtype, name=spec.name)


def serving_function(model: Any, specs: tuple[TensorSpec, ...]) -> Any:
    """A tf.function with a fixed input signature returning ``{"score": model(x)}`` (the model called
    on a list of its inputs when it has several)."""
    import tensorflow as tf

    def serve(*xs: Any) -> dict[str, Any]:
        return {"score": model(xs[0] if len(xs) == 1 else list(xs))}

    return tf.function(serve, input_signature=[tf_spec(s) for s in specs])
