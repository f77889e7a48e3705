// The models of models.json, loaded on first use inside the Node.js server runtime:
//   ONNX        onnxruntime-node
//   SavedModel  @tensorflow/tfjs, on the graph model tensorflowjs_converter made from it
//   TorchScript, Pickle, Joblib  a Python process spawned once (child_process) that loads the file
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";

import { applyPreprocessing, checkSpec, type TfidfSpec } from "./preprocessing";
import { HttpError, type Input } from "./systems";

interface Entry {
  loader: string;
  format: string;
  artifact: string;
  preprocessing: string | null;
}

type Predict = (input: Input) => Promise<number>;
interface Loaded {
  predict: Predict;
  loadMs: number;
}
interface Features {
  dtype: "float32" | "string";
  data: Float32Array | string[];
  shape: number[];
}

const modelsFile = (): string => process.env.EXPORTCONF_MODELS ?? "models.json";

function entryFor(system: string, format: string): Entry {
  const all = JSON.parse(fs.readFileSync(modelsFile(), "utf8")) as Record<string, Record<string, Entry>>;
  const entry = all[system]?.[format];
  if (!entry) {
    const known = Object.entries(all).flatMap(([s, fmts]) => Object.keys(fmts).map((f) => `${s}/${f}`));
    throw new HttpError(404, `no model for ${system}/${format}; served: ${known.join(", ") || "none"}`);
  }
  return entry;
}

function features(entry: Entry, spec: TfidfSpec | null, input: Input): Features {
  if (input.kind === "numbers") return { dtype: "float32", data: Float32Array.from(input.values), shape: [1, input.values.length] };
  if (!spec) return { dtype: "string", data: input.values, shape: [1] };
  const v = applyPreprocessing(spec, input.values);
  return { dtype: "float32", data: v.data, shape: v.shape };
}

async function onnxruntimeNode(entry: Entry, spec: TfidfSpec | null): Promise<Predict> {
  const ort = await import("onnxruntime-node");
  const session = await ort.InferenceSession.create(entry.artifact);
  const name = session.inputNames[0] ?? "x";
  const meta = session.inputMetadata[0];
  const rank = meta && meta.isTensor ? meta.shape.length : 2;
  return async (input) => {
    const x = features(entry, spec, input);
    const dims = rank === 2 && x.shape.length === 1 ? [x.shape[0] ?? 1, 1] : x.shape;
    const result = await session.run({ [name]: new ort.Tensor(x.dtype, x.data, dims) });
    const out = session.outputNames.map((n) => result[n]).find((t) => t?.type === "float32" || t?.type === "float64");
    if (!out) throw new Error("the model has no float output");
    const data = out.data as Float32Array;
    return Number(data[out.dims.at(-1) === 2 ? 1 : 0]);
  };
}

async function tfjsGraphModel(entry: Entry, spec: TfidfSpec | null): Promise<Predict> {
  const tf = await import("@tensorflow/tfjs");
  // @tensorflow/tfjs has no file system loader in Node: read model.json and its weights ourselves.
  const dir = path.dirname(entry.artifact);
  const json = JSON.parse(fs.readFileSync(entry.artifact, "utf8")) as {
    modelTopology: object;
    weightsManifest: { paths: string[]; weights: import("@tensorflow/tfjs").io.WeightsManifestEntry[] }[];
  };
  const shards: Buffer[] = [];
  const weightSpecs = json.weightsManifest.flatMap((g) => {
    for (const p of g.paths) shards.push(fs.readFileSync(path.join(dir, p)));
    return g.weights;
  });
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  const graph = await tf.loadGraphModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs, weightData }));
  const inp = graph.inputs[0];
  if (!inp) throw new Error("the graph model has no input");
  return async (input) => {
    const x = features(entry, spec, input);
    const t = x.dtype === "string"
      ? tf.tensor(x.data as string[], x.shape, "string")
      : tf.tensor(Array.from(x.data as Float32Array), x.shape, "float32");
    const out = graph.execute({ [inp.name]: t });
    const first = Array.isArray(out) ? out[0] : out;
    if (!first) throw new Error("the graph model returned nothing");
    const data = await first.data();
    tf.dispose([t, first]);
    return Number(data[first.shape.at(-1) === 2 ? 1 : 0]);
  };
}

// One Python process for the server, spawned on first use; it answers JSON lines by id.
interface Bridge {
  call: (req: Record<string, unknown>) => Promise<{ score?: number }>;
}
let bridge: Bridge | null = null;

function pythonBridge(): Bridge {
  if (bridge) return bridge;
  const python = process.env.EXPORTCONF_PYTHON ?? "python3";
  const script = process.env.EXPORTCONF_BRIDGE ?? path.join(process.cwd(), "bridge.py");
  const child = spawn(python, [script], { stdio: ["pipe", "pipe", "inherit"] });
  const pending = new Map<number, { resolve: (v: { score?: number }) => void; reject: (e: Error) => void }>();
  let next = 0;
  child.on("exit", (code, signal) => {
    for (const p of pending.values()) p.reject(new Error(`python bridge exited (${code ?? signal})`));
    pending.clear();
    bridge = null;
  });
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    const msg = JSON.parse(line) as { id: number; error?: string; score?: number };
    const p = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error) p?.reject(new Error(`python bridge: ${msg.error}`));
    else p?.resolve(msg);
  });
  const b: Bridge = {
    call: (req) =>
      new Promise((resolve, reject) => {
        const id = ++next;
        pending.set(id, { resolve, reject });
        child.stdin.write(JSON.stringify({ ...req, id }) + "\n");
      }),
  };
  bridge = b;
  return b;
}

async function viaPython(entry: Entry, spec: TfidfSpec | null): Promise<Predict> {
  const b = pythonBridge();
  await b.call({ op: "load", format: entry.format, artifact: entry.artifact });
  return async (input) => {
    const x = features(entry, spec, input);
    const rows = x.dtype === "string" ? x.data : [Array.from(x.data as Float32Array)];
    const { score } = await b.call({ op: "predict", artifact: entry.artifact, dtype: x.dtype, rows });
    return Number(score);
  };
}

const LOADERS: Record<string, (entry: Entry, spec: TfidfSpec | null) => Promise<Predict>> = {
  "onnxruntime-node": onnxruntimeNode,
  "tfjs-graph-model": tfjsGraphModel,
  "python-bridge": viaPython,
};

const models = new Map<string, Promise<Loaded>>();

export function model(system: string, format: string): Promise<Loaded> {
  const key = `${system}/${format}`;
  let loading = models.get(key);
  if (!loading) {
    const entry = entryFor(system, format);
    const loader = LOADERS[entry.loader];
    if (!loader) throw new Error(`unknown loader ${entry.loader}; known: ${Object.keys(LOADERS).join(", ")}`);
    const t0 = performance.now();
    const spec = entry.preprocessing ? checkSpec(JSON.parse(fs.readFileSync(entry.preprocessing, "utf8"))) : null;
    loading = loader(entry, spec).then((predict) => ({ predict, loadMs: performance.now() - t0 }));
    loading.catch(() => models.delete(key)); // a failed load is retried by the next request
    models.set(key, loading);
  }
  return loading;
}
