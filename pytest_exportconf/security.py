"""The scan step of a measurement: one verdict per artifact, computed in a sandboxed child and remembered
by the artifact's SHA-256 for the rest of this process. Verdicts are not stored on disk: a verdict file
in a shared cache directory could be forged as easily as the artifact."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import scan
from .cache import tree_sha256

if TYPE_CHECKING:
    from .runner import Runner

RANK = ("dangerous", "unscannable", "clean", "nothing to scan")


def worst(labels: list[str]) -> str:
    """The most serious of several verdict labels ("" when there are none)."""

    def rank(label: str) -> int:
        return next((i for i, r in enumerate(RANK) if label.startswith(r)), len(RANK))

    return min(labels, key=rank) if labels else ""


class Scanner:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner  # its sandbox broker: a scan forks from a zygote that imported the scanner
        self._seen: dict[str, dict[str, Any]] = {}

    @staticmethod
    def key(artifact: Path, executes_code: bool) -> str:
        sums = tree_sha256(artifact.parent, artifact.name) if artifact.exists() else {}
        blob = json.dumps([scan.VERSION, executes_code, sorted(sums.items())]).encode()
        return hashlib.sha256(blob).hexdigest()

    def verdict(self, artifact: Path, executes_code: bool) -> dict[str, Any]:
        """``scan.Verdict.to_dict()`` of ``artifact`` (a file or a directory)."""
        key = self.key(artifact, executes_code)
        if key not in self._seen:
            verdict = self._scan(artifact, executes_code)
            verdict["label"] = scan.Verdict.from_dict(verdict).label
            self._seen[key] = verdict
        return json.loads(json.dumps(self._seen[key]))

    def _scan(self, artifact: Path, executes_code: bool) -> dict[str, Any]:
        resp = self.runner.call("python", {"op": "scan", "artifact": str(artifact), "executes_code": executes_code,
                                           "preload": ["pytest_exportconf.scan"]}, sandboxed=True)
        if not resp.get("ok"):
            tail = (resp.get("error") or "").strip().splitlines()[-3:]
            why = "ran out of memory" if any("MemoryError" in t for t in tail) else " | ".join(tail)
            return {"status": "unscannable", "findings": [f"the scanner child failed: {why}"], "notes": [],
                    "scanners": []}
        verdict: dict[str, Any] = resp["verdict"]
        wall = (resp.get("sandbox") or {}).get("wall_ms", 0) / 1000
        verdict.setdefault("notes", []).append(f"scanned in a sandboxed child in {wall:.2f} s")
        return verdict
