#!/usr/bin/env node
// exportconf's JavaScript harness: a long-lived Node.js worker speaking the JSON-lines protocol of
// docs/protocol.md on stdin/stdout. Plain ESM JavaScript, no build step: the JavaScript stack.
//
//   node src/harness.mjs [--python /path/to/python]
//
// Routes, by the request's `route` field:
//   onnxruntime-node              native ONNX Runtime (N-API binding)
//   onnxruntime-web               ONNX Runtime compiled to WebAssembly, run in Node
//   tfjs-graph-model              a TensorFlow.js graph model (tensorflowjs_converter output), CPU backend
//   tfjs-graph-model-wasm         the same on TensorFlow.js's WebAssembly backend
//   python-bridge:<module:Class>  a Python load worker spawned with child_process, running that route
//
// stdout carries protocol lines only: console output of the harness and of its libraries goes to stderr.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

import { applyPreprocessing } from "./preprocessing.mjs";

// ---- the protocol channel ------------------------------------------------------------------------
const channelWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, encoding, cb) => process.stderr.write(chunk, encoding, cb);
for (const level of ["log", "info", "debug", "warn", "trace"]) {
  console[level] = (...args) => process.stderr.write(args.map(String).join(" ") + "\n");
}
const send = (obj) => channelWrite(JSON.stringify(obj) + "\n");
const log = (msg) => process.stderr.write(`[exportconf-harness js] ${msg}\n`);

