// Matching the request's tensors to a model's inputs, and the coercions a route makes to feed them.
//
// Inputs are fed by name when every model input has a tensor of that name, else by position. A tensor
// whose rank or dtype differs from what the model declares is first fed as sent; only when the runtime
// refuses it is it reshaped ([N] -> [N, 1]) or cast, and that workaround is reported as an observed
// `input-coercion` friction whose evidence is the runtime's refusal.

import { errorText, type Facts } from "./protocol.js";
import { castTo, isNumeric, type HostTensor } from "./tensors.js";

// A model input as its runtime describes it (dtype in the runtime's words; dims may be symbolic).
export interface ModelInput {
  name: string;
  dtype: string | undefined;
  shape: readonly unknown[] | undefined;
}

export interface Pair {
  input: ModelInput;
  tensor: HostTensor;
}

export function describeInputs(inputs: readonly ModelInput[]): string {
  const dim = (d: unknown): string => (typeof d === "number" || typeof d === "string" ? String(d) : "?");
  return inputs.map((m) => `${m.name} ${m.dtype ?? "?"}[${(m.shape ?? []).map(dim).join(", ")}]`).join("; ");
}

// `facts` (given once per request) receives a note when the inputs go by position.
export function match(inputs: readonly ModelInput[], tensors: readonly HostTensor[], facts?: Facts): Pair[] {
  if (tensors.length !== inputs.length) {
    throw new Error(`the model has ${inputs.length} input(s) (${describeInputs(inputs)}); the request sends ${tensors.length}`);
  }
  const byName = new Map(tensors.map((t) => [t.name, t]));
  if (inputs.every((m) => byName.has(m.name))) {
    return inputs.map((m) => ({ input: m, tensor: byName.get(m.name) as HostTensor }));
  }
  if (inputs.length > 1 && facts) {
    const sent = tensors.map((t) => t.name ?? "(unnamed)").join(", ");
    facts.notes.push(`inputs fed by position: the request's names (${sent}) are not the model's (${inputs.map((m) => m.name).join(", ")})`);
  }
  return inputs.map((m, i) => ({ input: m, tensor: tensors[i] as HostTensor }));
}

// What feeding `t` as the model declares `m` would change, in words (empty: nothing to coerce).
export function coercions(pair: Pair, castable: (dtype: string) => boolean): string[] {
  const { input: m, tensor: t } = pair;
  const out: string[] = [];
  const rank = m.shape?.length;
  if (rank !== undefined && rank === t.shape.length + 1) {
    out.push(`input ${m.name}: reshaped [${t.shape.join(", ")}] to [${[...t.shape, 1].join(", ")}]`);
  }
  if (m.dtype !== undefined && m.dtype !== t.dtype && castable(m.dtype) && t.dtype !== "string") {
    out.push(`input ${m.name}: cast ${t.dtype} to ${m.dtype}`);
  }
  return out;
}

// The tensor as the model declares it: one trailing axis added, numbers cast to a numeric dtype it names.
export function coerce(pair: Pair, castable: (dtype: string) => boolean): HostTensor {
  const { input: m, tensor: t } = pair;
  const rank = m.shape?.length;
  const shape = rank !== undefined && rank === t.shape.length + 1 ? [...t.shape, 1] : t.shape;
  if (m.dtype === undefined || m.dtype === t.dtype || !castable(m.dtype) || Array.isArray(t.data)) return { ...t, shape };
  if (!isNumeric(m.dtype)) throw new Error(`input ${m.name} wants ${m.dtype}, got ${t.dtype}`);
  return { ...t, shape, dtype: m.dtype, data: castTo(m.dtype, t.data) };
}

const EVIDENCE_CHARS = 600;

// Decide once, before timing, whether the inputs run as sent. `infer(coerced)` runs the model on the
// inputs as sent (false) or as the model declares them (true).
export async function settleCoercion(
  changes: readonly string[],
  infer: (coerced: boolean) => Promise<unknown>,
  facts: Facts,
): Promise<boolean> {
  if (changes.length === 0) return false;
  try {
    await infer(false);
    facts.notes.push(`inputs fed as sent although the model declares otherwise (${changes.join("; ")}): the runtime accepted them`);
    return false;
  } catch (e) {
    facts.frictions.push({
      kind: "input-coercion",
      detail: changes.join("; "),
      source: "observed",
      evidence: `fed as sent, the runtime refused: ${errorText(e)}`.slice(0, EVIDENCE_CHARS),
    });
    return true;
  }
}
