#!/usr/bin/env node
// exportconf's TypeScript harness: the same JSON-lines protocol as harness.mjs (docs/protocol.md),
// written as strict TypeScript and compiled with tsc (`tsc --strict`): the TypeScript stack.
//
//   node dist/harness.js [--python /path/to/python]
//
// Routes, by the request's `route` field:
//   onnxruntime-node              native ONNX Runtime (N-API binding)
//   onnxruntime-web               ONNX Runtime compiled to WebAssembly, run in Node
//   tfjs-graph-model              a TensorFlow.js graph model (tensorflowjs_converter output), CPU backend
//   tfjs-graph-model-wasm         the same on TensorFlow.js's WebAssembly backend
//   python-bridge:<module:Class>  a Python load worker spawned with child_process, running that route
//
// A route whose npm package ships no type definitions (and has no @types package) is recorded as
// a `missing-types` friction: the typed code had to declare the package's shape by hand; one whose
// definitions fail strict checking (skipLibCheck off) as `broken-types`.

import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

import type * as Tfjs from "@tensorflow/tfjs";
import type { InferenceSession, Tensor as OrtTensor } from "onnxruntime-node";

import { applyPreprocessing, checkSpec, type TfidfSpec } from "./preprocessing.js";

// ---- protocol types ----------------------------------------------------------------------------------
type NumericDtype = "float32" | "float64" | "int8" | "int32" | "int64" | "uint8" | "bool";
type Dtype = NumericDtype | "string";

interface WireTensor {
  name?: string | null;
  dtype: Dtype;
  shape: number[];
  data: string | string[];
}

interface Friction {
  kind: string;
  detail: string;
}

interface RunRequest {
  id?: number | null;
  op: "run";
  route: string;
  artifact: string;
  preprocessing?: string | null;
  inputs: WireTensor | WireTensor[];
  input_spec?: { name: string; dtype: string; shape: (number | null)[] };
  repeats?: number;
}

interface OtherRequest {
  id?: number | null;
  op: string;
}

type Request = RunRequest | OtherRequest;

interface Failure {
  ok: false;
  error: string;
  trace?: string;
  [extra: string]: unknown;
}

interface Success {
  ok: true;
  outputs?: WireTensor[];
  import_ms?: number;
  load_ms?: number;
  p50_ms?: number;
  notes?: string[];
  frictions?: Friction[];
  versions?: Record<string, string>;
  [extra: string]: unknown;
}

type Response = Success | Failure;

interface RunSuccess extends Success {
  outputs: WireTensor[];
  import_ms: number;
  load_ms: number;
  p50_ms: number;
  notes: string[];
  frictions: Friction[];
  versions: Record<string, string>;
}

// ---- the protocol channel ------------------------------------------------------------------------
const channelWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]): boolean =>
  process.stderr.write(chunk, ...rest)) as typeof process.stdout.write;
for (const level of ["log", "info", "debug", "warn", "trace"] as const) {
  console[level] = (...args: unknown[]): void => {
    process.stderr.write(args.map(String).join(" ") + "\n");
  };
}
const send = (obj: object): boolean => channelWrite(JSON.stringify(obj) + "\n");
const log = (msg: string): void => {
  process.stderr.write(`[exportconf-harness ts] ${msg}\n`);
};

if (os.endianness() !== "LE") throw new Error("the exportconf harness needs a little-endian host");

const HERE = path.dirname(fileURLToPath(import.meta.url));

