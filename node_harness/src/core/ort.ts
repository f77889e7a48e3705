// The ONNX Runtime routes: onnxruntime-node (N-API, CPU) and onnxruntime-web (WebAssembly, in Node).
// Both packages re-export onnxruntime-common: one API type and one session handling serve both.

import fs from "node:fs";
import path from "node:path";

import type { InferenceSession, Tensor as OrtTensor } from "onnxruntime-node";

import { coerce, coercions, describeInputs, match, settleCoercion, type ModelInput } from "./feeds.js";
import { loadPreprocessing, preprocess } from "./preprocessing.js";
import type { Facts, Friction, RunRequest, RunSuccess } from "./protocol.js";
import { versions } from "./packages.js";
import type { Stack } from "./stack.js";
import { isDtype, isNumeric, requestTensors, type HostTensor, type NumericArray } from "./tensors.js";
import { timedImport, timedResponse } from "./timing.js";

type Ort = Pick<typeof import("onnxruntime-node"), "InferenceSession" | "Tensor" | "env">;
type Specifier = "onnxruntime-node" | "onnxruntime-web";
type TensorCtor = new (type: string, data: NumericArray | string[], dims: readonly number[]) => OrtTensor;

async function importOrt(specifier: Specifier): Promise<{ mod: Ort; ms: number }> {
  return timedImport(specifier, async () => {
    const ns: Ort & { default?: Ort } =
      specifier === "onnxruntime-node" ? await import("onnxruntime-node") : await import("onnxruntime-web");
    return ns.default ?? ns;
  });
}

function modelInputs(session: InferenceSession): ModelInput[] {
  return session.inputMetadata.map((m) => {
    if (!m.isTensor) throw new Error(`input ${m.name} is not a tensor`);
    return { name: m.name, dtype: m.type, shape: m.shape };
  });
}

function outputMetadata(session: InferenceSession): string {
  return session.outputMetadata
    .map((m) => (m.isTensor ? describeInputs([{ name: m.name, dtype: m.type, shape: m.shape }]) : `${m.name} non-tensor`))
    .join("; ");
}

function feeds(ort: Ort, inputs: readonly ModelInput[], tensors: HostTensor[], coerced: boolean): Record<string, OrtTensor> {
  const Tensor = ort.Tensor as unknown as TensorCtor;
  const out: Record<string, OrtTensor> = {};
  for (const pair of match(inputs, tensors)) {
    const t = coerced ? coerce(pair, isNumeric) : pair.tensor;
    out[pair.input.name] = new Tensor(t.dtype, t.data, t.shape);
  }
  return out;
}

function outputsOf(session: InferenceSession, result: InferenceSession.OnnxValueMapType): HostTensor[] {
  return session.outputNames.map((name) => {
    const t = result[name];
    if (!t) throw new Error(`output ${name} missing from the result`);
    if (!isDtype(t.type)) throw new Error(`output ${name} has type ${t.type}, which the protocol does not carry`);
    const data = t.data;
    if (Array.isArray(data)) return { name, dtype: "string", shape: t.dims.map(Number), data: data.map(String) };
    return { name, dtype: t.type, shape: t.dims.map(Number), data: data as NumericArray };
  });
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

type Create = (ort: Ort, artifact: string, facts: Facts) => Promise<InferenceSession>;

const CREATE: Record<Specifier, Create> = {
  "onnxruntime-node": async (ort, artifact, facts) => {
    const ext = externalDataFiles(artifact);
    if (ext.length) facts.notes.push(`external data ${ext.map((e) => e.path).join(", ")} read by the runtime from the model's directory`);
    const options: InferenceSession.SessionOptions = { executionProviders: ["cpu"], logSeverityLevel: 3 };
    return ort.InferenceSession.create(artifact, options);
  },
  "onnxruntime-web": async (ort, artifact, facts) => {
    ort.env.wasm.numThreads = 1;
    ort.env.logLevel = "error";
    const ext = externalDataFiles(artifact);
    const options: InferenceSession.SessionOptions = { executionProviders: ["wasm"], logSeverityLevel: 3 };
    if (ext.length) {
      const names = ext.map((e) => e.path).join(", ");
      options.externalData = ext.map((e) => ({ path: e.path, data: new Uint8Array(fs.readFileSync(e.file)) }));
      const friction: Friction = {
        kind: "external-data-file",
        detail: `onnxruntime-web cannot open ${names} itself: read by the harness and passed via the externalData option`,
        source: "observed",
        evidence: `files beside ${path.basename(artifact)}: ${names}`,
      };
      facts.frictions.push(friction);
    }
    facts.notes.push(`WebAssembly backend, ${ort.env.wasm.numThreads ?? 1} thread(s)`);
    return ort.InferenceSession.create(new Uint8Array(fs.readFileSync(artifact)), options);
  },
};

export async function ortRoute(req: RunRequest, specifier: Specifier, stack: Stack): Promise<RunSuccess> {
  const facts: Facts = { notes: [], frictions: [] };
  stack.typeFacts([specifier], facts);
  const { mod: ort, ms: importMs } = await importOrt(specifier);
  const inputs = requestTensors(req);
  const t0 = performance.now();
  const session = await CREATE[specifier](ort, req.artifact, facts);
  const prep = loadPreprocessing(req.preprocessing);
  const loadMs = performance.now() - t0;
  const declared = modelInputs(session);
  facts.notes.push(
    `IO signature read from the session (inputNames/inputMetadata): in ${describeInputs(declared)}; out ${outputMetadata(session)}`,
  );
  try {
    const run = async (coerced: boolean): Promise<HostTensor[]> =>
      outputsOf(session, await session.run(feeds(ort, declared, preprocess(prep, inputs), coerced)));
    const changes = match(declared, preprocess(prep, inputs), facts).flatMap((p) => coercions(p, isNumeric));
    const coerced = await settleCoercion(changes, run, facts);
    return await timedResponse(req, () => run(coerced), { importMs, loadMs, ...facts, versions: versions([specifier]) });
  } finally {
    await session.release();
  }
}
