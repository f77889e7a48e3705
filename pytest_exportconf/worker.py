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
import traceback
from pathlib import Path
from typing import Any

from . import tensors
from .frameworks import package_versions
from .preprocessing import apply_preprocessing
from .registry import LoadRequest, PythonRoute, TensorSpec, resolve


def handle_run(req: dict[str, Any]) -> dict[str, Any]:
    route: PythonRoute = resolve(req["route"])()
    spec = req["input_spec"]
    inputs = tensors.decode(req["inputs"])
    prep_path = Path(req["preprocessing"]) if req.get("preprocessing") else None
    load_req = LoadRequest(Path(req["artifact"]), TensorSpec(spec["name"], spec["dtype"], tuple(spec["shape"])))
    t0 = time.perf_counter()
    for module in route.imports:  # the runtime's import, timed apart: it is paid once per process
        importlib.import_module(module)
    import_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    loaded = route.load(load_req)
    prep = json.loads(prep_path.read_text()) if prep_path else None
    load_ms = (time.perf_counter() - t0) * 1000

    def infer() -> list[Any]:
        x = apply_preprocessing(prep, inputs) if prep is not None else inputs
        return loaded.predict(x)

    outputs = infer()  # the first call may compile; keep it out of the latency figure
    timings = []
    for _ in range(max(1, int(req.get("repeats", 20)))):
        t = time.perf_counter()
        infer()
        timings.append((time.perf_counter() - t) * 1000)
    return {
        "ok": True,
        "outputs": [tensors.encode(o) for o in outputs],
        "import_ms": import_ms,
        "load_ms": load_ms,
        "p50_ms": statistics.median(timings),
        "notes": loaded.notes,
        "frictions": [f.to_dict() for f in loaded.frictions],
        "facts": getattr(loaded, "facts", {}),  # what the load found, for the cell's snippet
        "versions": package_versions(route.packages) | {"python": sys.version.split()[0]},
    }


HANDLERS = {"run": handle_run, "ping": lambda req: {"ok": True, "pid": os.getpid()}}


def main() -> None:
    # Keep a private handle on the real stdout for the protocol, then point fd 1 at stderr so that
    # whatever TensorFlow, torch or a user's code prints cannot corrupt the channel.
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req.get("op") == "shutdown":
            break
        op = req.get("op", "")
        if op not in HANDLERS:
            resp = {"ok": False, "error": f"unknown op {op!r}; known: {', '.join(HANDLERS)}, shutdown"}
        else:
            try:
                resp = HANDLERS[op](req)
            except BaseException as e:  # a failing load is a result, not a worker death
                resp = {"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
        resp["id"] = req.get("id")
        channel.write(json.dumps(resp) + "\n")
        channel.flush()


if __name__ == "__main__":
    main()