function argValue(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const PYTHON: string = argValue("--python") ?? process.env["EXPORTCONF_PYTHON"] ?? "python3";

// ---- tensors ---------------------------------------------------------------------------------------
type NumericArray = Float32Array | Float64Array | Int8Array | Int32Array | BigInt64Array | Uint8Array;

interface HostTensor {
  name: string | null;
  dtype: Dtype;
  shape: number[];
  data: NumericArray | string[];
}

interface ArrayCtor {
  readonly BYTES_PER_ELEMENT: number;
  new (buffer: ArrayBuffer, byteOffset: number, length: number): NumericArray;
}

const ARRAYS: Record<NumericDtype, ArrayCtor> = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

function isNumeric(dtype: string): dtype is NumericDtype {
  return Object.prototype.hasOwnProperty.call(ARRAYS, dtype);
}

function decodeTensor(t: WireTensor): HostTensor {
  const shape = t.shape.map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const name = t.name ?? null;
  if (t.dtype === "string") {
    if (!Array.isArray(t.data) || t.data.length !== count) throw new Error("string tensor: data must be a list of shape's size");
    return { name, dtype: "string", shape, data: t.data.map(String) };
  }
  if (!isNumeric(t.dtype)) {
    throw new Error(`unknown tensor dtype ${JSON.stringify(t.dtype)}; supported: ${Object.keys(ARRAYS).join(", ")}, string`);
  }
  if (typeof t.data !== "string") throw new Error(`tensor ${name ?? ""}: numeric data must be base64`);
  const Ctor = ARRAYS[t.dtype];
  const bytes = new Uint8Array(Buffer.from(t.data, "base64")); // a copy at offset 0, so aligned
  if (bytes.byteLength !== count * Ctor.BYTES_PER_ELEMENT) {
    throw new Error(`tensor ${name ?? ""}: ${bytes.byteLength} bytes for ${t.dtype}${JSON.stringify(shape)}`);
  }
  return { name, dtype: t.dtype, shape, data: new Ctor(bytes.buffer, 0, count) };
}

function encodeTensor(t: HostTensor): WireTensor {
  if (Array.isArray(t.data)) return { name: t.name, dtype: "string", shape: t.shape, data: t.data.map(String) };
  const arr = t.data;
  return {
    name: t.name,
    dtype: t.dtype,
    shape: t.shape.map(Number),
    data: Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength).toString("base64"),
  };
}

function requestTensors(req: RunRequest): HostTensor[] {
  const raw = Array.isArray(req.inputs) ? req.inputs : [req.inputs];
  return raw.map(decodeTensor);
}

// ---- package facts: versions and type definitions ----------------------------------------------------
interface PackageJson {
  version?: string;
  types?: string;
  typings?: string;
  exports?: unknown;
}

function packageDir(name: string): string | null {
  for (let dir = HERE; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, "node_modules", name);
    if (fs.existsSync(path.join(candidate, "package.json"))) return candidate;
    if (path.dirname(dir) === dir) return null;
  }
}

function packageJson(name: string): PackageJson | null {
  const dir = packageDir(name);
  return dir ? (JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as PackageJson) : null;
}

function versions(packages: readonly string[]): Record<string, string> {
  const out: Record<string, string> = { node: process.version.replace(/^v/, "") };
  for (const p of packages) out[p] = packageJson(p)?.version ?? "not installed";
  return out;
}

// Where a package's type definitions come from, or null when it ships none (and no @types package).
function typeDefinitions(name: string): string | null {
  const pkg = packageJson(name);
  const dir = packageDir(name);
  if (!pkg || !dir) return null;
  if (pkg.types ?? pkg.typings) return `${name}/${pkg.types ?? pkg.typings}`;
  if (JSON.stringify(pkg.exports ?? {}).includes('"types"')) return `${name} (exports "types")`;
  if (fs.existsSync(path.join(dir, "index.d.ts"))) return `${name}/index.d.ts`;
  const scoped = name.startsWith("@") ? name.slice(1).replace("/", "__") : name;
  if (packageJson(`@types/${scoped}`)) return `@types/${scoped}`;
  return null;
}

interface TypesCheck {
  command: string;
  packages: Record<string, { errors: number; first: string }>;
}

// Written at provisioning: tsc with the packages' .d.ts files checked too (skipLibCheck off).
function typesCheck(): TypesCheck | null {
  const file = path.join(HERE, "types-check.json");
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as TypesCheck) : null;
}

// A package and everything it depends on, as installed.
function dependencyClosure(name: string, seen: Set<string> = new Set()): Set<string> {
  if (seen.has(name)) return seen;
  seen.add(name);
  const pkg = packageJson(name) as (PackageJson & { dependencies?: Record<string, string> }) | null;
  for (const dep of Object.keys(pkg?.dependencies ?? {})) dependencyClosure(dep, seen);
  return seen;
}

