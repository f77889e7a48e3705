"""The three web apps of the system level (``pytest_exportconf/webapps/``), one per stack, and how each is
built (once, cached by a digest of its sources and lockfile) and started.

Building observes frictions instead of declaring them: the Next.js app is first built exactly as it
is in the sources (no ``next.config``); only if that build fails is the configuration entry tried, and
then recorded as a ``framework-config`` friction with the lines and the error it fixed.
"""

from __future__ import annotations

import abc
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..locks import DEFAULT_TIMEOUT, locked

WEBAPPS = Path(__file__).resolve().parent.parent / "webapps"
BRIDGE = WEBAPPS / "bridge" / "bridge.py"
SKIP = {"node_modules", ".next", "next-env.d.ts", "__pycache__", "tsconfig.tsbuildinfo"}
MARKER = "exportconf-build.json"
Log = Callable[[str], None]


class BuildFailed(RuntimeError):
    pass


@dataclass
class Tools:
    """What building and starting the apps needs; Node is found lazily (only Node apps ask)."""

    python: str = sys.executable
    node_override: str | None = None
    log: Log = print
    _node: tuple[Path, Path] | None = None

    def node(self) -> tuple[Path, Path]:
        """(node, npm-cli.js), by the plugin's Node discovery."""
        if self._node is None:
            from ..node import discover_node
            from ..node.environment import find_npm

            found = discover_node(self.node_override, log=self.log)
            self._node = (found.path, find_npm(found.path))
        return self._node


@dataclass
class Fix:
    """A change the app may need before it builds, tried only after the plain build failed."""

    friction: str
    file: str
    content: str


@dataclass
class AppBuild:
    app: WebApp
    dir: Path
    info: dict[str, Any]  # the marker: seconds, frictions observed, notes


