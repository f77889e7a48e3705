"use client";

import { useEffect, useRef, useState, type FormEvent } from "react";

import { applyPreprocessing, checkSpec, type TfidfSpec } from "@/lib/preprocessing";

interface Props {
  system: "number_predictor" | "sentiment";
  format: string;
}

type Features = { dtype: "float32"; data: Float32Array; shape: number[] };
type Run = (x: Features) => Promise<number>;

// Both runtimes are imported when the page mounts, not at module top: a top-level import of
// onnxruntime-web's /wasm entry breaks prerendering (it resolves a URL at import time).
// The /wasm entry is the CPU build: its WebAssembly is 14 MB against the default entry's 28 MB (which
// carries the WebGPU/WebNN glue), and the page compiles it on every load.
async function loadOnnx(base: string): Promise<{ run: Run; backend: string }> {
  const ort = await import("onnxruntime-web/wasm");
  const bytes = new Uint8Array(await (await fetch(`${base}/model`)).arrayBuffer());
  const session = await ort.InferenceSession.create(bytes);
  const name = session.inputNames[0] ?? "x";
  return {
    backend: `onnxruntime-web ${ort.env.versions.web ?? ""} (wasm, ${ort.env.wasm.numThreads ?? "?"} threads)`,
    run: async (x) => {
      const result = await session.run({ [name]: new ort.Tensor("float32", x.data, x.shape) });
      const out = session.outputNames.map((n) => result[n]).find((t) => t?.type === "float32");
      if (!out) throw new Error("the model has no float32 output");
      return Number((out.data as Float32Array)[out.dims.at(-1) === 2 ? 1 : 0]);
    },
  };
}

async function loadTfjs(base: string): Promise<{ run: Run; backend: string }> {
  const tf = await import("@tensorflow/tfjs");
  await tf.ready();
  const graph = await tf.loadGraphModel(`${base}/model.json`);
  const inp = graph.inputs[0];
  if (!inp) throw new Error("the graph model has no input");
  return {
    backend: `TensorFlow.js ${tf.version.tfjs} (${tf.getBackend()} backend)`,
    run: async (x) => {
      const t = tf.tensor(x.data, x.shape, "float32");
      const out = graph.execute({ [inp.name]: t });
      const first = Array.isArray(out) ? out[0] : out;
      if (!first) throw new Error("the graph model returned nothing");
      const data = await first.data();
      tf.dispose([t, first]);
      return Number(data[first.shape.at(-1) === 2 ? 1 : 0]);
    },
  };
}

const RUNTIMES: Record<string, (base: string) => Promise<{ run: Run; backend: string }>> = {
  onnx: loadOnnx,
  savedmodel: loadTfjs,
};

export default function BrowserPredictor({ system, format }: Props) {
  const model = useRef<{ run: Run; spec: TfidfSpec | null } | null>(null);
  const [status, setStatus] = useState<{ state: string; text: string; loadMs?: number }>({ state: "loading", text: "loading the model…" });
  const [numbers, setNumbers] = useState(["", "", ""]);
  const [review, setReview] = useState("");
  const [answer, setAnswer] = useState<{ ok: boolean; value?: number; text: string } | null>(null);

  useEffect(() => {
    const base = `/api/model/${system}/${format}`;
    const load = RUNTIMES[format];
    if (!load) {
      setStatus({ state: "error", text: `no browser runtime for ${format}; ONNX and the converted SavedModel run here` });
      return;
    }
    const t0 = performance.now();
    (async () => {
      const spec = system === "sentiment" ? await fetch(`${base}/preprocessing.json`).then((r) => (r.ok ? r.json() : null)) : null;
      const { run, backend } = await load(base);
      model.current = { run, spec: spec ? checkSpec(spec) : null };
      setStatus({ state: "ok", text: backend, loadMs: performance.now() - t0 });
    })().catch((e: unknown) => setStatus({ state: "error", text: String(e) }));
  }, [system, format]);

  async function submit(ev: FormEvent<HTMLFormElement>): Promise<void> {
    ev.preventDefault();
    setAnswer(null);
    try {
      const m = model.current;
      if (!m) throw new Error("the model is not loaded");
      let x: Features;
      if (system === "number_predictor") {
        x = { dtype: "float32", data: Float32Array.from(numbers.map(Number)), shape: [1, 3] };
      } else {
        if (!m.spec) throw new Error("this page needs a model exported without its preprocessing");
        const v = applyPreprocessing(m.spec, [review]);
        x = { dtype: "float32", data: v.data, shape: v.shape };
      }
      const s = await m.run(x);
      const text = system === "number_predictor" ? `Next number: ${s.toFixed(4)}` : `${s >= 0.5 ? "positive" : "negative"} (P(positive) = ${s.toFixed(4)})`;
      setAnswer({ ok: true, value: s, text });
    } catch (e) {
      setAnswer({ ok: false, text: String(e) });
    }
  }

  const done = answer ? { "data-done": answer.ok ? "ok" : "error", "data-value": answer.value, "data-probability": answer.value } : {};
  return (
    <>
      <p id="status" data-ready={status.state} data-load-ms={status.loadMs}>{status.text}</p>
      <form id="predict" onSubmit={submit}>
        {system === "number_predictor" ? (
          numbers.map((v, i) => (
            <input key={i} id={`n${i + 1}`} type="number" step="any" required value={v}
              onChange={(e) => setNumbers(numbers.map((old, j) => (j === i ? e.target.value : old)))} />
          ))
        ) : (
          <textarea id="review" rows={6} cols={60} required value={review} onChange={(e) => setReview(e.target.value)} />
        )}
        <p>
          <button id="submit" type="submit" disabled={status.state !== "ok"}>Predict in the browser</button>
        </p>
      </form>
      <div id="result" style={{ marginTop: "1em", fontSize: "1.3em" }} {...done}>{answer?.text}</div>
    </>
  );
}