function typeFacts(packages: readonly string[], notes: string[], frictions: Friction[]): void {
  const check = typesCheck();
  const missing: string[] = [];
  const problems: string[] = [];
  for (const p of packages) {
    const where = typeDefinitions(p);
    if (!where) {
      missing.push(`${p} ships no type definitions and has no @types package`);
      continue;
    }
    notes.push(`types: ${p} typed by ${where}`);
    const closure = dependencyClosure(p);
    const broken = Object.entries(check?.packages ?? {}).filter(([pkg]) => closure.has(pkg));
    if (broken.length) {
      const list = broken.map(([pkg, e]) => `${pkg} (${e.errors} errors, e.g. ${e.first})`).join("; ");
      problems.push(`${p}'s type definitions do not type-check under strict settings (${check?.command}): ${list}; compiled with skipLibCheck`);
    }
  }
  if (missing.length) frictions.push({ kind: "missing-types", detail: missing.join(" | ") });
  if (problems.length) frictions.push({ kind: "broken-types", detail: problems.join(" | ") });
}

// ---- preprocessing ---------------------------------------------------------------------------------
function loadPreprocessing(file: string | null | undefined): TfidfSpec | null {
  return file ? checkSpec(JSON.parse(fs.readFileSync(file, "utf8"))) : null;
}

function preprocess(spec: TfidfSpec | null, tensors: HostTensor[]): HostTensor[] {
  if (!spec) return tensors;
  const text = tensors[0];
  if (tensors.length !== 1 || !text || !Array.isArray(text.data)) throw new Error("preprocessing needs one string input");
  const vec = applyPreprocessing(spec, text.data);
  return [{ name: null, dtype: "float32", shape: vec.shape, data: vec.data }];
}

// ---- ONNX Runtime routes -----------------------------------------------------------------------------
// onnxruntime-node and onnxruntime-web both re-export onnxruntime-common: one API type serves both.
type Ort = Pick<typeof import("onnxruntime-node"), "InferenceSession" | "Tensor" | "env">;
type Session = InferenceSession;
type CreateOptions = InferenceSession.SessionOptions;

const ORT_TYPES: ReadonlySet<string> = new Set<Dtype>(["float32", "float64", "int8", "int32", "int64", "uint8", "bool", "string"]);
const imported = new Map<string, Ort>();

async function timedImport(specifier: "onnxruntime-node" | "onnxruntime-web"): Promise<{ ort: Ort; ms: number }> {
  const cached = imported.get(specifier);
  if (cached) return { ort: cached, ms: 0 };
  const t0 = performance.now();
  const ns: Ort & { default?: Ort } =
    specifier === "onnxruntime-node" ? await import("onnxruntime-node") : await import("onnxruntime-web");
  const ort: Ort = ns.default ?? ns;
  imported.set(specifier, ort);
  return { ort, ms: performance.now() - t0 };
}

function describe(meta: readonly InferenceSession.ValueMetadata[]): string {
  return meta
    .map((m) => (m.isTensor ? `${m.name} ${m.type}[${m.shape.map(String).join(", ")}]` : `${m.name} non-tensor`))
    .join("; ");
}

function castTo(type: NumericDtype, data: NumericArray): NumericArray {
  const values = Array.from(data as ArrayLike<number | bigint>, Number);
  switch (type) {
    case "int64":
      return BigInt64Array.from(values, (v) => BigInt(Math.trunc(v)));
    case "float32":
      return Float32Array.from(values);
    case "float64":
      return Float64Array.from(values);
    case "int8":
      return Int8Array.from(values);
    case "int32":
      return Int32Array.from(values);
    case "uint8":
    case "bool":
      return Uint8Array.from(values);
  }
}

