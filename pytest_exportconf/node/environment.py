"""The harness environment: ``nodeenv --node=system`` + ``npm ci`` from the lockfile, the harness
sources copied and compiled with ``tsc``, under the cache directory.

Provisioning runs once per lockfile and Node, under a file lock so pytest-xdist workers don't race:
``nodeenv --node=system`` creates an environment whose ``bin/node`` runs the discovered Node
(``nodeenv --prebuilt`` would download from the Node.js site), ``node_harness/``'s ``package.json`` and
lockfile are copied next to it and installed with ``npm ci`` (``ONNXRUNTIME_NODE_INSTALL=skip``:
onnxruntime-node's install script would download CUDA binaries; the CPU binaries are bundled), and the
harness core with both entry points is compiled with ``tsc`` (strict). Later runs reuse the
environment; changed harness sources are copied and recompiled without reinstalling.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..digest import tree_digest
from ..locks import locked
from ..node_harness import ROOT as HARNESS_DIR
from ..procs import Log, run_logged, stderr_log
from .discovery import FoundNode, NodeUnavailable, discover_node, health_check, shim_argv
from .typecheck import library_type_check

INSTALL_FILES = ("package.json", "package-lock.json")
SOURCE_FILES = ("tsconfig.json",)  # plus everything under src/
READY = "ready.json"


def find_npm(node: Path, search_path: str | None = None) -> Path:
    """npm's entry script belonging to ``node`` (run as ``node npm-cli.js``, so npm uses that Node)."""
    real = Path(os.path.realpath(node))
    candidates = [real.parent.parent / "lib/node_modules/npm/bin/npm-cli.js",
                  real.parent / "node_modules/npm/bin/npm-cli.js"]
    on_path = shutil.which("npm", path=os.environ.get("PATH", "") if search_path is None else search_path)
    if on_path:
        resolved = Path(os.path.realpath(on_path))
        candidates += [resolved, resolved.parent.parent / "lib/node_modules/npm/bin/npm-cli.js"]
    candidates += [Path("/usr/share/nodejs/npm/bin/npm-cli.js"), Path("/usr/lib/node_modules/npm/bin/npm-cli.js")]
    for c in candidates:
        if c.name == "npm-cli.js" and c.is_file():
            return c
    raise NodeUnavailable(f"found Node at {node} but no npm to install the harness; looked at: "
                          + ", ".join(str(c) for c in candidates))


def install_dir(harness: Path = HARNESS_DIR) -> Path:
    """Where ``package.json`` and ``package-lock.json`` come from: ``$EXPORTCONF_NODE_PACKAGES`` (a directory
    holding both, e.g. other onnxruntime-node/tfjs releases for a version matrix), else the harness's own."""
    alt = os.environ.get("EXPORTCONF_NODE_PACKAGES")
    if not alt:
        return harness
    d = Path(alt).expanduser()
    missing = [n for n in INSTALL_FILES if not (d / n).is_file()]
    if missing:
        raise NodeUnavailable(f"EXPORTCONF_NODE_PACKAGES={alt}: needs {' and '.join(INSTALL_FILES)}; "
                              f"missing {', '.join(missing)}")
    return d


def lock_digest(harness: Path = HARNESS_DIR) -> str:
    source = install_dir(harness)
    return tree_digest([source / name for name in INSTALL_FILES])


def _source_files(harness: Path) -> list[Path]:
    files = [harness / n for n in SOURCE_FILES] + sorted((harness / "src").rglob("*"))
    return [f for f in files if f.is_file() and "__pycache__" not in f.parts]


def source_digest(harness: Path = HARNESS_DIR) -> str:
    return tree_digest([harness / "src", *(harness / n for n in SOURCE_FILES)])


