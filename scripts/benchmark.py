"""Measure the cost of `pytest --exportconf` (issue 13) in one run and print a Markdown table the README quotes.

Parts (``--parts``, default all three):

- **matrix**: the built-in matrix at each ``--levels`` x ``--workers``, cold then warm. Cold = a fresh, empty
  artifact cache whose ``node/`` holds a copy of an already provisioned Node environment (node_modules
  hard-linked), and a private tools directory holding only a link to the provisioned tensorflowjs tool
  environment: npm and the tool env are ready, no export, conversion, conversion-failure memo or web-app
  build is. Warm = the same cache again. Per run: wall time, CPU (user+sys of every process of the run),
  peak RSS of the largest process, grades, and per-cell time from ``--junitxml``. The Node environment is
  copied because no setting points a run at a shared one (``EXPORTCONF_NODE_PACKAGES`` only names where
  package.json and the lockfile come from); it comes from ``--node-from`` (else ``--cache``, else one
  provisioned untimed in the work directory with ``python -m pytest_exportconf.node``, npm ci from npm's
  cache); the tool env is the user's shared one (created untimed if missing). The OS page cache stays warm.
- **direct**: per runtime (onnxruntime and torch.jit in Python; onnxruntime-node, tfjs CPU and tfjs WASM in
  Node), a plain script calling the runtime on the cell's artifact with the cell's golden input, p50 over the
  same number of calls, against the ``p50_ms`` the cell reported; the Python bridge's cost apart.
- **growth**: runtime level, time with 1, 4 and 16 small user systems (scikit-learn, ``--stacks`` python
  and all), and with the number of stacks for the built-in systems (warm); per-cell cost from the ends.

Usage (the full run; on a quiet 2-core machine, roughly half an hour):
    .venv/bin/python scripts/benchmark.py --json bench.json
Partial runs, e.g.:
    .venv/bin/python scripts/benchmark.py --parts matrix --levels runtime --workers 0,2 --repeats 3
    .venv/bin/python scripts/benchmark.py --parts direct --cache /path/to/warm/cache
    .venv/bin/python scripts/benchmark.py --parts growth --stacks python --systems 1,4
Nothing here asserts a time: the figures are printed (and written with ``--json``), the targets compared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_exportconf import resultsfile

PY = sys.executable
NODE_STACKS = {"javascript", "typescript"}
BUILTIN = "built-in"

# Runs each measured pytest in its own process: RUSAGE_CHILDREN there covers exactly that run's process
# tree, and ru_maxrss is the largest single process of it (a max, so it cannot be a delta in this process).
# It makes itself a subreaper so that orphans (a server or sandbox child outliving its parent) are reaped
# here and counted too.
WRAPPER = r"""
import ctypes, json, os, resource, subprocess, sys, time
out, argv = sys.argv[1], sys.argv[2:]
try:
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except (OSError, AttributeError):
    pass
t0 = time.perf_counter()
rc = subprocess.call(argv)
wall = time.perf_counter() - t0
deadline = time.monotonic() + 20
while True:
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break
    if pid == 0 and time.monotonic() > deadline:
        break
    if pid == 0:
        time.sleep(0.05)
left = 0
for p in os.listdir("/proc"):
    try:
        left += p.isdigit() and f"PPid:\t{os.getpid()}\n" in open(f"/proc/{p}/status").read()
    except OSError:
        pass
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(out, "w") as f:
    json.dump({"rc": rc, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss,
               "left_running": left}, f)
"""

# The direct calls in Python: the runtime's own API on prepared inputs; one untimed call (the worker also
# keeps its first call out: it may compile), then REPEATS timed calls of the inference alone.
DIRECT_PY = r"""
import json, statistics, sys, time
import numpy as np
from pytest_exportconf.tensors import decode  # the golden inputs as the cell got them (not timed)
jobs, results = json.load(open(sys.argv[1])), []
ONNX = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
        "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(string)": object}

def prepare(job):
    xs, names = [decode(t) for t in job["inputs"]], [t.get("name") for t in job["inputs"]]
    if job["route"] == "onnxruntime":
        import onnxruntime as ort
        sess = ort.InferenceSession(job["artifact"], providers=["CPUExecutionProvider"])
        feed = {}
        for i, m in enumerate(sess.get_inputs()):
            x = (xs[names.index(m.name)] if m.name in names else xs[i]).astype(ONNX[m.type])
            feed[m.name] = x.reshape(-1, 1) if len(m.shape) == 2 and x.ndim == 1 else x
        return lambda: sess.run(None, feed)
    import torch
    module = torch.jit.load(job["artifact"], map_location="cpu").eval()
    args = [[str(v) for v in x.reshape(-1)] if x.dtype == object else torch.from_numpy(np.ascontiguousarray(x))
            for x in xs]
    def call():
        with torch.no_grad():
            return module(*args)
    return call

for job in jobs:
    try:
        call = prepare(job)
        call()
        times = []
        for _ in range(job["repeats"]):
            t = time.perf_counter()
            call()
            times.append((time.perf_counter() - t) * 1000)
        results.append({"ok": True, "p50_ms": statistics.median(times)})
    except Exception as e:
        results.append({"ok": False, "error": f"{type(e).__name__}: {e}"[:500]})
json.dump(results, open(sys.argv[2], "w"))
"""

# The direct calls in Node, run from a directory whose node_modules links to the provisioned environment's
# (ESM imports ignore NODE_PATH). Inputs are built once; each timed call is the run and reading its outputs.
DIRECT_MJS = r"""
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [jobsFile, outFile] = process.argv.slice(2);
const jobs = JSON.parse(fs.readFileSync(jobsFile, "utf8"));
const ARRAYS = { float32: Float32Array, float64: Float64Array, int32: Int32Array, int64: BigInt64Array,
                 int8: Int8Array, uint8: Uint8Array, bool: Uint8Array };