// Match the request's tensors to the session's inputs by name (or position for a single input) and
// shape them as the session asks: text arrives as [N] and skl2onnx graphs want an [N, 1] column.
function feeds(ort: Ort, session: Session, tensors: HostTensor[]): Record<string, OrtTensor> {
  const meta = session.inputMetadata;
  if (tensors.length !== meta.length) {
    throw new Error(`model has ${meta.length} inputs (${session.inputNames.join(", ")}); the request sends ${tensors.length}`);
  }
  const out: Record<string, OrtTensor> = {};
  for (const m of meta) {
    if (!m.isTensor) throw new Error(`input ${m.name} is not a tensor`);
    const t = tensors.length === 1 ? tensors[0] : tensors.find((x) => x.name === m.name);
    if (!t) throw new Error(`no tensor named ${m.name} in the request`);
    const dims = m.shape.length === 2 && t.shape.length === 1 ? [t.shape[0] ?? 0, 1] : t.shape;
    if (m.type === "string" || Array.isArray(t.data)) {
      if (m.type !== "string" || !Array.isArray(t.data)) throw new Error(`input ${m.name} wants ${m.type}, got ${t.dtype}`);
      out[m.name] = new ort.Tensor("string", t.data, dims);
      continue;
    }
    if (!isNumeric(m.type)) throw new Error(`input ${m.name} has type ${m.type}, which the protocol does not carry`);
    const data = m.type === t.dtype ? t.data : castTo(m.type, t.data);
    out[m.name] = new ort.Tensor(m.type, data as OrtTensor.DataTypeMap[typeof m.type], dims);
  }
  return out;
}

function outputsOf(session: Session, result: InferenceSession.OnnxValueMapType): HostTensor[] {
  return session.outputNames.map((name) => {
    const t = result[name];
    if (!t) throw new Error(`output ${name} missing from the result`);
    if (!ORT_TYPES.has(t.type)) throw new Error(`output ${name} has type ${t.type}, which the protocol does not carry`);
    const data = t.data;
    if (Array.isArray(data)) return { name, dtype: "string", shape: t.dims.map(Number), data: data.map(String) };
    return { name, dtype: t.type as Dtype, shape: t.dims.map(Number), data: data as NumericArray };
  });
}

interface SessionRouteSpec {
  specifier: "onnxruntime-node" | "onnxruntime-web";
  create: (ort: Ort, artifact: string, notes: string[], frictions: Friction[]) => Promise<Session>;
}

async function sessionRoute(req: RunRequest, spec: SessionRouteSpec): Promise<RunSuccess> {
  const notes: string[] = [];
  const frictions: Friction[] = [];
  typeFacts([spec.specifier], notes, frictions);
  notes.push("types: onnxruntime-common's definitions name DOM types (WebGLTexture, ImageData): tsconfig needs lib \"dom\" in a Node project");
  const { ort, ms: importMs } = await timedImport(spec.specifier);
  const inputs = requestTensors(req);
  const t0 = performance.now();
  const session = await spec.create(ort, req.artifact, notes, frictions);
  const prep = loadPreprocessing(req.preprocessing);
  const loadMs = performance.now() - t0;
  notes.push(
    `IO signature read from the session (inputNames/inputMetadata): in ${describe(session.inputMetadata)}; out ${describe(session.outputMetadata)}`,
  );
  const infer = async (): Promise<HostTensor[]> =>
    outputsOf(session, await session.run(feeds(ort, session, preprocess(prep, inputs))));
  try {
    return await timedResponse(req, infer, { importMs, loadMs, notes, frictions, versions: versions([spec.specifier]) });
  } finally {
    await session.release();
  }
}

// One warm-up call (kept out of the latency figure), then `repeats` timed calls: the route's answer.
async function timedResponse(
  req: RunRequest,
  infer: () => Promise<HostTensor[]>,
  facts: { importMs: number; loadMs: number; notes: string[]; frictions: Friction[]; versions: Record<string, string> },
): Promise<RunSuccess> {
  const outputs = await infer();
  const times: number[] = [];
  for (let i = 0; i < repeatsOf(req); i++) {
    const t = performance.now();
    await infer();
    times.push(performance.now() - t);
  }
  return {
    ok: true,
    outputs: outputs.map(encodeTensor),
    import_ms: facts.importMs,
    load_ms: facts.loadMs,
    p50_ms: median(times),
    notes: facts.notes,
    frictions: facts.frictions,
    versions: facts.versions,
  };
}

