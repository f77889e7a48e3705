#!/usr/bin/env node
// exportconf's JavaScript system: the number predictor and the sentiment tool in a plain node:http
// server (no framework), each model integrated the way a Node developer would:
//   ONNX        onnxruntime-node  InferenceSession on the .onnx file
//   SavedModel  @tensorflow/tfjs   the graph model tensorflowjs_converter made from it (pure JS, CPU)
//   TorchScript, Pickle, Joblib    a Python process spawned once (child_process) that loads the file
//
// Environment: HOST, PORT, EXPORTCONF_MODELS (models.json: system -> format -> {loader, artifact,
// preprocessing}; re-read when a model not yet known is asked for), EXPORTCONF_PYTHON and
// EXPORTCONF_BRIDGE (the Python interpreter and bridge.py the Python loaders run in).
// Models load on their first request; GET /healthz answers as soon as the server listens.

import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import readline from "node:readline";

import { applyPreprocessing } from "./preprocessing.mjs";
import { genericPage, index, page } from "./pages.mjs";

const HOST = process.env.HOST ?? "127.0.0.1";
const PORT = Number(process.env.PORT ?? 3000);
const MODELS = process.env.EXPORTCONF_MODELS ?? "models.json";
const MAX_BODY = 1 << 20;
const MAX_REVIEW = 10000;
const SYSTEMS = {
  number_predictor: { parse: parseNumbers, answer: (score) => ({ prediction: score }) },
  sentiment: {
    parse: parseReview,
    answer: (score) => ({ label: score >= 0.5 ? "positive" : "negative", probability: score }),
  },
};

