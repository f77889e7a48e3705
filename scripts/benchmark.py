"""Time the suite: cold (empty artifact cache) and warm (everything cached) runs of `pytest --exportconf`.

Usage: .venv/bin/python scripts/benchmark.py [--stacks python,javascript,typescript] [-n 2]
Prints wall time, peak RSS of the largest process and cells per grade for each run; the README quotes it.
The per-user tensorflowjs tool environment is reused when present (its one-off creation is not timed).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(workdir: Path, cache: Path, stacks: str, workers: str) -> dict[str, object]:
    argv = [sys.executable, "-m", "pytest", "--exportconf", "-p", "no:cacheprovider", "-p", "no:warnings", "-q",
            f"--exportconf-cache-dir={cache}", f"--exportconf-stacks={stacks}", "-n", workers]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=workdir, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"exportconf run failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    summary = json.loads((workdir / "exportconf-results.json").read_text())["summary"]
    return {"wall_s": round(wall, 1), "grades": summary["grades"], "cells": summary["cells"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stacks", default="python,javascript,typescript")
    ap.add_argument("-n", default="2", help="pytest-xdist workers")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="exportconf-bench-") as tmp:
        work = Path(tmp)
        cold = run(work, work / "cache", args.stacks, args.n)
        warm = run(work, work / "cache", args.stacks, args.n)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"stacks {args.stacks}, -n {args.n}: {cold['cells']} cells, grades {cold['grades']}")
    print(f"cold {cold['wall_s']} s, warm {warm['wall_s']} s, peak RSS of one process {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