function repeatsOf(req: RunRequest): number {
  return Math.max(1, Number(req.repeats ?? 20));
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface ExternalFile {
  path: string;
  file: string;
}

// Files next to the model that hold its external data (ONNX `location` is relative to the model).
function externalDataFiles(artifact: string): ExternalFile[] {
  const dir = path.dirname(artifact);
  return fs
    .readdirSync(dir)
    .filter((f) => f !== path.basename(artifact) && (f.endsWith(".data") || f.endsWith(".bin")))
    .map((f) => ({ path: f, file: path.join(dir, f) }));
}

type RouteFn = (req: RunRequest, target: string) => Promise<Response>;

const ROUTES: Record<string, RouteFn> = {
  "onnxruntime-node": (req) =>
    sessionRoute(req, {
      specifier: "onnxruntime-node",
      create: async (ort, artifact, notes) => {
        const ext = externalDataFiles(artifact);
        if (ext.length) notes.push(`external data ${ext.map((e) => e.path).join(", ")} read by the runtime from the model's directory`);
        const options: CreateOptions = { executionProviders: ["cpu"], logSeverityLevel: 3 };
        return ort.InferenceSession.create(artifact, options);
      },
    }),
  "onnxruntime-web": (req) =>
    sessionRoute(req, {
      specifier: "onnxruntime-web",
      create: async (ort, artifact, notes, frictions) => {
        ort.env.wasm.numThreads = 1;
        ort.env.logLevel = "error";
        const ext = externalDataFiles(artifact);
        const options: CreateOptions = { executionProviders: ["wasm"], logSeverityLevel: 3 };
        if (ext.length) {
          options.externalData = ext.map((e) => ({ path: e.path, data: new Uint8Array(fs.readFileSync(e.file)) }));
          frictions.push({
            kind: "external-data-file",
            detail: `onnxruntime-web cannot open ${ext.map((e) => e.path).join(", ")} itself: read by the harness and passed via the externalData option`,
          });
        }
        notes.push(`WebAssembly backend, ${ort.env.wasm.numThreads ?? 1} thread(s)`);
        return ort.InferenceSession.create(new Uint8Array(fs.readFileSync(artifact)), options);
      },
    }),
  "tfjs-graph-model": (req) => tfjsRoute(req, "cpu"),
  "tfjs-graph-model-wasm": (req) => tfjsRoute(req, "wasm"),
  "python-bridge": (req, target) => bridge.run(req, target),
};

// ---- TensorFlow.js routes (a graph model converted by tensorflowjs_converter) ---------------------------
// Node imports the CommonJS build: the API is the namespace's `default`.
type Tf = (typeof Tfjs)["default"];
type TfDtype = "float32" | "int32" | "bool" | "string";
let tfBackend: string | null = null;
let tfModule: { tf: Tf; ms: number } | null = null;

async function importTf(): Promise<{ tf: Tf; ms: number }> {
  if (tfModule) return { tf: tfModule.tf, ms: 0 };
  const t0 = performance.now();
  const ns = await import("@tensorflow/tfjs"); // CommonJS: Node hands the exports over as `default`
  const tf: Tf = ns.default;
  const loaded = { tf, ms: performance.now() - t0 };
  tfModule = loaded;
  return loaded;
}

async function tfjsBackend(tf: Tf, backend: "cpu" | "wasm"): Promise<number> {
  let ms = 0;
  if (backend === "wasm" && tfBackend !== "wasm") {
    const t0 = performance.now();
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    // In Node the WASM binaries are read from the package's own dist directory.
    const dir = packageDir("@tensorflow/tfjs-backend-wasm");
    if (!dir) throw new Error("@tensorflow/tfjs-backend-wasm is not installed");
    wasm.setWasmPaths(path.join(dir, "dist") + path.sep);
    ms += performance.now() - t0;
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

interface GraphTensorInfo {
  name: string;
  shape?: number[];
  dtype?: string;
}

interface GraphModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology: object;
  weightsManifest?: { paths: string[]; weights: Tfjs.io.WeightsManifestEntry[] }[];
  signature?: object;
  userDefinedMetadata?: Record<string, object>;
  modelInitializer?: object;
}

// Read model.json and its weight shards (which must stay inside the model's directory).
function graphModelArtifacts(artifact: string): Tfjs.io.ModelArtifacts {
  const dir = path.dirname(artifact);
  const json = JSON.parse(fs.readFileSync(artifact, "utf8")) as GraphModelJson;
  const weightSpecs: Tfjs.io.WeightsManifestEntry[] = [];
  const shards: Buffer[] = [];
  for (const group of json.weightsManifest ?? []) {
    for (const p of group.paths) {
      const file = path.resolve(dir, p);
      if (path.relative(dir, file).startsWith("..")) throw new Error(`weight path ${p} escapes the model directory`);
      shards.push(fs.readFileSync(file));
    }
    weightSpecs.push(...group.weights);
  }
  const all = Buffer.concat(shards);
  const weightData = new Uint8Array(all).buffer; // a copy: an ArrayBuffer of exactly the weights
  const { weightsManifest: _manifest, ...rest } = json;
  return { ...rest, weightSpecs, weightData } as Tfjs.io.ModelArtifacts;
}

interface ConversionFacts {
  frictions?: Friction[];
}

// Frictions the conversion step recorded next to the converted model (e.g. its own toolchain).
function conversionFacts(artifact: string): ConversionFacts {
  const file = path.join(path.dirname(artifact), "exportconf-conversion.json");
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as ConversionFacts) : {};
}

function isTfDtype(d: string | undefined): d is TfDtype {
  return d === "float32" || d === "int32" || d === "bool" || d === "string";
}

async function tfjsRoute(req: RunRequest, backend: "cpu" | "wasm"): Promise<RunSuccess> {
  const notes: string[] = [];
  const frictions: Friction[] = [...(conversionFacts(req.artifact).frictions ?? [])];
  const packages = ["@tensorflow/tfjs", ...(backend === "wasm" ? ["@tensorflow/tfjs-backend-wasm"] : [])];
  typeFacts(packages, notes, frictions);
  const { tf, ms: tfMs } = await importTf();
  const importMs = tfMs + (await tfjsBackend(tf, backend));
  const inputs = requestTensors(req);
  const t0 = performance.now();
  const model = await tf.loadGraphModel(tf.io.fromMemory(graphModelArtifacts(req.artifact)));
  const prep = loadPreprocessing(req.preprocessing);
  const loadMs = performance.now() - t0;
  const sig = (xs: readonly GraphTensorInfo[]): string =>
    xs.map((x) => `${x.name} ${x.dtype ?? "?"}[${(x.shape ?? []).join(", ")}]`).join("; ");
  notes.push(`IO signature read from the graph model: in ${sig(model.inputs)}; out ${sig(model.outputs)}`);
  notes.push(`TensorFlow.js backend ${tf.getBackend()}`);
  const input = model.inputs[0];
  if (!input || model.inputs.length !== 1) throw new Error(`graph model has ${model.inputs.length} inputs; the system feeds one`);
  const outputNames = model.outputs.map((o) => o.name);
  const dtype: TfDtype = isTfDtype(input.dtype) ? input.dtype : "float32";
  const infer = async (): Promise<HostTensor[]> => {
    const [t] = preprocess(prep, inputs);
    if (!t) throw new Error("no input tensor");
    const dims = (input.shape ?? []).length === 2 && t.shape.length === 1 ? [t.shape[0] ?? 0, 1] : t.shape;
    const x = Array.isArray(t.data)
      ? tf.tensor(t.data, dims, "string")
      : tf.tensor(t.dtype === dtype ? (t.data as Float32Array | Int32Array | Uint8Array) : Array.from(t.data as ArrayLike<number | bigint>, Number), dims, dtype);
    try {
      const feed: Tfjs.NamedTensorMap = { [input.name]: x };
      let out: Tfjs.Tensor | Tfjs.Tensor[];
      try {
        out = model.execute(feed, outputNames); // graphs without control flow run synchronously
      } catch (e) {
        if (!/executeAsync|dynamic/.test(e instanceof Error ? e.message : String(e))) throw e;
        out = await model.executeAsync(feed, outputNames);
      }
      const list = Array.isArray(out) ? out : [out];
      const result: HostTensor[] = [];
      for (const [i, o] of list.entries()) {
        const data = await o.data();
        const name = outputNames[i] ?? null;
        const shape = o.shape.map(Number);
        if (o.dtype === "string") result.push({ name, dtype: "string", shape, data: Array.from(data as ArrayLike<unknown>, String) });
        else if (o.dtype === "float32" || o.dtype === "int32" || o.dtype === "bool") {
          const typed = data as Float32Array | Int32Array | Uint8Array;
          result.push({ name, dtype: o.dtype === "bool" ? "bool" : o.dtype, shape, data: typed });
        } else throw new Error(`output ${name ?? i} has dtype ${o.dtype}, which the protocol does not carry`);
        o.dispose();
      }
      return result;
    } finally {
      x.dispose();
    }
  };
  try {
    return await timedResponse(req, infer, { importMs, loadMs, notes, frictions, versions: versions(packages) });
  } finally {
    model.dispose();
  }
}

// ---- the Python bridge -------------------------------------------------------------------------------
interface Pending {
  resolve: (r: Response) => void;
  reject: (e: Error) => void;
}

class Bridge {
  private child: ChildProcessWithoutNullStreams | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  private async start(): Promise<number> {
    if (this.child && this.child.exitCode === null) return 0;
    const t0 = performance.now();
    const child = spawn(PYTHON, JSON.parse(process.env["EXPORTCONF_BRIDGE_ARGS"] ?? '["-m", "pytest_exportconf.worker"]') as string[], { stdio: ["pipe", "pipe", "pipe"], env: process.env });
    this.child = child;
    child.stderr.on("data", (d: Buffer) => process.stderr.write(d)); // the Python worker's log joins ours
    const lines = readline.createInterface({ input: child.stdout });
    lines.on("line", (line: string) => {
      let msg: Response & { id?: number };
      try {
        msg = JSON.parse(line) as Response & { id?: number };
      } catch {
        return;
      }
      const p = msg.id === undefined ? undefined : this.pending.get(msg.id);
      if (p && msg.id !== undefined) {
        this.pending.delete(msg.id);
        p.resolve(msg);
      }
    });
    const failAll = (why: string): void => {
      for (const p of this.pending.values()) p.reject(new Error(why));
      this.pending.clear();
    };
    child.on("error", (e: Error) => failAll(`could not start ${PYTHON}: ${e.message}`));
    child.on("exit", (code: number | null, signal: NodeJS.Signals | null) =>
      failAll(`the Python worker exited (status ${code ?? signal})`),
    );
    await this.call({ op: "ping" });
    log(`python bridge: started ${PYTHON} -m pytest_exportconf.worker (pid ${child.pid})`);
    return performance.now() - t0;
  }

  private call(msg: object): Promise<Response> {
    const child = this.child;
    if (!child) return Promise.reject(new Error("the Python worker is not running"));
    const id = ++this.nextId;
    return new Promise<Response>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      child.stdin.write(JSON.stringify({ ...msg, id }) + "\n");
    });
  }

  async run(req: RunRequest, target: string): Promise<Response> {
    if (!target) throw new Error("python-bridge needs a target: python-bridge:<module:Class>");
    const spawnMs = await this.start();
    const repeats = repeatsOf(req);
    // The separate variant's preprocessing runs here, in TypeScript; the Python worker gets vectors.
    const spec = loadPreprocessing(req.preprocessing);
    let forwarded: WireTensor | WireTensor[] = req.inputs;
    let prepMs = 0;
    if (spec) {
      const inputs = requestTensors(req);
      const times: number[] = [];
      let vectors = inputs;
      for (let i = 0; i < repeats; i++) {
        const t = performance.now();
        vectors = preprocess(spec, inputs);
        times.push(performance.now() - t);
      }
      prepMs = median(times);
      const [vector] = vectors;
      if (!vector) throw new Error("preprocessing produced no tensor");
      forwarded = encodeTensor(vector); // the Python worker takes one tensor
    }
    const t0 = performance.now();
    const resp = await this.call({ ...req, route: target, preprocessing: null, inputs: forwarded });
    const forwardMs = performance.now() - t0;
    if (!resp.ok) return resp;
    // The bridge's own cost per call: a round trip carrying the batch (ping ignores the payload).
    const times: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const t = performance.now();
      await this.call({ op: "ping", inputs: forwarded });
      times.push(performance.now() - t);
    }
    const roundTrip = median(times);
    const pythonP50 = resp.p50_ms ?? 0;
    const notes = [
      ...(resp.notes ?? []),
      `python bridge: ${PYTHON} -m pytest_exportconf.worker running ${target}; spawn ${spawnMs.toFixed(1)} ms` +
        `${spawnMs ? "" : " (already running)"}, forwarded request ${forwardMs.toFixed(1)} ms, ` +
        `round trip with the inputs ${roundTrip.toFixed(3)} ms p50` +
        (spec ? `, tf-idf in TypeScript ${prepMs.toFixed(3)} ms p50` : "") +
        `; p50_ms = Python's ${pythonP50.toFixed(3)} ms + these`,
    ];
    return {
      ...resp,
      import_ms: (resp.import_ms ?? 0) + spawnMs,
      p50_ms: pythonP50 + roundTrip + prepMs,
      notes,
      bridge: {
        spawn_ms: spawnMs,
        forward_ms: forwardMs,
        round_trip_p50_ms: roundTrip,
        python_p50_ms: pythonP50,
        preprocessing_p50_ms: prepMs,
      },
      versions: { ...(resp.versions ?? {}), ...versions([]) },
    };
  }

  stop(): void {
    if (this.child && this.child.exitCode === null) this.child.stdin.end(JSON.stringify({ op: "shutdown" }) + "\n");
  }

  kill(): void {
    if (this.child && this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}

const bridge = new Bridge();
// Terminated (e.g. by the parent's timeout): take the Python worker along, whatever it is doing.
for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
  process.on(sig, () => {
    bridge.kill();
    process.exit(128 + (sig === "SIGTERM" ? 15 : sig === "SIGINT" ? 2 : 1));
  });
}

