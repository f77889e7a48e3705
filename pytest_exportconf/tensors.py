"""Tensors on the wire: the encoding every worker (Python or Node) speaks.

A tensor is ``{"dtype", "shape", "data"}``; numeric data are the raw little-endian bytes in base64
(int64 stays exact: Node reads it as BigInt64Array), strings are a JSON list. See docs/protocol.md.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

NUMERIC = ("float32", "float64", "int8", "int32", "int64", "uint8", "bool")


def encode(value: Any, name: str | None = None) -> dict[str, Any]:
    arr = np.asarray(value)
    if arr.dtype.kind in "OUS":
        return {"name": name, "dtype": "string", "shape": list(arr.shape),
                "data": [str(v) for v in arr.reshape(-1).tolist()]}
    dtype = arr.dtype.name
    if dtype not in NUMERIC:
        raise TypeError(f"cannot send dtype {dtype}; supported: {', '.join(NUMERIC)}, string")
    raw = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
    return {"name": name, "dtype": dtype, "shape": list(arr.shape), "data": base64.b64encode(raw).decode("ascii")}


def decode(t: dict[str, Any]) -> np.ndarray:
    shape = tuple(int(s) for s in t["shape"])
    if t["dtype"] == "string":
        return np.array(t["data"], dtype=object).reshape(shape)
    if t["dtype"] not in NUMERIC:
        raise TypeError(f"unknown tensor dtype {t['dtype']!r}; supported: {', '.join(NUMERIC)}, string")
    dt = np.dtype(t["dtype"]).newbyteorder("<")
    return np.frombuffer(base64.b64decode(t["data"]), dtype=dt).astype(dt.newbyteorder("=")).reshape(shape)


def encode_inputs(golden: Any) -> list[dict[str, Any]]:
    """Golden inputs on the wire: a dict of named arrays (in the model's order), or one array (unnamed:
    fed to the model's only input)."""
    if isinstance(golden, dict):
        return [encode(v, str(k)) for k, v in golden.items()]
    return [encode(golden)]
