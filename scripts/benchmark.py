"""Time the suite: cold (empty artifact cache) and warm (everything cached) runs of `pytest --exportconf`,
at each level (runtime, then system: the same cells also inside the stacks' web apps).

Usage: .venv/bin/python scripts/benchmark.py [--stacks python,javascript,typescript] [-n 2]
           [--levels runtime,system] [--cache DIR (reuse it: warm runs only)]
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
from collections import Counter
from pathlib import Path


def run(workdir: Path, cache: Path, stacks: str, workers: str, level: str) -> dict[str, object]:
    argv = [sys.executable, "-m", "pytest", "--exportconf", "-p", "no:cacheprovider", "-p", "no:warnings", "-q",
            f"--exportconf-cache-dir={cache}", f"--exportconf-stacks={stacks}", "-n", workers,
            f"--exportconf-level={level}"]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=workdir, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"exportconf run failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    results = json.loads((workdir / "exportconf-results.json").read_text())
    summary = results["summary"]
    system = Counter(c.get("system_grade") for c in results["cells"] if c.get("system_grade"))
    return {"wall_s": round(wall, 1), "grades": summary["grades"], "cells": summary["cells"],
            "system_grades": dict(system)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stacks", default="python,javascript,typescript")
    ap.add_argument("-n", default="2", help="pytest-xdist workers")
    ap.add_argument("--levels", default="runtime,system", help="levels to time, each cold then warm")
    ap.add_argument("--cache", default=None, help="an artifact cache to reuse: only warm runs are timed")
    args = ap.parse_args()
    for level in args.levels.split(","):
        with tempfile.TemporaryDirectory(prefix="exportconf-bench-") as tmp:
            work = Path(tmp)
            cache = Path(args.cache) if args.cache else work / "cache"
            cold = None if args.cache else run(work, cache, args.stacks, args.n, level)
            warm = run(work, cache, args.stacks, args.n, level)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"level {level}, stacks {args.stacks}, -n {args.n}: {warm['cells']} cells, grades {warm['grades']}"
              + (f", system grades {warm['system_grades']}" if warm["system_grades"] else ""))
        print(f"  cold {cold['wall_s'] if cold else '-'} s, warm {warm['wall_s']} s, "
              f"peak RSS of one process so far {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
