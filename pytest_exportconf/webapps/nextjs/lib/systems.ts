// What the two systems take and answer, shared by the API route and the pages.

export const FORMATS = ["onnx", "savedmodel", "torchscript", "pickle", "joblib"] as const;
export const MAX_REVIEW = 10000;

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export type Input = { kind: "numbers"; values: number[] } | { kind: "text"; values: string[] };

interface SystemDef {
  title: string;
  parse: (body: Record<string, unknown>) => Input;
  answer: (score: number) => Record<string, unknown>;
}

function parseNumbers(body: Record<string, unknown>): Input {
  if (!("numbers" in body)) throw new HttpError(400, "missing field 'numbers' (a list of 3 numbers)");
  const xs = body.numbers;
  if (!Array.isArray(xs) || xs.length !== 3) {
    throw new HttpError(400, `'numbers' must be a list of 3 numbers, got ${Array.isArray(xs) ? `${xs.length} values` : typeof xs}`);
  }
  const values = xs.map((v: unknown, i) => {
    if (typeof v !== "number" || !Number.isFinite(v)) throw new HttpError(400, `'numbers'[${i}] is not a finite number: ${JSON.stringify(v)}`);
    return v;
  });
  return { kind: "numbers", values };
}

function parseReview(body: Record<string, unknown>): Input {
  if (!("review" in body)) throw new HttpError(400, "missing field 'review' (the text of a movie review)");
  const text = body.review;
  if (typeof text !== "string") throw new HttpError(400, `'review' must be a string, got ${typeof text}`);
  if (!text.trim()) throw new HttpError(400, "'review' is empty");
  if (text.length > MAX_REVIEW) throw new HttpError(413, `'review' has ${text.length} characters; at most ${MAX_REVIEW}`);
  return { kind: "text", values: [text] };
}

export const SYSTEMS: Record<string, SystemDef> = {
  number_predictor: { title: "Number predictor", parse: parseNumbers, answer: (s) => ({ prediction: s }) },
  sentiment: {
    title: "Movie-review sentiment",
    parse: parseReview,
    answer: (s) => ({ label: s >= 0.5 ? "positive" : "negative", probability: s }),
  },
};

export interface GenericInput {
  kind: "numbers" | "text";
  count?: number;
}

// Any other system of models.json: {"features": [k numbers]} or {"text": "..."}, answered with {"score"}.
export function genericSystem(input: GenericInput, title: string): SystemDef {
  const answer = (s: number) => ({ score: s });
  if (input.kind === "text") {
    return { title, answer, parse: (body) => parseReview("text" in body ? { review: body.text } : {}) };
  }
  const count = Number(input.count);
  const parse = (body: Record<string, unknown>): Input => {
    if (!("features" in body)) throw new HttpError(400, `missing field 'features' (a list of ${count} numbers)`);
    const xs = body.features;
    if (!Array.isArray(xs) || xs.length !== count) {
      throw new HttpError(400, `'features' must be a list of ${count} numbers, got ${Array.isArray(xs) ? `${xs.length} values` : typeof xs}`);
    }
    const values = xs.map((v: unknown, i) => {
      if (typeof v !== "number" || !Number.isFinite(v)) throw new HttpError(400, `'features'[${i}] is not a finite number: ${JSON.stringify(v)}`);
      return v;
    });
    return { kind: "numbers", values };
  };
  return { title, answer, parse };
}