if (os.endianness() !== "LE") {
  // The wire format is little-endian; typed arrays use the host's order.
  throw new Error("the exportconf harness needs a little-endian host");
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PYTHON = argValue("--python") ?? process.env.EXPORTCONF_PYTHON ?? "python3";

function argValue(flag) {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

// ---- tensors ---------------------------------------------------------------------------------------
const ARRAYS = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

export function decodeTensor(t) {
  const shape = t.shape.map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  if (t.dtype === "string") {
    if (!Array.isArray(t.data) || t.data.length !== count) throw new Error("string tensor: data must be a list of shape's size");
    return { name: t.name ?? null, dtype: "string", shape, data: t.data.map(String) };
  }
  const Ctor = ARRAYS[t.dtype];
  if (!Ctor) throw new Error(`unknown tensor dtype ${JSON.stringify(t.dtype)}; supported: ${Object.keys(ARRAYS).join(", ")}, string`);
  const bytes = new Uint8Array(Buffer.from(t.data, "base64")); // a copy: offset 0, so aligned
  if (bytes.byteLength !== count * Ctor.BYTES_PER_ELEMENT) {
    throw new Error(`tensor ${t.name ?? ""}: ${bytes.byteLength} bytes for ${t.dtype}${JSON.stringify(shape)}`);
  }
  return { name: t.name ?? null, dtype: t.dtype, shape, data: new Ctor(bytes.buffer, 0, count) };
}

export function encodeTensor(t) {
  if (t.dtype === "string") return { name: t.name ?? null, dtype: "string", shape: t.shape, data: Array.from(t.data, String) };
  const Ctor = ARRAYS[t.dtype];
  if (!Ctor) throw new Error(`cannot send dtype ${t.dtype}; supported: ${Object.keys(ARRAYS).join(", ")}, string`);
  const arr = t.data instanceof Ctor ? t.data : Ctor.from(t.data);
  const b64 = Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength).toString("base64");
  return { name: t.name ?? null, dtype: t.dtype, shape: t.shape.map(Number), data: b64 };
}

// `inputs` is one tensor (fed to the model's only input) or a list of named tensors.
function requestTensors(req) {
  const raw = Array.isArray(req.inputs) ? req.inputs : [req.inputs];
  return raw.map(decodeTensor);
}

// ---- versions --------------------------------------------------------------------------------------
function packageFile(name) {
  for (let dir = HERE; ; dir = path.dirname(dir)) {
    const file = path.join(dir, "node_modules", name, "package.json");
    if (fs.existsSync(file)) return file;
    if (path.dirname(dir) === dir) return null;
  }
}

function packageJson(name) {
  const file = packageFile(name);
  return file ? JSON.parse(fs.readFileSync(file, "utf8")) : null;
}

function versions(packages) {
  const out = { node: process.version.replace(/^v/, "") };
  for (const p of packages) out[p] = packageJson(p)?.version ?? "not installed";
  return out;
}

// ---- preprocessing ---------------------------------------------------------------------------------
function loadPreprocessing(file) {
  return file ? JSON.parse(fs.readFileSync(file, "utf8")) : null;
}

function preprocess(spec, tensors) {
  if (!spec) return tensors;
  const [text] = tensors;
  if (tensors.length !== 1 || text.dtype !== "string") throw new Error("preprocessing needs one string input");
  const vec = applyPreprocessing(spec, text.data);
  return [{ name: null, dtype: "float32", shape: vec.shape, data: vec.data }];
}

// ---- ONNX Runtime routes (node and web share the session handling) -----------------------------------
const ORT_TYPES = new Set(["float32", "float64", "int8", "int32", "int64", "uint8", "bool", "string"]);
const imported = new Map();

async function timedImport(specifier) {
  if (imported.has(specifier)) return { mod: imported.get(specifier), ms: 0 };
  const t0 = performance.now();
  const ns = await import(specifier);
  const mod = ns.default ?? ns;
  imported.set(specifier, mod);
  return { mod, ms: performance.now() - t0 };
}

function describe(meta) {
  return meta
    .map((m) => `${m.name} ${m.isTensor ? `${m.type}[${(m.shape ?? []).map((d) => (typeof d === "number" ? d : d ?? "?")).join(", ")}]` : "non-tensor"}`)
    .join("; ");
}

// Match the request's tensors to the session's inputs by name (or position for a single input) and
// shape them as the session asks: text arrives as [N] and skl2onnx graphs want an [N, 1] column.
function feeds(ort, session, tensors) {
  const meta = session.inputMetadata;
  if (tensors.length !== meta.length) {
    throw new Error(`model has ${meta.length} inputs (${session.inputNames.join(", ")}); the request sends ${tensors.length}`);
  }
  const out = {};
  meta.forEach((m, i) => {
    const t = tensors.length === 1 ? tensors[0] : tensors.find((x) => x.name === m.name);
    if (!t) throw new Error(`no tensor named ${m.name} in the request`);
    let dims = t.shape;
    const rank = (m.shape ?? []).length;
    if (rank === 2 && dims.length === 1) dims = [dims[0], 1];
    let data = t.data;
    if (m.type !== t.dtype) {
      if (m.type === "string" || t.dtype === "string") throw new Error(`input ${m.name} wants ${m.type}, got ${t.dtype}`);
      data = castTo(m.type, t.data);
    }
    out[m.name] = new ort.Tensor(m.type, data, dims);
  });
  return out;
}

function castTo(type, data) {
  const Ctor = ARRAYS[type];
  if (!Ctor) throw new Error(`cannot feed ${type}`);
  if (type === "int64") return BigInt64Array.from(data, (v) => BigInt(Math.trunc(Number(v))));
  return Ctor.from(data, Number);
}

function outputsOf(session, result) {
  return session.outputNames.map((name) => {
    const t = result[name];
    if (!ORT_TYPES.has(t.type)) throw new Error(`output ${name} has type ${t.type}, which the protocol does not carry`);
    return { name, dtype: t.type, shape: t.dims.map(Number), data: t.data };
  });
}

async function sessionRoute(req, { specifier, packages, create, frictions = [], notes = [] }) {
  const { mod: ort, ms: importMs } = await timedImport(specifier);
  const prepFile = req.preprocessing;
  const inputs = requestTensors(req);
  const t0 = performance.now();
  const session = await create(ort, req.artifact, notes, frictions);
  const spec = loadPreprocessing(prepFile);
  const loadMs = performance.now() - t0;
  notes.push(
    `IO signature read from the session (inputNames/inputMetadata): in ${describe(session.inputMetadata)}; out ${describe(session.outputMetadata)}`,
  );
  const infer = async () => outputsOf(session, await session.run(feeds(ort, session, preprocess(spec, inputs))));
  return await timed(req, infer, { importMs, loadMs, notes, frictions, versions: versions(packages), release: () => session.release() });
}

async function timed(req, infer, extra) {
  try {
    const outputs = await infer(); // warm-up, kept out of the latency figure
    const times = [];
    for (let i = 0; i < Math.max(1, Number(req.repeats ?? 20)); i++) {
      const t = performance.now();
      await infer();
      times.push(performance.now() - t);
    }
    return {
      ok: true,
      outputs: outputs.map(encodeTensor),
      import_ms: extra.importMs,
      load_ms: extra.loadMs,
      p50_ms: median(times),
      notes: extra.notes,
      frictions: extra.frictions,
      versions: extra.versions,
    };
  } finally {
    await extra.release?.();
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Files next to the model that hold its external data (ONNX `location` is relative to the model).
function externalDataFiles(artifact) {
  const dir = path.dirname(artifact);
  return fs
    .readdirSync(dir)
    .filter((f) => f !== path.basename(artifact) && (f.endsWith(".data") || f.endsWith(".bin")))
    .map((f) => ({ path: f, file: path.join(dir, f) }));
}

const ROUTES = {
  "onnxruntime-node": (req) =>
    sessionRoute(req, {
      specifier: "onnxruntime-node",
      packages: ["onnxruntime-node"],
      create: async (ort, artifact, notes) => {
        const ext = externalDataFiles(artifact);
        if (ext.length) notes.push(`external data ${ext.map((e) => e.path).join(", ")} read by the runtime from the model's directory`);
        return ort.InferenceSession.create(artifact, { executionProviders: ["cpu"], logSeverityLevel: 3 });
      },
    }),
  "onnxruntime-web": (req) =>
    sessionRoute(req, {
      specifier: "onnxruntime-web",
      packages: ["onnxruntime-web"],
      create: async (ort, artifact, notes, frictions) => {
        ort.env.wasm.numThreads = 1;
        ort.env.logLevel = "error";
        const ext = externalDataFiles(artifact);
        const options = { executionProviders: ["wasm"], logSeverityLevel: 3 };
        if (ext.length) {
          options.externalData = ext.map((e) => ({ path: e.path, data: new Uint8Array(fs.readFileSync(e.file)) }));
          frictions.push({
            kind: "external-data-file",
            detail: `onnxruntime-web cannot open ${ext.map((e) => e.path).join(", ")} itself: read by the harness and passed via the externalData option`,
          });
        }
        notes.push(`WebAssembly backend, ${ort.env.wasm.numThreads} thread(s)`);
        return ort.InferenceSession.create(new Uint8Array(fs.readFileSync(artifact)), options);
      },
    }),
  "tfjs-graph-model": (req) => tfjsRoute(req, "cpu"),
  "tfjs-graph-model-wasm": (req) => tfjsRoute(req, "wasm"),
  "python-bridge": (req, target) => bridge.run(req, target),
};

// ---- TensorFlow.js routes (a graph model converted by tensorflowjs_converter) ---------------------------
const TFJS_DTYPES = { float32: "float32", int32: "int32", bool: "bool", string: "string" };
let tfBackend = null;

async function tfjsBackend(tf, backend) {
  let ms = 0;
  if (backend === "wasm") {
    const { mod: wasm, ms: wasmMs } = await timedImport("@tensorflow/tfjs-backend-wasm");
    ms += wasmMs;
    // In Node the WASM binaries are read from the package's own dist directory.
    const dist = path.join(path.dirname(packageFile("@tensorflow/tfjs-backend-wasm")), "dist") + path.sep;
    if (tfBackend !== "wasm") wasm.setWasmPaths(dist);
  }
  if (tfBackend !== backend) {
    const t0 = performance.now();
    if (!(await tf.setBackend(backend))) throw new Error(`TensorFlow.js backend ${backend} did not initialise`);
    await tf.ready();
    tfBackend = backend;
    ms += performance.now() - t0;
  }
  return ms;
}

// Read model.json and its weight shards (which must stay inside the model's directory).
function graphModelArtifacts(artifact) {
  const dir = path.dirname(artifact);
  const json = JSON.parse(fs.readFileSync(artifact, "utf8"));
  const weightSpecs = [];
  const shards = [];
  for (const group of json.weightsManifest ?? []) {
    for (const p of group.paths) {
      const file = path.resolve(dir, p);
      if (path.relative(dir, file).startsWith("..")) throw new Error(`weight path ${p} escapes the model directory`);
      shards.push(fs.readFileSync(file));
    }
    weightSpecs.push(...group.weights);
  }
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return { json, artifacts: { ...json, weightSpecs, weightData } };
}

// Frictions the conversion step recorded next to the converted model (e.g. its own toolchain).
function conversionFacts(artifact) {
  const file = path.join(path.dirname(artifact), "exportconf-conversion.json");
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : { frictions: [], notes: [] };
}

async function tfjsRoute(req, backend) {
  const notes = [];
  const facts = conversionFacts(req.artifact);
  const frictions = [...(facts.frictions ?? [])];
  const { mod: tf, ms: tfMs } = await timedImport("@tensorflow/tfjs");
  const importMs = tfMs + (await tfjsBackend(tf, backend));
  const inputs = requestTensors(req);
  const t0 = performance.now();
  const { artifacts } = graphModelArtifacts(req.artifact);
  const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  const spec = loadPreprocessing(req.preprocessing);
  const loadMs = performance.now() - t0;
  const sig = (xs) => xs.map((x) => `${x.name} ${x.dtype ?? "?"}[${(x.shape ?? []).join(", ")}]`).join("; ");
  notes.push(`IO signature read from the graph model: in ${sig(model.inputs)}; out ${sig(model.outputs)}`);
  notes.push(`TensorFlow.js backend ${tf.getBackend()}`);
  if (model.inputs.length !== 1) throw new Error(`graph model has ${model.inputs.length} inputs; the system feeds one`);
  const [input] = model.inputs;
  const outputNames = model.outputs.map((o) => o.name);
  const infer = async () => {
    const [t] = preprocess(spec, inputs);
    const dtype = TFJS_DTYPES[input.dtype] ?? input.dtype;
    const dims = (input.shape ?? []).length === 2 && t.shape.length === 1 ? [t.shape[0], 1] : t.shape;
    const values = dtype === "string" || t.dtype === dtype ? t.data : Array.from(t.data, Number);
    const x = tf.tensor(values, dims, dtype);
    try {
      const feed = { [input.name]: x };
      let out;
      try {
        out = model.execute(feed, outputNames); // graphs without control flow run synchronously
      } catch (e) {
        if (!/executeAsync|dynamic/.test(String(e?.message))) throw e;
        out = await model.executeAsync(feed, outputNames);
      }
      const list = Array.isArray(out) ? out : [out];
      const result = [];
      for (const [i, o] of list.entries()) {
        const data = await o.data();
        result.push({ name: outputNames[i], dtype: o.dtype, shape: o.shape, data });
        o.dispose();
      }
      return result;
    } finally {
      x.dispose();
    }
  };
  return await timed(req, infer, {
    importMs, loadMs, notes, frictions,
    versions: versions(["@tensorflow/tfjs", ...(backend === "wasm" ? ["@tensorflow/tfjs-backend-wasm"] : [])]),
    release: () => model.dispose(),
  });
}

// ---- the Python bridge -------------------------------------------------------------------------------
// One long-lived `python -m pytest_exportconf.worker` child, spoken to with the same protocol.
class Bridge {
  constructor() {
    this.child = null;
    this.pending = new Map();
    this.nextId = 0;
  }

  async start() {
    if (this.child && this.child.exitCode === null) return 0;
    const t0 = performance.now();
    const child = spawn(PYTHON, JSON.parse(process.env.EXPORTCONF_BRIDGE_ARGS ?? '["-m", "pytest_exportconf.worker"]'), { stdio: ["pipe", "pipe", "pipe"], env: process.env });
    this.child = child;
    child.stderr.on("data", (d) => process.stderr.write(d)); // the Python worker's log joins ours
    const lines = readline.createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      const p = this.pending.get(msg.id);
      if (p) {
        this.pending.delete(msg.id);
        p.resolve(msg);
      }
    });
    const failAll = (why) => {
      for (const p of this.pending.values()) p.reject(new Error(why));
      this.pending.clear();
    };
    child.on("error", (e) => failAll(`could not start ${PYTHON}: ${e.message}`));
    child.on("exit", (code, signal) => failAll(`the Python worker exited (status ${code ?? signal})`));
    await this.call({ op: "ping" });
    log(`python bridge: started ${PYTHON} -m pytest_exportconf.worker (pid ${child.pid})`);
    return performance.now() - t0;
  }

  call(msg) {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin.write(JSON.stringify({ ...msg, id }) + "\n");
    });
  }

  async run(req, target) {
    if (!target) throw new Error("python-bridge needs a target: python-bridge:<module:Class>");
    const spawnMs = await this.start();
    const repeats = Math.max(1, Number(req.repeats ?? 20));
    // The separate variant's preprocessing runs here, in JavaScript (the stack's own code); the
    // Python worker receives the vectors.
    const spec = loadPreprocessing(req.preprocessing);
    const inputs = requestTensors(req);
    let prepMs = 0;
    let forwarded = req.inputs;
    if (spec) {
      const times = [];
      let vectors = inputs;
      for (let i = 0; i < repeats; i++) {
        const t = performance.now();
        vectors = preprocess(spec, inputs);
        times.push(performance.now() - t);
      }
      prepMs = median(times);
      forwarded = encodeTensor(vectors[0]);
    }
    const t0 = performance.now();
    const resp = await this.call({ ...req, route: target, preprocessing: null, inputs: forwarded });
    const forwardMs = performance.now() - t0;
    if (!resp.ok) return resp;
    // The bridge's own cost per call: a round trip carrying the batch (ping ignores the payload).
    const times = [];
    const payload = { op: "ping", inputs: forwarded };
    for (let i = 0; i < repeats; i++) {
      const t = performance.now();
      await this.call(payload);
      times.push(performance.now() - t);
    }
    const roundTrip = median(times);
    const notes = [
      ...(resp.notes ?? []),
      `python bridge: ${PYTHON} -m pytest_exportconf.worker running ${target}; spawn ${spawnMs.toFixed(1)} ms` +
        `${spawnMs ? "" : " (already running)"}, forwarded request ${forwardMs.toFixed(1)} ms, ` +
        `round trip with the inputs ${roundTrip.toFixed(3)} ms p50` +
        (spec ? `, tf-idf in JavaScript ${prepMs.toFixed(3)} ms p50` : "") +
        `; p50_ms = Python's ${resp.p50_ms.toFixed(3)} ms + these`,
    ];
    return {
      ...resp,
      import_ms: (resp.import_ms ?? 0) + spawnMs,
      p50_ms: resp.p50_ms + roundTrip + prepMs,
      notes,
      bridge: { spawn_ms: spawnMs, forward_ms: forwardMs, round_trip_p50_ms: roundTrip, python_p50_ms: resp.p50_ms,
                preprocessing_p50_ms: prepMs },
      versions: { ...(resp.versions ?? {}), ...versions([]) },
    };
  }

  stop() {
    if (this.child && this.child.exitCode === null) {
      this.child.stdin.end(JSON.stringify({ op: "shutdown" }) + "\n");
    }
  }

  kill() {
    if (this.child && this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}

const bridge = new Bridge();
// Terminated (e.g. by the parent's timeout): take the Python worker along, whatever it is doing.
for (const [sig, code] of [["SIGTERM", 143], ["SIGINT", 130], ["SIGHUP", 129]]) {
  process.on(sig, () => {
    bridge.kill();
    process.exit(code);
  });
}

// ---- the loop ------------------------------------------------------------------------------------------
async function handle(req) {
  if (req.op === "ping") return { ok: true, pid: process.pid, versions: versions(["onnxruntime-node", "onnxruntime-web"]) };
  if (req.op !== "run") return { ok: false, error: `unknown op ${JSON.stringify(req.op)}; known: run, ping, shutdown` };
  const routeField = String(req.route ?? "");
  const cut = routeField.indexOf(":");
  const [name, target] = cut >= 0 ? [routeField.slice(0, cut), routeField.slice(cut + 1)] : [routeField, ""];
  const route = ROUTES[name];
  log(`run #${req.id ?? "?"}: ${routeField} on ${req.artifact}`);
  if (!route) return { ok: false, error: `unknown route ${JSON.stringify(name)}; known: ${Object.keys(ROUTES).join(", ")}` };
  return await route(req, target);
}

async function main() {
  log(`node ${process.version} pid ${process.pid}`);
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let req;
    try {
      req = JSON.parse(line);
    } catch (e) {
      send({ id: null, ok: false, error: `bad request line: ${e.message}` });
      continue;
    }
    if (req.op === "shutdown") break;
    let resp;
    try {
      resp = await handle(req);
    } catch (e) {
      resp = { ok: false, error: `${e?.name ?? "Error"}: ${e?.message ?? e}`, trace: String(e?.stack ?? e) };
    }
    send({ ...resp, id: req.id ?? null });
  }
  bridge.stop();
  process.exit(0);
}

main();
