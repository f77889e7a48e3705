// The TensorFlow.js routes: a graph model converted by tensorflowjs_converter, loaded from memory with
// @tensorflow/tfjs (pure JS, CPU backend) or on @tensorflow/tfjs-backend-wasm.

import fs from "node:fs";
import path from "node:path";

import type * as Tfjs from "@tensorflow/tfjs";

import { coerce, coercions, describeInputs, match, settleCoercion, type ModelInput } from "./feeds.js";
import { packageDir, versions } from "./packages.js";
import { loadPreprocessing, preprocess } from "./preprocessing.js";
import type { Facts, Friction, RunRequest, RunSuccess } from "./protocol.js";
import type { Stack } from "./stack.js";
import { requestTensors, type HostTensor } from "./tensors.js";
import { timedImport, timedResponse } from "./timing.js";

// Node imports the CommonJS build: the API is the namespace's `default`.
type Tf = (typeof Tfjs)["default"];
type TfDtype = "float32" | "int32" | "bool" | "string";
type Backend = "cpu" | "wasm";
let tfBackend: string | null = null;

const isTfDtype = (d: string): d is TfDtype => d === "float32" || d === "int32" || d === "bool" || d === "string";

async function tfjsBackend(tf: Tf, backend: Backend): Promise<number> {
  let ms = 0;
  if (backend === "wasm" && tfBackend !== "wasm") {
    const wasm = await timedImport("@tensorflow/tfjs-backend-wasm", () => import("@tensorflow/tfjs-backend-wasm"));
    // In Node the WASM binaries are read from the package's own dist directory.
    const dir = packageDir("@tensorflow/tfjs-backend-wasm");
    if (!dir) throw new Error("@tensorflow/tfjs-backend-wasm is not installed");
    wasm.mod.setWasmPaths(path.join(dir, "dist") + path.sep);
    ms += wasm.ms;
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

interface GraphModelJson {
  modelTopology: object;
  weightsManifest?: { paths: string[]; weights: Tfjs.io.WeightsManifestEntry[] }[];
  [key: string]: unknown;
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
  const weightData = new Uint8Array(Buffer.concat(shards)).buffer; // a copy: exactly the weights
  const { weightsManifest: _manifest, ...rest } = json;
  return { ...rest, weightSpecs, weightData } as Tfjs.io.ModelArtifacts;
}

// Frictions the conversion step recorded next to the converted model (e.g. its own toolchain).
function conversionFacts(artifact: string): Friction[] {
  const file = path.join(path.dirname(artifact), "exportconf-conversion.json");
  if (!fs.existsSync(file)) return [];
  return (JSON.parse(fs.readFileSync(file, "utf8")) as { frictions?: Friction[] }).frictions ?? [];
}

function tfTensor(tf: Tf, t: HostTensor): Tfjs.Tensor {
  if (Array.isArray(t.data)) return tf.tensor(t.data, t.shape, "string");
  if (!isTfDtype(t.dtype)) throw new Error(`TensorFlow.js has no ${t.dtype} tensors (float32, int32, bool, string)`);
  return tf.tensor(t.data as Float32Array | Int32Array | Uint8Array, t.shape, t.dtype);
}

async function hostTensor(o: Tfjs.Tensor, name: string | null): Promise<HostTensor> {
  const data = await o.data();
  const shape = o.shape.map(Number);
  if (o.dtype === "string") return { name, dtype: "string", shape, data: Array.from(data as ArrayLike<unknown>, String) };
  if (o.dtype === "float32" || o.dtype === "int32" || o.dtype === "bool") {
    return { name, dtype: o.dtype, shape, data: data as Float32Array | Int32Array | Uint8Array };
  }
  throw new Error(`output ${name ?? "?"} has dtype ${o.dtype}, which the protocol does not carry`);
}

export async function tfjsRoute(req: RunRequest, backend: Backend, stack: Stack): Promise<RunSuccess> {
  const facts: Facts = { notes: [], frictions: [...conversionFacts(req.artifact)] };
  const packages = ["@tensorflow/tfjs", ...(backend === "wasm" ? ["@tensorflow/tfjs-backend-wasm"] : [])];
  stack.typeFacts(packages, facts);
  const imported = await timedImport("@tensorflow/tfjs", async () => (await import("@tensorflow/tfjs")).default);
  const tf: Tf = imported.mod;
  const importMs = imported.ms + (await tfjsBackend(tf, backend));
  const inputs = requestTensors(req);
  const t0 = performance.now();
  const model = await tf.loadGraphModel(tf.io.fromMemory(graphModelArtifacts(req.artifact)));
  const prep = loadPreprocessing(req.preprocessing);
  const loadMs = performance.now() - t0;
  const declared: ModelInput[] = model.inputs.map((x) => ({ name: x.name, dtype: x.dtype, shape: x.shape }));
  const outs: ModelInput[] = model.outputs.map((x) => ({ name: x.name, dtype: x.dtype, shape: x.shape }));
  facts.notes.push(`IO signature read from the graph model: in ${describeInputs(declared)}; out ${describeInputs(outs)}`);
  facts.notes.push(`TensorFlow.js backend ${tf.getBackend()}`);
  const outputNames = outs.map((o) => o.name);
  const run = async (coerced: boolean): Promise<HostTensor[]> => {
    const feed: Tfjs.NamedTensorMap = {};
    try {
      for (const pair of match(declared, preprocess(prep, inputs))) {
        feed[pair.input.name] = tfTensor(tf, coerced ? coerce(pair, isTfDtype) : pair.tensor);
      }
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
        result.push(await hostTensor(o, outputNames[i] ?? null));
        o.dispose();
      }
      return result;
    } finally {
      for (const x of Object.values(feed)) x.dispose();
    }
  };
  try {
    const changes = match(declared, preprocess(prep, inputs), facts).flatMap((p) => coercions(p, isTfDtype));
    const coerced = await settleCoercion(changes, run, facts);
    return await timedResponse(req, () => run(coerced), { importMs, loadMs, ...facts, versions: versions(packages) });
  } finally {
    model.dispose();
  }
}