function decode(t) {
  if (t.dtype === "string") return { name: t.name ?? null, dtype: "string", shape: t.shape, data: t.data };
  const b = Buffer.from(t.data, "base64");
  return { name: t.name ?? null, dtype: t.dtype, shape: t.shape,
           data: new ARRAYS[t.dtype](b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)) };
}
const pick = (names, xs) => names.map((n, i) => xs.find((x) => x.name === n) ?? xs[i]);
function cast(x, dtype) {
  if (x.dtype === dtype || x.dtype === "string" || !(dtype in ARRAYS)) return x;
  const data = dtype === "int64" ? BigInt64Array.from(x.data, (v) => BigInt(Math.round(Number(v))))
                                 : ARRAYS[dtype].from(x.data, Number);
  return { ...x, dtype, data };
}
async function p50(n, fn) {
  await fn();
  const times = [];
  for (let i = 0; i < n; i++) { const t = performance.now(); await fn(); times.push(performance.now() - t); }
  times.sort((a, b) => a - b);
  const m = times.length >> 1;
  return times.length % 2 ? times[m] : (times[m - 1] + times[m]) / 2;
}

async function ortNode(job) {
  const mod = await import("onnxruntime-node");
  const ort = mod.default ?? mod;
  const session = await ort.InferenceSession.create(job.artifact, { executionProviders: ["cpu"], logSeverityLevel: 3 });
  const meta = session.inputMetadata;
  const feeds = {};
  pick(meta.map((m) => m.name), job.inputs.map(decode)).forEach((x0, i) => {
    const m = meta[i], x = cast(x0, m.type);
    const dims = m.shape.length === 2 && x.shape.length === 1 ? [x.shape[0], 1] : x.shape;
    feeds[m.name] = new ort.Tensor(x.dtype, x.data, dims);
  });
  return p50(job.repeats, async () => {
    const out = await session.run(feeds);
    for (const k of session.outputNames) void out[k].data;
  });
}

