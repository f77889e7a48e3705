"""The built-in suite's pinned evidence: for every built-in cell, its grade, its winner and the friction
kinds behind it (each with how it was known). The pinned file is checked in and reviewed like code; the
project's end-to-end test compares a full run with it, so a detector that starts or stops recording a
friction fails the tests until someone re-pins on purpose:

    python -m pytest_exportconf.evidence --update                  # run the full matrix, write the pin
    python -m pytest_exportconf.evidence --update --from RESULTS   # pin an existing results file
    python -m pytest_exportconf.evidence --check RESULTS           # compare, exit 1 on a difference

The pin describes the project's reference machine (see the README's measured table): a host that has
the ``en_US.UTF-8`` locale, say, records no ``environment-locale`` and differs on purpose.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PIN_SCHEMA = "exportconf-evidence/1"
DEFAULT_PIN = Path("tests") / "evidence" / "builtin-cells.json"


def cell_evidence(cell: dict[str, Any]) -> dict[str, Any]:
    """What is pinned of one cell of a results file: grade, winner, and the sorted ``kind (source)``
    of the frictions the grade comes from."""
    return {
        "grade": cell["grade"],
        "winner": cell.get("winner", ""),
        "frictions": sorted(f"{f['kind']} ({f.get('source', 'observed')})" for f in cell.get("frictions", [])),
    }


def pin(results: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": PIN_SCHEMA,
        "updated_by": "python -m pytest_exportconf.evidence --update",
        "frameworks": results.get("frameworks", {}),
        "cells": {c["cell"]: cell_evidence(c) for c in sorted(results["cells"], key=lambda c: c["cell"])},
    }


def differences(pinned: dict[str, Any], results: dict[str, Any]) -> list[str]:
    """Every way a run's evidence differs from the pin, one line each (empty: identical)."""
    if pinned.get("schema") != PIN_SCHEMA:
        return [f"pinned file has schema {pinned.get('schema')!r}, expected {PIN_SCHEMA!r}"]
    got = pin(results)["cells"]
    want = pinned["cells"]
    out = [f"{c}: in the pin, not measured" for c in sorted(set(want) - set(got))]
    out += [f"{c}: measured, not in the pin" for c in sorted(set(got) - set(want))]
    for c in sorted(set(want) & set(got)):
        for key in ("grade", "winner", "frictions"):
            if want[c][key] != got[c][key]:
                out.append(f"{c}: {key} pinned {want[c][key]!r}, measured {got[c][key]!r}")
    return out


def run_builtin(workdir: Path, cache: str | None, workers: str) -> Path:
    """Run the full built-in matrix (``pytest --exportconf``) in ``workdir``; return its results file."""
    argv = [sys.executable, "-m", "pytest", "--exportconf", "-p", "no:cacheprovider", "-q", "-n", workers]
    if cache:
        argv.append(f"--exportconf-cache-dir={cache}")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS",)}
    proc = subprocess.run(argv, cwd=workdir, env=env)
    results = workdir / "exportconf-results.json"
    if proc.returncode != 0 or not results.is_file():
        raise SystemExit(f"the built-in run failed (exit status {proc.returncode}); nothing pinned")
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pytest_exportconf.evidence", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--update", action="store_true", help="write the pin (from --from, else from a fresh full run)")
    mode.add_argument("--check", metavar="RESULTS", help="compare a results file with the pin")
    ap.add_argument("--from", dest="source", metavar="RESULTS", help="results file to pin instead of running")
    ap.add_argument("--pin", default=str(DEFAULT_PIN), help=f"the pinned file (default {DEFAULT_PIN})")
    ap.add_argument("--cache-dir", default=os.environ.get("EXPORTCONF_TEST_CACHE"),
                    help="artifact cache for the run (default $EXPORTCONF_TEST_CACHE)")
    ap.add_argument("-n", dest="workers", default="2", help="pytest-xdist workers for the run (default 2)")
    args = ap.parse_args(argv)
    pin_path = Path(args.pin)
    if args.check:
        diffs = differences(json.loads(pin_path.read_text()), json.loads(Path(args.check).read_text()))
        print("\n".join(diffs) if diffs else f"evidence matches {pin_path}")
        return 1 if diffs else 0
    if args.source:
        results = json.loads(Path(args.source).read_text())
    else:
        with tempfile.TemporaryDirectory(prefix="exportconf-evidence-") as tmp:
            results = json.loads(run_builtin(Path(tmp), args.cache_dir, args.workers).read_text())
    pin_path.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(pin_path.read_text()) if pin_path.is_file() else None
    pin_path.write_text(json.dumps(pin(results), indent=1, sort_keys=True) + "\n")
    changes = differences(old, results) if old else ["new pin"]
    print(f"wrote {pin_path} ({len(results['cells'])} cells)" + "".join(f"\n  {c}" for c in changes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
