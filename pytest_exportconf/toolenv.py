"""Tool environments: a Python tool that must not share the main environment (tensorflowjs pins
tensorflow 2.19 and would replace the TensorFlow the suite measures) gets a venv of its own, created
once under a directory shared by every run, and reused.

A failed creation is remembered beside the environment (``<root>.failed``): later attempts in other
processes (xdist workers) raise the same error at once instead of installing again; the run's set-up
passes ``retry_failed=True`` so that each run tries once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fsutil import atomic_write_text
from .locks import locked
from .procs import Log, run_logged, stderr_log

READY = "ready.json"


class ToolEnvUnavailable(RuntimeError):
    """A tool environment could not be created (or its creation failed before)."""


@dataclass(frozen=True)
class ToolSpec:
    name: str
    packages: tuple[str, ...]  # pip requirements
    check: str  # Python code that must run in the finished environment (e.g. an import)
    report: tuple[str, ...] = ()  # distributions whose installed versions the environment records


def tool_root(cache_dir: str | os.PathLike[str], spec: ToolSpec) -> Path:
    key = hashlib.sha256(json.dumps([spec.packages, sys.version, sys.platform]).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"tool-{spec.name}-{key}"


def tool_bin(root: Path, exe: str) -> Path:
    return root / ("Scripts" if os.name == "nt" else "bin") / (exe + (".exe" if os.name == "nt" else ""))


_VERSIONS = ("import importlib.metadata as m, json, sys\n"
             "out = {}\n"
             "for d in sys.argv[1:]:\n"
             "    try: out[d] = m.version(d)\n"
             "    except m.PackageNotFoundError: out[d] = 'not installed'\n"
             "print(json.dumps(out))")


def tool_env(cache_dir: str | os.PathLike[str], spec: ToolSpec, *, log: Log = stderr_log, timeout: float = 1800,
             retry_failed: bool = False) -> Path:
    """The environment's root, created if needed (under a lock; at most ``timeout`` s for pip)."""
    root = tool_root(cache_dir, spec)
    failed = root.with_name(root.name + ".failed")
    python = tool_bin(root, "python")
    with locked(str(root) + ".lock", f"create the {spec.name} tool environment", timeout=timeout + 900):
        if (root / READY).is_file():
            TOOLS_USED[spec.name] = (root, spec)
            return root
        if failed.is_file() and not retry_failed:
            raise ToolEnvUnavailable(f"{failed.read_text()}\n(remembered from an earlier attempt: delete {failed} "
                                     "or start a new run to retry)")
        failed.unlink(missing_ok=True)
        if root.exists():
            shutil.rmtree(root)
        log(f"exportconf: creating the {spec.name} tool environment {root} ({', '.join(spec.packages)}; "
            "first time: a few minutes)")
        t0 = time.perf_counter()
        try:
            run_logged([sys.executable, "-m", "venv", str(root)], log, ToolEnvUnavailable, timeout=300)
            run_logged([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *spec.packages],
                       log, ToolEnvUnavailable, timeout=timeout)
            run_logged([str(python), "-c", spec.check], log, ToolEnvUnavailable, timeout=300)
            versions = json.loads(run_logged([str(python), "-c", _VERSIONS, *spec.report], log, ToolEnvUnavailable,
                                             timeout=120).stdout)
        except Exception as e:
            failed.write_text(f"the {spec.name} tool environment could not be created: {e}")
            shutil.rmtree(root, ignore_errors=True)
            raise
        seconds = time.perf_counter() - t0
        (root / READY).write_text(json.dumps({"packages": list(spec.packages), "versions": versions,
                                              "seconds": round(seconds, 1)}))
        log(f"exportconf: {spec.name} tool environment ready in {seconds:.0f} s")
    TOOLS_USED[spec.name] = (root, spec)
    return root


# tool environments this process created or reused, by name: each run's results record what they pin
TOOLS_USED: dict[str, tuple[Path, ToolSpec]] = {}


def tools_used() -> dict[str, Any]:
    """What the tool environments of this run hold (e.g. tensorflowjs pins tensorflow 2.19)."""
    out = {}
    for name, (root, spec) in sorted(TOOLS_USED.items()):
        facts = tool_facts(root, spec)
        out[name] = {"packages": facts.get("packages", []), "versions": facts.get("versions", {})}
    return out


def tool_facts(root: Path, spec: ToolSpec) -> dict[str, Any]:
    """What the environment recorded when it was created: requirements, installed versions, seconds
    (versions read now, once, for an environment created before they were recorded)."""
    facts: dict[str, Any] = json.loads((root / READY).read_text())
    if "versions" not in facts and spec.report:
        proc = subprocess.run([str(tool_bin(root, "python")), "-c", _VERSIONS, *spec.report], capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)
        if proc.returncode == 0:
            facts["versions"] = json.loads(proc.stdout)
            atomic_write_text(root / READY, json.dumps(facts))
    return facts
