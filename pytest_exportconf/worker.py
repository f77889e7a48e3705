"""The Python load worker: a long-lived child process that loads artifacts and runs them.

Every load of an exported artifact happens here, never in the pytest process, so a runtime that
crashes or hangs costs one cell, not the run. It speaks the JSON-lines protocol of docs/protocol.md
on stdin/stdout; anything a library prints goes to stderr, which the parent keeps as the log.

Run as ``python -m pytest_exportconf.worker``.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import tensors
from .frameworks import package_versions
from .lines import open_channel, serve
from .preprocessing import apply_preprocessing
from .registry import Loaded, LoadRequest, PythonRoute, TensorSpec, resolve


def specs_of(req: dict[str, Any]) -> tuple[TensorSpec, ...]:
    """The request's ``input_spec``: a list of specs (one per input, in order), or one spec."""
    raw = req["input_spec"]
    specs = raw if isinstance(raw, list) else [raw]
    return tuple(TensorSpec(s["name"], s["dtype"], tuple(s["shape"])) for s in specs)


def named_inputs(tensors_: list[tuple[str | None, np.ndarray]], specs: tuple[TensorSpec, ...]) -> dict[str, np.ndarray]:
    """The golden inputs keyed by the system's input names: by their own names when they carry every
    spec's name, else by position."""
    names = [n for n, _ in tensors_]
    want = [s.name for s in specs]
    if all(n in names for n in want):
        return {n: tensors_[names.index(n)][1] for n in want}
    if len(tensors_) != len(specs):
        raise ValueError(f"the request carries {len(tensors_)} input(s) {names} for {len(specs)} input spec(s) {want}")
    return {s.name: a for s, (_, a) in zip(specs, tensors_, strict=True)}


def handle_run(req: dict[str, Any]) -> dict[str, Any]:
    route: PythonRoute = resolve(req["route"])()
    specs = specs_of(req)
    raw = req["inputs"] if isinstance(req["inputs"], list) else [req["inputs"]]
    given = [(t.get("name"), tensors.decode(t)) for t in raw]
    prep_path = Path(req["preprocessing"]) if req.get("preprocessing") else None
    load_req = LoadRequest(Path(req["artifact"]), specs)
    t0 = time.perf_counter()
    for module in route.imports:  # the runtime's import, timed apart: it is paid once per process
        importlib.import_module(module)
    import_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    loaded = route.load(load_req)
    prep = json.loads(prep_path.read_text()) if prep_path else None
    load_ms = (time.perf_counter() - t0) * 1000

    if prep is not None:  # the separate variant: raw text in, the model's vector input out; timed with it
        (_, text), = given

        def infer() -> list[Any]:
            return loaded.predict({specs[0].name: apply_preprocessing(prep, text)})

        outputs, timed = infer(), infer
    else:
        inputs = named_inputs(given, specs)
        outputs = loaded.predict(inputs)  # the first call may compile: it is not timed, and it is compared
        bind = getattr(loaded, "bind", None)  # a route's own Loaded may only have predict (duck-typed)
        timed = bind(inputs) if bind else (lambda: loaded.predict(inputs))  # the runtime's call, as a script times it
    timings = []
    for _ in range(max(1, int(req.get("repeats", 20)))):
        t = time.perf_counter()
        timed()
        timings.append((time.perf_counter() - t) * 1000)
    return {
        "ok": True,
        "outputs": [tensors.encode(o, n) for o, n in zip(outputs, _names(loaded, len(outputs)), strict=True)],
        "import_ms": import_ms,
        "load_ms": load_ms,
        "p50_ms": statistics.median(timings),
        "notes": loaded.notes,
        "frictions": [f.to_dict() for f in loaded.frictions],
        "facts": getattr(loaded, "facts", {}),  # what the load found, for the cell's snippet
        "versions": package_versions(route.packages) | {"python": sys.version.split()[0]},
    }


def _names(loaded: Loaded, n: int) -> list[str | None]:
    names: list[str | None] = list(getattr(loaded, "output_names", []) or [])
    return names + [None] * (n - len(names)) if len(names) <= n else [None] * n


def handle_scan(req: dict[str, Any]) -> dict[str, Any]:
    """The scanner's verdict on ``req["artifact"]`` (run in a sandboxed child like a load: it reads
    untrusted bytes)."""
    from .scan import scan_path

    sys.setrecursionlimit(3000)  # the replay follows nested pickles
    return {"ok": True, "verdict": scan_path(Path(req["artifact"]), bool(req.get("executes_code", True))).to_dict()}


HANDLERS = {"run": handle_run, "scan": handle_scan, "ping": lambda req: {"ok": True, "pid": os.getpid()}}


def main() -> None:
    serve(HANDLERS, open_channel())


if __name__ == "__main__":
    main()