@dataclass
class WebApp(abc.ABC):
    stack: ClassVar[str]
    label: ClassVar[str]  # "Flask 3 on waitress"
    source: ClassVar[Path]
    loaders: ClassVar[dict[str, str]]  # runtime-level route name -> the app's loader for it
    fixes: ClassVar[tuple[Fix, ...]] = ()
    needs_node: ClassVar[bool] = True
    tools: Tools = field(default_factory=Tools)

    def files(self) -> list[Path]:
        out = [p for p in sorted(self.source.rglob("*")) if p.is_file()
               and not SKIP & set(p.relative_to(self.source).parts)]
        return [*out, BRIDGE] if self.needs_node else out

    def digest(self) -> str:
        h = hashlib.sha256(self.label.encode())
        for p in self.files():
            name = p.relative_to(self.source) if p.is_relative_to(self.source) else Path(p.name)
            h.update(str(name).encode() + b"\0" + p.read_bytes() + b"\0")
        if self.needs_node:
            node, _ = self.tools.node()
            h.update(str(node).encode() + subprocess.run([str(node), "--version"], capture_output=True,
                                                         text=True).stdout.encode())
        return h.hexdigest()[:16]

    def build(self, cache_dir: Path) -> AppBuild:
        """The app built in ``cache_dir/webapps/<stack>-<digest>``, built now if it is not there yet
        (under a file lock, in place: a Next build records absolute paths, so it is not moved)."""
        dest = cache_dir / "webapps" / f"{self.stack}-{self.digest()}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        with locked(str(dest) + ".lock", f"build the {self.label} app", timeout=DEFAULT_TIMEOUT):
            if (dest / MARKER).is_file():
                info = json.loads((dest / MARKER).read_text())
                info["cached"] = True
                return AppBuild(self, dest, info)
            if dest.exists():
                shutil.rmtree(dest)  # a half-built leftover
            shutil.copytree(self.source, dest, ignore=lambda d, names: [n for n in names if n in SKIP])
            if self.needs_node:
                shutil.copy2(BRIDGE, dest / "bridge.py")
            t0 = time.perf_counter()
            try:
                info = self._build(dest)
            except BaseException:
                shutil.rmtree(dest, ignore_errors=True)
                raise
            info["seconds"] = time.perf_counter() - t0
            (dest / MARKER).write_text(json.dumps(info, indent=1))
            info["cached"] = False
        return AppBuild(self, dest, info)

    def _build(self, dest: Path) -> dict[str, Any]:
        return {"frictions": [], "notes": []}

    def run(self, argv: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        self.tools.log("exportconf: $ " + " ".join(argv))
        env = dict(os.environ, ONNXRUNTIME_NODE_INSTALL="skip", NEXT_TELEMETRY_DISABLED="1")
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def npm_ci(self, dest: Path) -> None:
        node, npm = self.tools.node()
        proc = self.run([str(node), str(npm), "ci", "--no-audit", "--no-fund", "--prefer-offline"], dest)
        if proc.returncode != 0:
            raise BuildFailed(f"npm ci failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-3000:]}")

    def build_with_fixes(self, dest: Path, argv: list[str], what: str) -> dict[str, Any]:
        """Run the build as the sources are; only if it fails, apply the app's fixes one by one until it
        passes, recording each needed fix as a friction with the error it removed (observed, not declared)."""
        proc = self.run(argv, dest)
        notes = [f"{what} as in the sources: exit status {proc.returncode}"]
        frictions: list[dict[str, str]] = []
        for fix in self.fixes:
            if proc.returncode == 0:
                break
            error = _error_lines(proc.stdout + proc.stderr)
            (dest / fix.file).write_text(fix.content)
            proc = self.run(argv, dest)
            notes.append(f"with {fix.file}: exit status {proc.returncode}")
            if proc.returncode == 0:
                frictions.append({"kind": fix.friction, "detail": f"{fix.file} needed:\n{fix.content.strip()}",
                                  "evidence": f"{what} without it failed:\n{error}"})
        if proc.returncode != 0:
            raise BuildFailed(f"{what} failed ({proc.returncode}): {_error_lines(proc.stdout + proc.stderr)}")
        return {"frictions": frictions, "notes": notes, "stdout": proc.stdout}

    @abc.abstractmethod
    def argv(self, build: AppBuild, port: int) -> list[str]: ...

    def env(self, build: AppBuild, port: int, models: Path) -> dict[str, str]:
        return dict(os.environ, HOST="127.0.0.1", PORT=str(port), EXPORTCONF_MODELS=str(models),
                    EXPORTCONF_PYTHON=self.tools.python, EXPORTCONF_BRIDGE=str(build.dir / "bridge.py"),
                    NEXT_TELEMETRY_DISABLED="1", TF_CPP_MIN_LOG_LEVEL="2")


class FlaskApp(WebApp):
    """Flask, served by waitress (a production WSGI server: Flask's own server says not to deploy it)."""

    stack = "python"
    label = "Flask on waitress"
    source = WEBAPPS / "flask"
    loaders = {"onnxruntime": "onnxruntime", "tf.saved_model": "tf.saved_model", "torch.jit": "torch.jit",
               "pickle": "pickle", "joblib": "joblib"}
    needs_node = False

    def argv(self, build: AppBuild, port: int) -> list[str]:
        return [self.tools.python, "-m", "waitress", f"--listen=127.0.0.1:{port}", "--threads=8",
                "--call", "app:create_app"]


class NodeHttpApp(WebApp):
    """Node's ``http`` module, no framework."""

    stack = "javascript"
    label = "node:http"
    source = WEBAPPS / "node_http"
    loaders = {"onnxruntime-node": "onnxruntime-node", "tfjs-graph-model": "tfjs-graph-model",
               "python-bridge": "python-bridge"}

    def _build(self, dest: Path) -> dict[str, Any]:
        self.npm_ci(dest)
        return {"frictions": [], "notes": ["npm ci; no build step (plain ESM)"]}

    def argv(self, build: AppBuild, port: int) -> list[str]:
        node, _ = self.tools.node()
        return [str(node), "server.mjs"]


NEXT_CONFIG = Fix(
    "framework-config", "next.config.mjs",
    'const nextConfig = { serverExternalPackages: ["onnxruntime-node", "@tensorflow/tfjs"] };\n'
    "export default nextConfig;\n",
)


class NextApp(WebApp):
    """Next.js App Router, strict TypeScript: ``next build``, then ``next start`` (never the dev server)."""

    stack = "typescript"
    label = "Next.js (App Router) on next start"
    source = WEBAPPS / "nextjs"
    loaders = NodeHttpApp.loaders
    fixes = (NEXT_CONFIG,)

    def _build(self, dest: Path) -> dict[str, Any]:
        self.npm_ci(dest)
        node, _ = self.tools.node()
        info = self.build_with_fixes(dest, [str(node), str(dest / "node_modules" / "next" / "dist" / "bin" / "next"),
                                            "build"], "next build")
        info["notes"].append(_built_line(info.pop("stdout")))
        return info

    def argv(self, build: AppBuild, port: int) -> list[str]:
        # next's own entry point (what node_modules/.bin/next links to), not npx: killing npx leaves
        # next-server orphaned; the whole process group is killed at the end anyway
        node, _ = self.tools.node()
        return [str(node), str(build.dir / "node_modules" / "next" / "dist" / "bin" / "next"), "start",
                "-p", str(port), "-H", "127.0.0.1"]


def _error_lines(output: str, n: int = 12) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    errs = [i for i, ln in enumerate(lines) if "rror" in ln]
    start = errs[0] if errs else max(0, len(lines) - n)
    return "\n".join(lines[start:start + n])


def _built_line(stdout: str) -> str:
    for ln in stdout.splitlines():
        if "Compiled successfully" in ln or ln.startswith("▲ Next.js"):
            return ln.strip("✓ ").strip()
    return "next build succeeded"


APPS: dict[str, type[WebApp]] = {cls.stack: cls for cls in (FlaskApp, NodeHttpApp, NextApp)}
