"use client";

import { useState, type FormEvent } from "react";

interface Props {
  system: "number_predictor" | "sentiment";
  format: string;
}

interface Answer {
  prediction?: number;
  label?: string;
  probability?: number;
  error?: string;
}

export default function Predictor({ system, format }: Props) {
  const [numbers, setNumbers] = useState(["", "", ""]);
  const [review, setReview] = useState("");
  const [answer, setAnswer] = useState<{ ok: boolean; body: Answer } | null>(null);

  async function submit(ev: FormEvent<HTMLFormElement>): Promise<void> {
    ev.preventDefault();
    setAnswer(null);
    const body = system === "number_predictor" ? { numbers: numbers.map(Number) } : { review };
    const res = await fetch(`/api/${system}/${format}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    setAnswer({ ok: res.ok, body: (await res.json()) as Answer });
  }

  const b = answer?.body;
  const data = !answer
    ? {}
    : answer.ok
      ? { "data-done": "ok", "data-value": b?.prediction, "data-label": b?.label, "data-probability": b?.probability }
      : { "data-done": "error" };
  return (
    <>
      <form id="predict" onSubmit={submit}>
        {system === "number_predictor" ? (
          <>
            <p>Three numbers of a sequence; the model predicts the next one.</p>
            {numbers.map((v, i) => (
              <input key={i} id={`n${i + 1}`} type="number" step="any" required value={v}
                onChange={(e) => setNumbers(numbers.map((old, j) => (j === i ? e.target.value : old)))} />
            ))}
          </>
        ) : (
          <>
            <p>A movie review; the model says whether it is positive.</p>
            <textarea id="review" rows={6} cols={60} required value={review} onChange={(e) => setReview(e.target.value)} />
          </>
        )}
        <p>
          <button id="submit" type="submit">Predict</button>
        </p>
      </form>
      <div id="result" style={{ marginTop: "1em", fontSize: "1.3em" }} {...data}>
        {answer?.ok && b?.prediction !== undefined && `Next number: ${b.prediction.toFixed(4)}`}
        {answer?.ok && b?.label !== undefined && `${b.label} (P(positive) = ${(b.probability ?? 0).toFixed(4)})`}
      </div>
      <div id="error" style={{ color: "#b00" }}>{answer && !answer.ok ? b?.error : ""}</div>
    </>
  );
}