// Any other system of models.json: {"features": [k numbers]} or {"text": "..."}, answered with {"score"}.
function genericSystem(entry) {
  const spec = entry.input ?? {};
  if (spec.kind === "text") {
    return { parse: (body) => parseReview("text" in body ? { review: body.text } : {}), answer: (s) => ({ score: s }) };
  }
  const count = Number(spec.count);
  const parse = (body) => {
    if (!("features" in body)) throw new HttpError(400, `missing field 'features' (a list of ${count} numbers)`);
    const xs = body.features;
    if (!Array.isArray(xs) || xs.length !== count) {
      throw new HttpError(400, `'features' must be a list of ${count} numbers, got ${Array.isArray(xs) ? `${xs.length} values` : typeof xs}`);
    }
    xs.forEach((v, i) => {
      if (typeof v !== "number" || !Number.isFinite(v)) throw new HttpError(400, `'features'[${i}] is not a finite number: ${JSON.stringify(v)}`);
    });
    return { kind: "numbers", values: xs };
  };
  return { parse, answer: (s) => ({ score: s }) };
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// ---- input validation --------------------------------------------------------------------------------
function parseNumbers(body) {
  if (!("numbers" in body)) throw new HttpError(400, "missing field 'numbers' (a list of 3 numbers)");
  const xs = body.numbers;
  if (!Array.isArray(xs) || xs.length !== 3) {
    throw new HttpError(400, `'numbers' must be a list of 3 numbers, got ${Array.isArray(xs) ? `${xs.length} values` : typeof xs}`);
  }
  xs.forEach((v, i) => {
    if (typeof v !== "number" || !Number.isFinite(v)) throw new HttpError(400, `'numbers'[${i}] is not a finite number: ${JSON.stringify(v)}`);
  });
  return { kind: "numbers", values: xs };
}

function parseReview(body) {
  if (!("review" in body)) throw new HttpError(400, "missing field 'review' (the text of a movie review)");
  const text = body.review;
  if (typeof text !== "string") throw new HttpError(400, `'review' must be a string, got ${typeof text}`);
  if (!text.trim()) throw new HttpError(400, "'review' is empty");
  if (text.length > MAX_REVIEW) throw new HttpError(413, `'review' has ${text.length} characters; at most ${MAX_REVIEW}`);
  return { kind: "text", values: [text] };
}

// ---- models ------------------------------------------------------------------------------------------
const models = new Map(); // "system/format" -> Promise<predict(input) -> score>

function modelEntry(system, format) {
  const all = JSON.parse(fs.readFileSync(MODELS, "utf8"));
  const entry = all[system]?.[format];
  if (!entry) {
    const known = Object.entries(all).flatMap(([s, fs_]) => Object.keys(fs_).map((f) => `${s}/${f}`));
    throw new HttpError(404, `no model for ${system}/${format}; served: ${known.join(", ") || "none"}`);
  }
  return entry;
}

function model(system, format) {
  const key = `${system}/${format}`;
  if (!models.has(key)) {
    const entry = modelEntry(system, format); // throws 404 before anything is cached
    const loader = LOADERS[entry.loader];
    if (!loader) throw new HttpError(500, `unknown loader ${entry.loader}; known: ${Object.keys(LOADERS).join(", ")}`);
    const t0 = performance.now();
    const loading = loader(entry).then((predict) => ({ predict, loadMs: performance.now() - t0 }));
    loading.catch(() => models.delete(key)); // a failed load is retried by the next request
    models.set(key, loading);
  }
  return models.get(key);
}

// Text becomes the tf-idf vector of preprocessing.json when the model was exported without it.
function features(entry, input) {
  if (input.kind === "numbers") return { dtype: "float32", data: Float32Array.from(input.values), shape: [1, input.values.length] };
  if (!entry.preprocessing) return { dtype: "string", data: input.values, shape: [1] };
  entry.spec ??= JSON.parse(fs.readFileSync(entry.preprocessing, "utf8"));
  const v = applyPreprocessing(entry.spec, input.values);
  return { dtype: "float32", data: v.data, shape: v.shape };
}

// The model's score for the single row: the first float output; a [1, 2] classifier output is [P(neg), P(pos)].
function score(outputs) {
  const out = outputs.find((o) => o.type === "float32" || o.type === "float64");
  if (!out) throw new Error(`no float output among ${outputs.map((o) => o.type).join(", ")}`);
  const last = out.dims.at(-1);
  return Number(out.data[last === 2 ? 1 : 0]);
}

let ort = null;
async function onnxruntimeNode(entry) {
  ort ??= (await import("onnxruntime-node")).default;
  const session = await ort.InferenceSession.create(entry.artifact);
  const [name] = session.inputNames;
  const rank = session.inputMetadata[0]?.shape?.length ?? 2;
  return async (input) => {
    const x = features(entry, input);
    const dims = rank === 2 && x.shape.length === 1 ? [x.shape[0], 1] : x.shape;
    const result = await session.run({ [name]: new ort.Tensor(x.dtype, x.data, dims) });
    return score(session.outputNames.map((n) => result[n]));
  };
}

let tf = null;
async function tfjsGraphModel(entry) {
  tf ??= await import("@tensorflow/tfjs");
  // @tensorflow/tfjs has no file system loader in Node (that is @tensorflow/tfjs-node, which downloads
  // libtensorflow at install): read model.json and its weight files and hand them over from memory.
  const dir = entry.artifact.slice(0, entry.artifact.lastIndexOf("/"));
  const json = JSON.parse(fs.readFileSync(entry.artifact, "utf8"));
  const weightSpecs = [];
  const shards = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) shards.push(fs.readFileSync(`${dir}/${p}`));
    weightSpecs.push(...group.weights);
  }
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const graph = await tf.loadGraphModel(tf.io.fromMemory({ ...json, weightSpecs, weightData }));
  const [inp] = graph.inputs;
  return async (input) => {
    const x = features(entry, input);
    const t = tf.tensor(x.dtype === "string" ? x.data : Array.from(x.data), x.shape, x.dtype === "string" ? "string" : inp.dtype);
    const out = graph.execute({ [inp.name]: t });
    const first = Array.isArray(out) ? out[0] : out;
    const data = await first.data();
    tf.dispose([t, out]);
    return Number(data[first.shape.at(-1) === 2 ? 1 : 0]);
  };
}