// ---- the loop ------------------------------------------------------------------------------------------
function isRun(req: Request): req is RunRequest {
  return req.op === "run";
}

async function handle(req: Request): Promise<Response> {
  if (req.op === "ping") return { ok: true, pid: process.pid, versions: versions(["onnxruntime-node", "onnxruntime-web"]) };
  if (!isRun(req)) return { ok: false, error: `unknown op ${JSON.stringify(req.op)}; known: run, ping, shutdown` };
  const routeField = String(req.route ?? "");
  const cut = routeField.indexOf(":");
  const name = cut >= 0 ? routeField.slice(0, cut) : routeField;
  const target = cut >= 0 ? routeField.slice(cut + 1) : "";
  const route = ROUTES[name];
  log(`run #${req.id ?? "?"}: ${routeField} on ${req.artifact}`);
  if (!route) return { ok: false, error: `unknown route ${JSON.stringify(name)}; known: ${Object.keys(ROUTES).join(", ")}` };
  return await route(req, target);
}

async function main(): Promise<void> {
  log(`node ${process.version} pid ${process.pid}`);
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let req: Request;
    try {
      req = JSON.parse(line) as Request;
    } catch (e) {
      send({ id: null, ok: false, error: `bad request line: ${(e as Error).message}` });
      continue;
    }
    if (req.op === "shutdown") break;
    let resp: Response;
    try {
      resp = await handle(req);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      resp = { ok: false, error: `${err.name}: ${err.message}`, trace: String(err.stack ?? err) };
    }
    send({ ...resp, id: req.id ?? null });
  }
  bridge.stop();
  process.exit(0);
}

void main();
