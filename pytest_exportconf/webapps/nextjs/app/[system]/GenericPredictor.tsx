"use client";

import { useState, type FormEvent } from "react";

import type { GenericInput } from "@/lib/systems";

interface Props {
  system: string;
  format: string;
  input: GenericInput;
  example: (number | string)[] | string | null;
}

// A system the app has no page of its own for: one field per input feature (or a text area).
export default function GenericPredictor({ system, format, input, example }: Props) {
  const count = input.kind === "text" ? 0 : Number(input.count);
  const [values, setValues] = useState<string[]>(
    Array.from({ length: count }, (_, i) => (Array.isArray(example) ? String(example[i] ?? "") : "")),
  );
  const [text, setText] = useState(typeof example === "string" ? example : "");
  const [answer, setAnswer] = useState<{ ok: boolean; score?: number; error?: string } | null>(null);

  async function submit(ev: FormEvent<HTMLFormElement>): Promise<void> {
    ev.preventDefault();
    setAnswer(null);
    const body = input.kind === "text" ? { text } : { features: values.map(Number) };
    const res = await fetch(`/api/${system}/${format}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const r = (await res.json()) as { score?: number; error?: string };
    setAnswer({ ok: res.ok, ...r });
  }

  const data = answer ? (answer.ok ? { "data-done": "ok", "data-value": answer.score } : { "data-done": "error" }) : {};
  return (
    <>
      <form id="predict" onSubmit={submit}>
        {input.kind === "text" ? (
          <textarea id="text" rows={6} cols={60} required value={text} onChange={(e) => setText(e.target.value)} />
        ) : (
          <>
            <p>{`The model's ${count} input features (pre-filled with a golden row).`}</p>
            {values.map((v, i) => (
              <input key={i} id={`x${i + 1}`} type="number" step="any" required value={v}
                onChange={(e) => setValues(values.map((old, j) => (j === i ? e.target.value : old)))} />
            ))}
          </>
        )}
        <p>
          <button id="submit" type="submit">Predict</button>
        </p>
      </form>
      <div id="result" style={{ marginTop: "1em", fontSize: "1.3em" }} {...data}>
        {answer?.ok && answer.score !== undefined && `Score: ${answer.score.toFixed(4)}`}
      </div>
      <div id="error" style={{ color: "#b00" }}>{answer && !answer.ok ? answer.error : ""}</div>
    </>
  );
}