@dataclass
class NodeEnv:
    """A provisioned environment: nodeenv + the installed harness."""

    root: Path
    node: Path  # the environment's bin/node (a nodeenv shim running the discovered Node)
    found: FoundNode
    harness: Path
    npm_ci_s: float | None  # None when reused
    reused: bool
    ts_error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def node_argv(self) -> list[str]:
        return shim_argv(self.node)

    def js_argv(self, python: str | None = None) -> list[str]:
        if self.ts_error:  # the JavaScript entry point imports the core that tsc compiles
            raise NodeUnavailable(f"the harness core does not compile:\n{self.ts_error}")
        return [*self.node_argv(), str(self.harness / "src" / "harness.mjs"), "--python", python or sys.executable]

    def ts_argv(self, python: str | None = None) -> list[str]:
        if self.ts_error:
            raise NodeUnavailable(f"the harness core and TypeScript entry point do not compile:\n{self.ts_error}")
        return [*self.node_argv(), str(self.harness / "dist" / "harness.js"), "--python", python or sys.executable]

    def tsc(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the harness's TypeScript compiler (e.g. ``--strict --noEmit``) in the harness directory."""
        return subprocess.run([*self.node_argv(), str(self.harness / "node_modules/typescript/bin/tsc"), *args],
                              cwd=self.harness, capture_output=True, text=True, timeout=300)


def _run(argv: list[str], log: Log, **kw: Any) -> subprocess.CompletedProcess[str]:
    return run_logged(argv, log, NodeUnavailable, **kw)


def provision(cache_dir: str | os.PathLike[str], override: str | os.PathLike[str] | None = None, *,
              log: Log = stderr_log, harness: Path = HARNESS_DIR, search_path: str | None = None,
              use_wheel: bool = True) -> NodeEnv:
    """Discover Node, then create (or reuse) the harness environment under ``cache_dir``."""
    found = discover_node(override, search_path=search_path, use_wheel=use_wheel, log=log)
    cache = Path(cache_dir).absolute()  # npm runs in the harness directory: a relative path would break
    cache.mkdir(parents=True, exist_ok=True)
    node_id = hashlib.sha256(f"{os.path.realpath(found.path)}\0{found.version}".encode()).hexdigest()[:8]
    root = cache / f"node-{lock_digest(harness)}-{node_id}"
    with locked(str(root) + ".lock", f"provision the Node environment {root.name}"):
        reused = (root / READY).is_file()
        npm_ci_s = None
        if reused:
            log(f"exportconf: reusing the Node environment {root} (lockfile {lock_digest(harness)})")
        else:
            npm_ci_s = _create(root, found, harness, cache, log)
        env = _env_of(root, found, reused, npm_ci_s)
        _sync_sources(env, harness, log)
    return env


def _env_of(root: Path, found: FoundNode, reused: bool, npm_ci_s: float | None) -> NodeEnv:
    info = json.loads((root / READY).read_text())
    env = NodeEnv(root=root, node=root / "env" / "bin" / "node", found=found, harness=root / "harness",
                  npm_ci_s=npm_ci_s if npm_ci_s is not None else info.get("npm_ci_s"), reused=reused, info=info)
    ts_state = root / "harness" / ".tsc-error"
    env.ts_error = ts_state.read_text() if ts_state.is_file() else None
    return env


def _create(root: Path, found: FoundNode, harness: Path, cache: Path, log: Log) -> float:
    if root.exists():
        log(f"exportconf: removing the incomplete Node environment {root}")
        shutil.rmtree(root)
    root.mkdir(parents=True)
    log(f"exportconf: creating a Node environment in {root} for Node {found.version} ({found.source}: {found.path})")
    # nodeenv --node=system writes bin/node as a shim exec'ing the node it finds on PATH ("nodejs" first):
    # show it exactly one, the discovered Node, through a link of our own.
    link_dir = root / "system-node"
    link_dir.mkdir()
    (link_dir / "node").symlink_to(os.path.realpath(found.path))
    if importlib.util.find_spec("nodeenv") is None:
        raise NodeUnavailable(f"nodeenv is not installed in {sys.prefix}: `pip install nodeenv` "
                              "(exportconf's [all] extra brings it)")
    t0 = time.perf_counter()
    _run([sys.executable, "-m", "nodeenv", "--node=system", "--quiet", str(root / "env")], log,
         env={**os.environ, "PATH": str(link_dir)}, timeout=120)
    log(f"exportconf: nodeenv done in {time.perf_counter() - t0:.1f} s")
    env_node = root / "env" / "bin" / "node"
    try:
        version = health_check(shim_argv(env_node))
    except ValueError as e:
        raise NodeUnavailable(f"the nodeenv shim {env_node} {e}") from None
    if version != found.version:
        raise NodeUnavailable(f"the nodeenv shim {env_node} runs Node {version}, not the discovered {found.version}")
    dest = root / "harness"
    dest.mkdir()
    for name in INSTALL_FILES:
        shutil.copy2(install_dir(harness) / name, dest / name)
    npm = find_npm(found.path)
    npm_env = {
        **os.environ,
        # npm runs install scripts through sh: keep the shell's directory reachable whatever PATH is
        "PATH": os.pathsep.join([str(root / "env" / "bin"), os.environ.get("PATH", ""),
                                 os.path.dirname(shim_argv(env_node)[0])]),
        "ONNXRUNTIME_NODE_INSTALL": "skip",  # its CUDA download fails offline; CPU binaries are bundled
        "ONNXRUNTIME_NODE_INSTALL_CUDA": "skip",  # the same for onnxruntime-node <= 1.2x (the matrix's node120)
        "npm_config_cache": str(cache / "npm-cache"),
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
    }
    log(f"exportconf: installing node_harness from its lockfile (ONNXRUNTIME_NODE_INSTALL=skip, npm {npm})")
    t0 = time.perf_counter()
    _run([*shim_argv(env_node), str(npm), "ci", "--no-audit", "--no-fund", "--loglevel=error"], log, cwd=dest,
         env=npm_env, timeout=900)
    npm_ci_s = time.perf_counter() - t0
    log(f"exportconf: npm ci done in {npm_ci_s:.1f} s")
    (root / READY).write_text(json.dumps({
        "node": str(found.path), "node_version": found.version, "source": found.source,
        "lock": lock_digest(harness), "npm": str(npm), "npm_ci_s": round(npm_ci_s, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=1))
    return npm_ci_s


def _sync_sources(env: NodeEnv, harness: Path, log: Log) -> None:
    """Copy the harness sources if they changed, and compile the TypeScript harness (strict)."""
    digest = source_digest(harness)
    stamp = env.harness / ".src-digest"
    if stamp.is_file() and stamp.read_text() == digest:
        return
    log(f"exportconf: copying the harness sources into {env.harness} and compiling the TypeScript harness")
    for d in ("src", "dist"):
        shutil.rmtree(env.harness / d, ignore_errors=True)
    for f in _source_files(harness):
        target = env.harness / f.relative_to(harness)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
    t0 = time.perf_counter()
    proc = env.tsc("-p", "tsconfig.json")
    err_file = env.harness / ".tsc-error"
    built = [env.harness / "dist" / "harness.js", env.harness / "dist" / "core" / "index.js"]
    if proc.returncode != 0 or not all(f.is_file() for f in built):
        env.ts_error = (proc.stdout + proc.stderr).strip()[-4000:] or f"tsc exit status {proc.returncode}"
        err_file.write_text(env.ts_error)
        log(f"exportconf: tsc failed:\n{env.ts_error}")
    else:
        env.ts_error = None
        err_file.unlink(missing_ok=True)
        log(f"exportconf: tsc compiled the TypeScript harness in {time.perf_counter() - t0:.1f} s")
        facts = library_type_check(env)
        (env.harness / "types-check.json").write_text(json.dumps(facts, indent=1))
        bad = ", ".join(f"{k} ({v['errors']})" for k, v in facts["packages"].items()) or "none"
        log(f"exportconf: packages whose type definitions fail strict checking (skipLibCheck off): {bad}")
    stamp.write_text(digest)


class NodeRuntimes:
    """The ``node-js`` and ``node-ts`` runtimes over one harness environment, or the one reason there is
    none. Provisioned once (:meth:`provision`, on the xdist controller), described by :meth:`info` as
    JSON, and rebuilt from that description in each worker (:meth:`from_info`) without provisioning
    again: a failure is found once and every cell of these stacks fails with that same reason."""

    def __init__(self, env: NodeEnv | None = None, error: str | None = None) -> None:
        if (env is None) == (error is None):
            raise ValueError("NodeRuntimes needs an environment or an error, not both")
        self._env, self.error = env, error

    @classmethod
    def provision(cls, cache_dir: str | os.PathLike[str], override: str | os.PathLike[str] | None = None,
                  log: Log = stderr_log) -> NodeRuntimes:
        try:
            return cls(env=provision(cache_dir, override, log=log))
        except NodeUnavailable as e:
            return cls(error=str(e))

    def info(self) -> dict[str, Any]:
        if self._env is None:
            return {"error": self.error}
        found = self._env.found
        return {"root": str(self._env.root), "node": str(found.path), "version": found.version,
                "source": found.source}

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> NodeRuntimes:
        if info.get("error") is not None:
            return cls(error=str(info["error"]))
        found = FoundNode(Path(info["node"]), str(info["version"]), str(info["source"]))
        try:
            return cls(env=_env_of(Path(info["root"]), found, True, None))
        except (OSError, ValueError, KeyError) as e:
            return cls(error=f"the Node environment {info.get('root')} provisioned for this run is unreadable: {e}")

    def env(self) -> NodeEnv:
        if self._env is None:
            raise NodeUnavailable(self.error)
        return self._env

    def js_argv(self) -> list[str]:
        return self.env().js_argv()

    def ts_argv(self) -> list[str]:
        return self.env().ts_argv()

    def register(self, registry: Any) -> None:
        """``registry.add_runtime`` for both stacks' runtimes."""
        registry.add_runtime("node-js", self.js_argv)
        registry.add_runtime("node-ts", self.ts_argv)