let tf = null;
async function tfjs(job, backend) {
  if (tf === null) {
    const mod = await import("@tensorflow/tfjs");
    tf = mod.default ?? mod;
    if (backend === "wasm") {
      const w = await import("@tensorflow/tfjs-backend-wasm");
      (w.setWasmPaths ? w : w.default).setWasmPaths(
        path.dirname(createRequire(import.meta.url).resolve("@tensorflow/tfjs-backend-wasm")) + path.sep);
    }
    if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not start`);
    await tf.ready();
  }
  const json = JSON.parse(fs.readFileSync(job.artifact, "utf8"));
  const groups = json.weightsManifest ?? [];
  const dir = path.dirname(job.artifact);
  const all = Buffer.concat(groups.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(dir, p)))));
  const model = await tf.loadGraphModel(tf.io.fromMemory({ ...json, weightSpecs: groups.flatMap((g) => g.weights),
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) }));
  const feed = {};
  pick(model.inputs.map((i) => i.name), job.inputs.map(decode)).forEach((x0, i) => {
    const inp = model.inputs[i];
    const x = ["string", "float32", "int32", "bool"].includes(x0.dtype) ? x0
      : cast(x0, x0.dtype.startsWith("float") ? "float32" : "int32");
    const dims = (inp.shape ?? []).length === 2 && x.shape.length === 1 ? [x.shape[0], 1] : x.shape;
    feed[inp.name] = tf.tensor(x.data, dims, x.dtype);
  });
  const names = model.outputs.map((o) => o.name);
  let sync = true;
  return p50(job.repeats, async () => {
    let out;
    if (sync) { try { out = model.execute(feed, names); } catch { sync = false; } }
    if (!sync) out = await model.executeAsync(feed, names);
    for (const t of Array.isArray(out) ? out : [out]) { await t.data(); t.dispose(); }
  });
}

const results = [];
for (const job of jobs) {
  try {
    const ms = job.route === "onnxruntime-node" ? await ortNode(job)
      : await tfjs(job, job.route === "tfjs-graph-model-wasm" ? "wasm" : "cpu");
    results.push({ ok: true, p50_ms: ms });
  } catch (e) {
    results.push({ ok: false, error: String((e && e.stack) || e).slice(0, 500) });
  }
}
fs.writeFileSync(outFile, JSON.stringify(results));
process.exit(0);
"""

# Cell route -> (what the table calls the runtime, where the direct call runs)
DIRECT_ROUTES = {
    "onnxruntime": ("onnxruntime (Python)", "python"),
    "torch.jit": ("torch.jit (Python)", "python"),
    "onnxruntime-node": ("onnxruntime-node", "node"),
    "tfjs-graph-model": ("tfjs CPU (Node)", "node"),
    "tfjs-graph-model-wasm": ("tfjs WASM (Node)", "node"),
}
BRIDGE_NOTE = re.compile(r"round trip with the inputs ([\d.]+) ms p50(?:, tf-idf in Node ([\d.]+) ms p50)?; "
                         r"p50_ms = Python's ([\d.]+) ms")
ARTIFACT_LINE = re.compile(r'ARTIFACT(?:\s*:\s*string)?\s*=\s*("(?:[^"\\]|\\.)*")')
HARNESS_LOG = re.compile(r"run #\S+: \S+ on (\S+)")

# The growth part's user systems: tiny scikit-learn classifiers, one per seed (distinct models, distinct
# cache entries), trained in milliseconds, so that the series measures exportconf and not training.
USER_MODELS = '''"""Throwaway systems of scripts/benchmark.py's growth part."""

import numpy as np


def _factory(seed):
    def make():
        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(seed)
        x = rng.normal(size=(200, 4)).astype(np.float32)
        return LogisticRegression(max_iter=300).fit(x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)), x[:8]
    return make


for _i in range(1, 1000):
    globals()[f"u{_i:02d}"] = _factory(_i)
'''


@dataclass
class Run:
    """One measured `pytest --exportconf`."""

    part: str
    label: str  # cold | warm | warm-up
    level: str
    workers: str
    stacks: str
    systems: str  # "built-in" or the number of user systems
    rc: int = -1
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_gb: float = 0.0  # decimal GB (the targets' unit); ru_maxrss is in KiB
    left_running: int = 0
    cells: int = 0
    grades: dict[str, int] = field(default_factory=dict)
    system_grades: dict[str, int] = field(default_factory=dict)
    matrix: dict[str, str] = field(default_factory=dict)  # cell -> grade (runtime level) or grade/system grade
    cell_s: dict[str, float] = field(default_factory=dict)  # junit time per cell (setup + call + teardown)
    results: str = ""  # the results file, kept while its cache is
    cache: str = ""
    log: str = ""

    def key(self) -> tuple[str, str, str]:
        return (self.level, self.stacks, self.systems)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = Path(args.workdir or tempfile.mkdtemp(prefix="exportconf-bench-")).absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self.runs: list[Run] = []
        self.n = 0
        self.node: dict[str, Any] | None = None  # the provisioned Node environment cold caches copy
        self.tool_env: Path | None = None
        self.warm_runtime: Run | None = None  # a warm runtime-level run of --stacks whose cache is kept
        self.notes: list[str] = []
        self.load_at_start = os.getloadavg()

    # --- environments ------------------------------------------------------------------------------
    def needs_node(self, stacks: str) -> bool:
        return bool(NODE_STACKS & set(stacks.split(",")))

    def provision(self) -> None:
        """Provision (or find) the Node environment and the tensorflowjs tool env, untimed, once."""
        if self.node is not None or not self.needs_node(self.args.stacks):
            return
        source = Path(self.args.node_from or self.args.cache or self.root / "seed")
        self.node = node_info(source)
        if self.node is None:
            raise SystemExit(f"no Node environment could be provisioned in {source}/node (see above)")
        code = ("from pytest_exportconf.stacks.node import TFJS_TOOL, tool_env, tools_root; "
                "print(tool_env(tools_root(), TFJS_TOOL))")
        proc = subprocess.run([PY, "-c", code], capture_output=True, text=True)
        if proc.returncode == 0:
            self.tool_env = Path(proc.stdout.strip().splitlines()[-1])
        else:
            self.notes.append("the tensorflowjs tool environment is unavailable: " + proc.stderr[-300:])

    def fresh_cache(self) -> tuple[Path, Path | None]:
        """An empty artifact cache with the provisioned Node environment in node/, and a tools directory
        holding only the tool environment (no conversion-failure memo: a cold run converts again)."""
        self.n += 1
        cache = self.root / f"cache-{self.n:02d}"
        cache.mkdir()
        if self.node is None:
            return cache, None
        src = Path(self.node["root"])
        dest = cache / "node" / src.name
        link_tree(src, dest)
        seeded = node_info(cache)
        if seeded is None or not seeded.get("reused") or Path(seeded["root"]) != dest:
            print(f"!!! the copied Node environment in {cache} was not reused as is: a cold run there "
                  "includes provisioning", flush=True)
        tools = self.root / f"tools-{self.n:02d}"
        tools.mkdir()
        if self.tool_env is not None:
            (tools / self.tool_env.name).symlink_to(self.tool_env)
        return cache, tools

    def drop(self, cache: Path, tools: Path | None) -> None:
        """Remove a cache this script made (never --cache or --node-from) unless a kept run uses it."""
        if self.warm_runtime is not None and self.warm_runtime.cache == str(cache):
            return
        if cache.is_relative_to(self.root) and not self.args.keep:
            shutil.rmtree(cache, ignore_errors=True)
            if tools is not None:
                shutil.rmtree(tools, ignore_errors=True)

    # --- one measured run --------------------------------------------------------------------------
    def run(self, part: str, label: str, cache: Path, tools: Path | None, level: str, workers: str, stacks: str,
            systems: str = BUILTIN, project: Path | None = None) -> Run:
        self.n += 1
        work = self.root / f"run-{self.n:02d}-{part}-{label}"
        if project is not None:
            shutil.copytree(project, work)
        else:
            work.mkdir()
        argv = [PY, "-m", "pytest", "--exportconf", "-p", "no:cacheprovider", "-q", f"--exportconf-cache-dir={cache}",
                f"--exportconf-stacks={stacks}", f"--exportconf-level={level}", "-n", workers,
                f"--exportconf-repeats={self.args.inference_repeats}", "--junitxml=junit.xml"]
        env = {k: v for k, v in os.environ.items() if k != "EXPORTCONF_CACHE_DIR"}
        if tools is not None:
            env["EXPORTCONF_TOOLS_DIR"] = str(tools)
        r = Run(part, label, level, workers, stacks, systems, cache=str(cache), log=str(work / "pytest.log"))
        print(f"  {part} {label}: level {level}, -n {workers}, stacks {stacks}, systems {systems} ...",
              end="", flush=True)
        with open(work / "pytest.log", "w") as log:
            subprocess.run([PY, "-c", WRAPPER, str(work / "usage.json"), *argv], cwd=work, env=env, stdout=log,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        usage = json.loads((work / "usage.json").read_text())
        r.rc, r.wall_s, r.cpu_s = usage["rc"], usage["wall_s"], usage["cpu_s"]
        r.peak_rss_gb, r.left_running = usage["maxrss_kb"] * 1024 / 1e9, usage["left_running"]
        results = work / "exportconf-results.json"
        if results.is_file():
            data = resultsfile.load(results).doc  # checked against the results schema
            r.results, r.cells, r.grades = str(results), data["summary"]["cells"], data["summary"]["grades"]
            r.system_grades = dict(Counter(c["system_grade"] for c in data["cells"] if c.get("system_grade")))
            r.matrix = {c["cell"]: c["grade"] + (f"/{c['system_grade']}" if c.get("system_grade") else "")
                        for c in data["cells"]}
        r.cell_s = junit_times(work / "junit.xml")
        print(f" {r.wall_s:.1f} s wall, {r.cpu_s:.1f} s CPU, {r.peak_rss_gb:.2f} GB, {r.cells} cells"
              + ("" if r.rc == 0 else f", exit status {r.rc} (log: {r.log})"), flush=True)
        if r.left_running:  # not reaped, so not in the CPU and RSS figures
            self.notes.append(f"{r.left_running} process(es) of run {work.name} still ran 20 s after pytest exited")
        if r.rc not in (0, 1):  # 1 = cells failed, still measured; anything else: the run broke
            print("    " + "\n    ".join((work / "pytest.log").read_text().splitlines()[-15:]), flush=True)
        self.runs.append(r)
        return r


def node_info(cache: Path) -> dict[str, Any] | None:
    """The Node environment the plugin uses with this cache (provisioned there if missing, as a run would)."""
    proc = subprocess.run([PY, "-m", "pytest_exportconf.node", str(cache)], capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode not in (0, 2):
        print(proc.stderr[-2000:], file=sys.stderr)
        return None
    info: dict[str, Any] = json.loads(proc.stdout)
    if not info.get("js"):  # exit status 2: provisioned, but the harness's TypeScript build failed
        print(f"!!! the Node harness is not usable: {proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return info


def link_tree(src: Path, dest: Path) -> None:
    """Copy a Node environment: node_modules (~0.8 GB, never written after npm ci) hard-linked, the rest
    copied, because the plugin rewrites some of it in place (stamps, tsc output), which through a hard link
    would change the source; absolute paths to the source (the nodeenv shim) are pointed at the copy."""
    for dirpath, dirnames, filenames in os.walk(src):
        here = Path(dirpath)
        rel = here.relative_to(src)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        links = [d for d in dirnames if (here / d).is_symlink()]
        dirnames[:] = [d for d in dirnames if d not in links]
        for name in filenames + links:
            s, d = here / name, dest / rel / name
            if s.is_symlink():
                target = os.readlink(s)
                d.symlink_to(target.replace(str(src), str(dest), 1) if target.startswith(str(src)) else target)
            elif "node_modules" in rel.parts:
                try:
                    os.link(s, d)
                except OSError:  # another file system
                    shutil.copy2(s, d)
            else:
                shutil.copy2(s, d)
                if s.stat().st_size < 1 << 20:
                    try:
                        text = d.read_text()
                    except UnicodeDecodeError:
                        continue
                    if str(src) in text:
                        d.write_text(text.replace(str(src), str(dest)))


def junit_times(path: Path) -> dict[str, float]:
    if not path.is_file():
        return {}
    out = {}
    for case in ET.parse(path).iter("testcase"):
        name = case.get("name", "")
        out[name[name.find("[") + 1:-1] if "[" in name else name] = float(case.get("time", "0"))
    return out


# --- parts ------------------------------------------------------------------------------------------
def part_matrix(b: Bench) -> None:
    a = b.args
    for level in a.levels.split(","):
        for workers in a.workers.split(","):
            cache: Path | None = Path(a.cache) if a.cache else None
            tools: Path | None = None
            if cache is None:
                for _ in range(a.repeats):  # each cold run on a cache of its own
                    if cache is not None:
                        b.drop(cache, tools)
                    cache, tools = b.fresh_cache()
                    b.run("matrix", "cold", cache, tools, level, workers, a.stacks)
            assert cache is not None
            for _ in range(a.repeats):
                warm = b.run("matrix", "warm", cache, tools, level, workers, a.stacks)
            if level == "runtime" and b.warm_runtime is None and warm.results:
                b.warm_runtime = warm
            elif not a.cache:
                b.drop(cache, tools)


def part_direct(b: Bench) -> dict[str, Any]:
    a = b.args
    src = b.warm_runtime
    if src is None:  # results with artifacts in a live cache: one runtime-level run (warm with --cache)
        cache, tools = (Path(a.cache), None) if a.cache else b.fresh_cache()
        src = b.run("direct", "warm" if a.cache else "cold", cache, tools, "runtime", "0", a.stacks)
    if not src.results:
        return {"error": "the run for the direct part wrote no results"}
    results = resultsfile.load(src.results).doc
    jobs, skipped, bridge = collect_attempts(results)
    if not any(j["route"] == "tfjs-graph-model-wasm" for j in jobs):
        # The ladder stops at the CPU backend when it passes, so no cell reports WASM: drive the harness
        # itself with the WASM route on the same converted models (the p50 a cell would report).
        jobs += [dict(j, route="tfjs-graph-model-wasm", cell_p50_ms=None, harness=True)
                 for j in jobs if j["route"] == "tfjs-graph-model"]
    node = node_info(Path(src.cache)) if any(DIRECT_ROUTES[j["route"]][1] == "node" for j in jobs) else None
    work = b.root / "direct"
    work.mkdir(exist_ok=True)
    unique: dict[str, dict[str, Any]] = {}
    for j in jobs:
        unique.setdefault(j["key"] + j["route"], {k: j[k] for k in ("route", "artifact", "inputs")})
    for route in DIRECT_ROUTES:
        todo = [(k, u) for k, u in unique.items() if u["route"] == route]
        if not todo:
            continue
        answers = direct_calls(work, route, [u for _, u in todo], node, a.inference_repeats)
        for (_, u), ans in zip(todo, answers, strict=True):
            u["direct"] = ans
    harnessed = [j for j in jobs if j.get("harness")]
    if harnessed and node is not None:
        for j, ans in zip(harnessed, harness_calls(node, harnessed, a.inference_repeats), strict=True):
            j["cell_p50_ms"] = ans.get("p50_ms")
            j["harness_error"] = ans.get("error")
    for j in jobs:
        d = unique[j["key"] + j["route"]]["direct"]
        j["direct_p50_ms"], j["direct_error"] = d.get("p50_ms"), d.get("error")
        del j["inputs"], j["key"]
    return {"source_run": src.log, "repeats": a.inference_repeats, "attempts": jobs, "skipped": skipped,
            "bridge": bridge}


def collect_attempts(results: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str], list[dict[str, float]]]:
    """Every passing attempt of a compared route with its artifact, golden input and reported p50; those fed
    through separate preprocessing are skipped (their p50 includes the tf-idf, which no plain runtime call
    does); the bridge's own figures from its note."""
    jobs, skipped, bridge = [], [], []
    for cell in results["cells"]:
        for prod in cell["producers"]:
            for att in prod["attempts"]:
                where = f"{cell['cell']} {prod['framework']}/{att['variant']}"
                if att["route"] == "python-bridge" and att["ok"]:
                    for note in att["notes"]:
                        if m := BRIDGE_NOTE.search(note):
                            bridge.append({"round_trip_ms": float(m[1]), "tfidf_ms": float(m[2] or 0),
                                           "python_ms": float(m[3]), "p50_ms": att["p50_ms"]})
                if att["route"] not in DIRECT_ROUTES or not att["ok"] or att["p50_ms"] is None:
                    continue
                artifact = artifact_of(att)
                variant = variant_of(artifact, att["variant"]) if artifact else None
                if artifact is None or variant is None:
                    skipped.append(f"{where} {att['route']}: artifact or its manifest not found")
                elif variant.get("preprocessing"):
                    skipped.append(f"{where} {att['route']}: separate preprocessing")
                else:
                    jobs.append({"cell": cell["cell"], "framework": prod["framework"], "variant": att["variant"],
                                 "route": att["route"], "artifact": artifact, "inputs": variant["golden"],
                                 "input_spec": variant["input_spec"], "cell_p50_ms": att["p50_ms"],
                                 "key": artifact + json.dumps(variant["golden"])})
    return jobs, skipped, bridge


def artifact_of(att: dict[str, Any]) -> str | None:
    """The artifact the attempt ran: its snippet's ARTIFACT, else the harness's log line."""
    if m := ARTIFACT_LINE.search(att.get("snippet") or ""):
        path: str = json.loads(m[1])
        return path
    for note in att["notes"]:
        if m := HARNESS_LOG.search(note):
            return m[1]
    return None


def variant_of(artifact: str, variant: str) -> dict[str, Any] | None:
    """The variant's golden input and preprocessing, from the manifest of the cache entry holding the artifact
    (a converted model's entry names the export it was converted from)."""
    for parent in Path(artifact).parents:
        manifest = parent / "manifest.json"
        if manifest.is_file():
            data = json.loads(manifest.read_text())
            source = data.get("key", {}).get("artifact")
            if "variants" not in data:
                return variant_of(source, variant) if source else None
            found: dict[str, Any] | None = data["variants"].get(variant)
            return found
    return None


def direct_calls(work: Path, route: str, jobs: list[dict[str, Any]], node: dict[str, Any] | None,
                 repeats: int) -> list[dict[str, Any]]:
    where = DIRECT_ROUTES[route][1]
    d = work / route
    d.mkdir(exist_ok=True)
    (d / "jobs.json").write_text(json.dumps([dict(j, repeats=repeats) for j in jobs]))
    if where == "python":
        (d / "direct.py").write_text(DIRECT_PY)
        argv = [PY, str(d / "direct.py")]
    elif node is None:
        return [{"ok": False, "error": "no Node environment"}] * len(jobs)
    else:
        (d / "direct.mjs").write_text(DIRECT_MJS)
        if not (d / "node_modules").exists():
            (d / "node_modules").symlink_to(Path(node["root"]) / "harness" / "node_modules")
        argv = [*node["js"][:2], str(d / "direct.mjs")]  # the harness's own node (its nodeenv shim)
    proc = subprocess.run([*argv, str(d / "jobs.json"), str(d / "out.json")], capture_output=True, text=True,
                          timeout=900, cwd=d)
    if not (d / "out.json").is_file():
        return [{"ok": False, "error": f"exit status {proc.returncode}: {proc.stderr[-400:]}"}] * len(jobs)
    out: list[dict[str, Any]] = json.loads((d / "out.json").read_text())
    return out


def harness_calls(node: dict[str, Any], jobs: list[dict[str, Any]], repeats: int) -> list[dict[str, Any]]:
    """Send the jobs to the JavaScript harness over its protocol (docs/protocol.md), as a cell would."""
    lines = [json.dumps({"op": "run", "id": i, "route": j["route"], "artifact": j["artifact"], "preprocessing": None,
                         "inputs": j["inputs"], "input_spec": j["input_spec"], "repeats": repeats})
             for i, j in enumerate(jobs)]
    proc = subprocess.run(node["js"], input="\n".join([*lines, '{"op": "shutdown"}']) + "\n", capture_output=True,
                          text=True, timeout=900)
    answers = {r.get("id"): r for r in (json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{"))}
    return [answers.get(i, {"ok": False, "error": proc.stderr[-300:]}) for i in range(len(jobs))]


def part_growth(b: Bench, series: set[str]) -> None:
    a = b.args
    if "users" in series:
        stacks_sets = ["python"] + ([a.stacks] if a.stacks != "python" else [])
        for stacks in stacks_sets:
            for n in (int(x) for x in a.systems.split(",")):
                project = user_project(b.root / f"project-{n}", n)
                cache, tools = b.fresh_cache()
                b.run("growth", "cold", cache, tools, "runtime", a.growth_workers, stacks, str(n), project)
                for _ in range(a.repeats):
                    b.run("growth", "warm", cache, tools, "runtime", a.growth_workers, stacks, str(n), project)
                b.drop(cache, tools)
    if "stacks" in series:
        names = a.stacks.split(",")
        if b.warm_runtime is not None:
            cache, tools = Path(b.warm_runtime.cache), None
        elif a.cache:
            cache, tools = Path(a.cache), None
        else:  # untimed for the series: it only fills the cache
            cache, tools = b.fresh_cache()
            b.run("growth", "warm-up", cache, tools, "runtime", a.growth_workers, a.stacks)
        for i in range(1, len(names) + 1):
            for _ in range(a.repeats):
                b.run("growth", "warm", cache, tools, "runtime", a.growth_workers, ",".join(names[:i]))


def user_project(d: Path, n: int) -> Path:
    if d.exists():
        return d
    (d / "src").mkdir(parents=True)
    (d / "src" / "benchmodels.py").write_text(USER_MODELS)
    names = [f"u{i:02d}" for i in range(1, n + 1)]
    toml = ["[tool.pytest.ini_options]", 'pythonpath = ["src"]', f'exportconf_systems = "{" ".join(names)}"']
    for s in names:
        toml += ["", "[[tool.exportconf.systems]]", f'name = "{s}"', 'framework = "sklearn"',
                 f'factory = "benchmodels:{s}"', 'task = "classification"']
    (d / "pyproject.toml").write_text("\n".join(toml) + "\n")
    return d


# --- report -----------------------------------------------------------------------------------------
def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def spread(xs: list[float], fmt: str = "{:.1f}") -> str:
    if not xs:
        return "-"
    return fmt.format(med(xs)) + (f" ({fmt.format(min(xs))}-{fmt.format(max(xs))})" if len(xs) > 1 else "")


def grades_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts.get(g, 0)} `{g}`" for g in ("++", "+", "-", "--"))


def header(b: Bench) -> list[str]:
    mem = next((ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                if ln.startswith("MemTotal")), "0")
    versions = []
    for dist in ("pytest-exportconf", "pytest", "pytest-xdist", "tensorflow-cpu", "tensorflow", "keras", "torch",
                 "scikit-learn", "onnxruntime", "numpy"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    if b.node is not None:
        versions.append(f"Node {b.node['version']}")
        modules = Path(b.node["root"]) / "harness" / "node_modules"
        for pkg in ("onnxruntime-node", "onnxruntime-web", "@tensorflow/tfjs"):
            try:
                versions.append(f"{pkg} {json.loads((modules / pkg / 'package.json').read_text())['version']}")
            except OSError:
                pass
    date = subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip()
    at_end = os.getloadavg()
    load = " -> ".join(", ".join(f"{x:.1f}" for x in la) for la in (b.load_at_start, at_end))
    busy = max(b.load_at_start[0], at_end[0]) > 0.5 * (os.cpu_count() or 1)
    return [f"### `scripts/benchmark.py`, {date}",
            "",
            f"Machine: {os.cpu_count()} cores, {int(mem) / 1024 ** 2:.1f} GiB RAM, {platform.platform()}, "
            f"load average from start to end {load}; Python {platform.python_version()}; {', '.join(versions)}.",
            *(["", "**The machine was busy (load average above half the cores): wall times and sub-millisecond "
               "latencies (scheduler wake-ups) are inflated; re-run on a quiet machine for figures to quote.**"]
              if busy else []),
            ""]


def report(b: Bench, direct: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    a, head = b.args, header(b)
    out = list(head)
    groups: dict[tuple[str, str, str, str, str, str], list[Run]] = {}
    for r in b.runs:
        groups.setdefault((r.part, r.level, r.workers, r.stacks, r.systems, r.label), []).append(r)
    matrix = {k: v for k, v in groups.items() if k[0] == "matrix"}
    figures: dict[str, Any] = {}
    if matrix:
        cold = (f"warm runs only, on {a.cache}" if a.cache else
                "cold = a fresh artifact cache holding only a copy of the provisioned Node environment, and "
                "the tensorflowjs tool env without its conversion-failure memo: the run pays the exports, the "
                "conversions and, at the system level, the web-app builds (npm ci from npm's local cache, "
                "next build); warm = the same cache again")
        out += [f"Matrix (stacks {a.stacks}; {a.repeats} run(s) each, median (range); {cold}):", "",
                "| level | -n | run | wall s | CPU s | peak RSS GB | cells | grades | cell median / max s |",
                "|---|---|---|---|---|---|---|---|---|"]
        for (_, level, workers, _, _, label), rs in matrix.items():
            times = [t for r in rs for t in r.cell_s.values()]
            g = grades_text(rs[-1].grades) + (f"; system {grades_text(rs[-1].system_grades)}"
                                              if rs[-1].system_grades else "")
            out.append(f"| {level} | {workers} | {label} | {spread([r.wall_s for r in rs])} | "
                       f"{spread([r.cpu_s for r in rs])} | {spread([r.peak_rss_gb for r in rs], '{:.2f}')} | "
                       f"{rs[-1].cells} | {g} | {med(times):.2f} / {max(times, default=float('nan')):.2f} |")
            figures[f"{level} -n {workers} {label}"] = med([r.wall_s for r in rs])
        out.append("")
        for (_, level, workers, _, _, label), rs in matrix.items():
            slow = sorted(((t, c) for c, t in rs[-1].cell_s.items()), reverse=True)[:5]
            out.append(f"- slowest cells, {level} -n {workers} {label}: "
                       + ", ".join(f"{c} {t:.1f} s" for t, c in slow))
        ws = a.workers.split(",")
        for level in a.levels.split(","):
            for label in ("cold", "warm"):
                if len(ws) > 1 and all(f"{level} -n {w} {label}" in figures for w in ws[:2]):
                    x = figures[f"{level} -n {ws[0]} {label}"] / figures[f"{level} -n {ws[1]} {label}"]
                    out.append(f"- {level} {label}: -n {ws[1]} is {x:.2f}x as fast as -n {ws[0]}")
        for w in ws:
            for label in ("cold", "warm"):
                rt, st = figures.get(f"runtime -n {w} {label}"), figures.get(f"system -n {w} {label}")
                if rt is not None and st is not None:
                    out.append(f"- the system level adds {st - rt:+.1f} s {label} at -n {w}")
        out.append("")
    out += check_matrix(b.runs)
    if direct is not None:
        out += direct_table(direct)
    growth = [r for r in b.runs if r.part == "growth" and r.label != "warm-up"]
    if growth:
        out += growth_table(b, growth)
    out += targets(b, figures)
    if b.notes:
        out += ["", *(f"- note: {n}" for n in b.notes)]
    return "\n".join(out), {"header": head, "figures": figures, "runs": [asdict(r) for r in b.runs],
                            "direct": direct}


def check_matrix(runs: list[Run]) -> list[str]:
    """The same selection must measure the same grades in every run (cold or warm, any -n)."""
    lines: list[str] = []
    by: dict[tuple[str, str, str], list[Run]] = {}
    for r in runs:
        if r.matrix:
            by.setdefault(r.key(), []).append(r)
    for (level, stacks, systems), rs in by.items():
        first = rs[0].matrix
        changed = sorted({c for r in rs[1:] for c in set(first) | set(r.matrix) if first.get(c) != r.matrix.get(c)})
        if changed:
            lines.append(f"**!!! THE MEASURED MATRIX CHANGED between runs of level {level}, stacks {stacks}, systems "
                         f"{systems}: {', '.join(changed[:10])}** (per run: "
                         + "; ".join(f"{r.label} -n {r.workers} {grades_text(r.grades)}" for r in rs) + ")")
        elif len(rs) > 1:
            lines.append(f"- the same grades in all {len(rs)} runs of level {level}, stacks {stacks}, "
                         f"systems {systems}")
    return [*lines, ""] if lines else []


def direct_table(direct: dict[str, Any]) -> list[str]:
    if "error" in direct:
        return [f"Direct calls: {direct['error']}", ""]
    out = [f"Latency one cell reports vs a plain script calling the same runtime on the same artifact and golden "
           f"input (p50 of {direct['repeats']} calls after one untimed call; cells with separate "
           "preprocessing left out):", "",
           "| runtime | attempts | cell p50 ms | direct p50 ms | ratio median (max) | <= 1.2: median / every attempt |",
           "|---|---|---|---|---|---|"]
    for route, (label, _) in DIRECT_ROUTES.items():
        atts = [j for j in direct["attempts"] if j["route"] == route]
        ok = [j for j in atts if j["cell_p50_ms"] and j["direct_p50_ms"]]
        if not atts:
            out.append(f"| {label} | 0 | - | - | - | no cell ran it |")
            continue
        if not ok:
            err = next((j.get("direct_error") or j.get("harness_error") for j in atts), "") or "no figure"
            out.append(f"| {label} | {len(atts)} | - | - | - | {str(err).splitlines()[0][:80]} |")
            continue
        ratios = [j["cell_p50_ms"] / j["direct_p50_ms"] for j in ok]
        how = " (harness driven directly: no cell ran it)" if any(j.get("harness") for j in ok) else ""
        out.append(f"| {label}{how} | {len(ok)} | {spread([j['cell_p50_ms'] for j in ok], '{:.3f}')} | "
                   f"{spread([j['direct_p50_ms'] for j in ok], '{:.3f}')} | {med(ratios):.2f} ({max(ratios):.2f}) | "
                   f"{'met' if med(ratios) <= 1.2 else 'not met'} / {'met' if max(ratios) <= 1.2 else 'not met'} |")
    br = direct["bridge"]
    if br:
        tfidf = [x["tfidf_ms"] for x in br if x["tfidf_ms"]]
        out += ["", f"- the Python bridge, apart ({len(br)} attempts; a cell's p50 = Python's + the round trip"
                " + the tf-idf in Node): round trip with the inputs "
                f"{spread([x['round_trip_ms'] for x in br], '{:.3f}')} ms, Python side "
                f"{spread([x['python_ms'] for x in br], '{:.3f}')} ms"
                + (f", tf-idf in Node {spread(tfidf, '{:.3f}')} ms" if tfidf else "")]
    if direct["skipped"]:
        out += [] if br else [""]
        out.append(f"- left out: {len(direct['skipped'])} attempts ({direct['skipped'][0]}, ...)")
    return [*out, ""]


def growth_table(b: Bench, runs: list[Run]) -> list[str]:
    out = [f"Growth (runtime level, -n {b.args.growth_workers}; user systems: scikit-learn logistic regressions; "
           "median wall of the warm runs):", "",
           "| systems | stacks | cells | cold wall s | warm wall s |", "|---|---|---|---|---|"]
    rows: dict[tuple[str, str], dict[str, list[Run]]] = {}
    for r in runs:
        rows.setdefault((r.systems, r.stacks), {}).setdefault(r.label, []).append(r)
    for (systems, stacks), by in rows.items():
        cells = (by.get("warm") or by["cold"])[0].cells
        out.append(f"| {systems if systems == BUILTIN else systems + ' user'} | {stacks} | {cells} | "
                   f"{spread([r.wall_s for r in by.get('cold', [])])} | "
                   f"{spread([r.wall_s for r in by.get('warm', [])])} |")
    out.append("")

    def per_cell(points: list[tuple[str, str]], label: str) -> str:
        ends = [rows[p].get(label) for p in (points[0], points[-1])] if len(points) > 1 else []
        if not ends or not all(ends):
            return "n/a"
        lo, hi = ends
        assert lo is not None and hi is not None
        d_cells = hi[0].cells - lo[0].cells
        return f"{(med([r.wall_s for r in hi]) - med([r.wall_s for r in lo])) / d_cells:.2f} s" if d_cells else "n/a"

    def by_size(k: tuple[str, str]) -> int:
        return int(k[0]) if k[0].isdigit() else 0

    for stacks in dict.fromkeys(s for sy, s in rows if sy != BUILTIN):
        pts = sorted((k for k in rows if k[1] == stacks and k[0] != BUILTIN), key=by_size)
        out.append(f"- per-cell cost, user systems {pts[0][0]} -> {pts[-1][0]}, stacks {stacks}: "
                   f"cold {per_cell(pts, 'cold')}, warm {per_cell(pts, 'warm')} "
                   "((wall(last) - wall(first)) / (cells(last) - cells(first)))")
    pts = [k for k in rows if k[0] == BUILTIN]
    if pts:
        out.append(f"- per-cell cost with the number of stacks (built-in systems, {pts[0][1]} -> {pts[-1][1]}): "
                   f"warm {per_cell(pts, 'warm')}")
    return [*out, ""]


def targets(b: Bench, figures: dict[str, float]) -> list[str]:
    """Issue 13's targets next to what this run measured (runtime level, the stacks selected)."""
    rows = []
    warm2, warm0, cold2 = (figures.get(f"runtime -n {w} {lab}") for w, lab in (("2", "warm"), ("0", "warm"),
                                                                               ("2", "cold")))
    if warm2 is not None:
        rows.append(("warm matrix, -n 2", "<= 10 s", f"{warm2:.1f} s", warm2 <= 10))
    if warm2 is not None and warm0 is not None:
        rows.append(("warm, -n 2 vs -n 0", ">= 1.4x", f"{warm0 / warm2:.2f}x", warm0 / warm2 >= 1.4))
    if cold2 is not None:
        rows.append(("cold matrix, -n 2", "<= 40 s", f"{cold2:.1f} s", cold2 <= 40))
    matrix = [r for r in b.runs if r.part == "matrix"]
    if matrix:
        peak = max(r.peak_rss_gb for r in matrix)
        rows.append(("peak RSS of the largest process", "<= 1.2 GB", f"{peak:.2f} GB", peak <= 1.2))
    if not rows:
        return []
    return ["Targets of issue 13 (stacks " + b.args.stacks + "):", "", "| target | budget | measured | |",
            "|---|---|---|---|", *(f"| {t} | {budget} | {m} | {'met' if ok else 'not met'} |"
                                   for t, budget, m, ok in rows)]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--parts", default="matrix,direct,growth",
                    help="matrix, direct, growth (or growth-users, growth-stacks), comma-separated")
    ap.add_argument("--levels", default="runtime,system", help="matrix levels")
    ap.add_argument("--workers", default="0,2", help="matrix pytest-xdist workers (-n), compared side by side")
    ap.add_argument("--stacks", default="python,javascript,typescript",
                    help="stacks of the matrix and direct parts; the growth part's largest set and order")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per configuration (median reported)")
    ap.add_argument("--inference-repeats", type=int, default=20,
                    help="--exportconf-repeats of every run, and the direct calls' count (p50)")
    ap.add_argument("--systems", default="1,4,16", help="growth: numbers of user systems")
    ap.add_argument("--growth-workers", default="0", help="growth: -n of its runs")
    ap.add_argument("--cache", default=None,
                    help="an existing warm cache: the matrix times warm runs only on it, the direct part and the "
                         "stacks series use it (runs write to it what any run would)")
    ap.add_argument("--node-from", default=None,
                    help="a cache whose node/ holds a provisioned Node environment to copy into each cold cache "
                         "(default: --cache, else one provisioned untimed in the work directory with "
                         "`python -m pytest_exportconf.node`)")
    ap.add_argument("--workdir", default=None, help="where caches and runs go (default: a new temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--json", default=None, help="also write the raw figures here")
    args = ap.parse_args()
    if args.repeats < 1 or args.inference_repeats < 1:
        ap.error("--repeats and --inference-repeats take a positive count")
    parts = set(args.parts.split(","))
    unknown = parts - {"matrix", "direct", "growth", "growth-users", "growth-stacks"}
    if unknown:
        ap.error(f"unknown parts: {', '.join(sorted(unknown))}")
    growth = {"users", "stacks"} if "growth" in parts else {p.split("-")[1] for p in parts if p.startswith("growth-")}
    b = Bench(args)
    print(f"exportconf benchmark in {b.root}", flush=True)
    direct = None
    try:
        b.provision()
        if "matrix" in parts:
            part_matrix(b)
        if "direct" in parts:
            direct = part_direct(b)
        if growth:
            part_growth(b, growth)
        text, raw = report(b, direct)
        print("\n" + text)
        if args.json:
            Path(args.json).write_text(json.dumps(raw, indent=1))
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(b.root, ignore_errors=True)


if __name__ == "__main__":
    main()