// One Python process for the app, spawned on first use; it answers JSON lines in order of id.
let bridge = null;
function pythonBridge() {
  if (bridge) return bridge;
  const python = process.env.EXPORTCONF_PYTHON ?? "python3";
  const script = process.env.EXPORTCONF_BRIDGE ?? new URL("../bridge/bridge.py", import.meta.url).pathname;
  const child = spawn(python, [script], { stdio: ["pipe", "pipe", "inherit"] });
  const pending = new Map();
  let next = 0;
  child.on("exit", (code, signal) => {
    for (const { reject } of pending.values()) reject(new Error(`python bridge exited (${code ?? signal})`));
    pending.clear();
    bridge = null;
  });
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    const msg = JSON.parse(line);
    const p = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error) p?.reject(new Error(`python bridge: ${msg.error}`));
    else p?.resolve(msg);
  });
  bridge = {
    pid: child.pid,
    call: (req) => new Promise((resolve, reject) => {
      const id = ++next;
      pending.set(id, { resolve, reject });
      child.stdin.write(JSON.stringify({ ...req, id }) + "\n");
    }),
  };
  return bridge;
}

async function viaPython(entry) {
  const b = pythonBridge();
  await b.call({ op: "load", format: entry.format, artifact: entry.artifact });
  return async (input) => {
    const x = features(entry, input);
    const rows = x.dtype === "string" ? x.data : [Array.from(x.data)];
    const { score: s } = await b.call({ op: "predict", artifact: entry.artifact, dtype: x.dtype, rows });
    return s;
  };
}

const LOADERS = { "onnxruntime-node": onnxruntimeNode, "tfjs-graph-model": tfjsGraphModel, "python-bridge": viaPython };

// ---- HTTP --------------------------------------------------------------------------------------------
function send(res, status, body, type = "application/json") {
  const text = type === "application/json" ? JSON.stringify(body) : body;
  res.writeHead(status, { "content-type": `${type}; charset=utf-8`, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > MAX_BODY) reject(new HttpError(413, `request body over ${MAX_BODY} bytes`));
      else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

async function api(req, res, system, format) {
  const sys = SYSTEMS[system] ?? genericSystem(modelEntry(system, format));
  if (req.method !== "POST") throw new HttpError(405, "use POST with a JSON body");
  const type = (req.headers["content-type"] ?? "").split(";")[0].trim();
  if (type !== "application/json") throw new HttpError(415, `Content-Type must be application/json, got ${type || "none"}`);
  const text = await readBody(req);
  let body;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `malformed JSON: ${e.message}`);
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw new HttpError(400, "the body must be a JSON object");
  const input = sys.parse(body);
  const m = await model(system, format);
  const t0 = performance.now();
  const s = await m.predict(input);
  send(res, 200, { system, format, ...sys.answer(s), ms: performance.now() - t0, load_ms: m.loadMs });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, "http://localhost");
  const parts = url.pathname.split("/").filter(Boolean);
  try {
    if (url.pathname === "/healthz") return send(res, 200, { ok: true, pid: process.pid });
    if (parts[0] === "api" && parts.length === 3) return await api(req, res, parts[1], parts[2]);
    if (req.method === "GET" && parts.length === 0) return send(res, 200, index(Object.keys(SYSTEMS)), "text/html");
    if (req.method === "GET" && parts.length === 1) {
      const format = url.searchParams.get("format") ?? "onnx";
      if (SYSTEMS[parts[0]]) return send(res, 200, page(parts[0], format), "text/html");
      return send(res, 200, genericPage(parts[0], format, modelEntry(parts[0], format)), "text/html");
    }
    throw new HttpError(404, `no page ${url.pathname}`);
  } catch (e) {
    const status = e instanceof HttpError ? e.status : 500;
    if (status === 500) console.error(e);
    if (!res.headersSent) send(res, status, { error: e.message });
  }
});

server.listen(PORT, HOST, () => console.log(`listening on http://${HOST}:${server.address().port}`));
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
