// Timing inside Node with performance.now(): imports (first use only), loads, and the p50 of the
// timed inferences that follow one untimed warm-up.

import type { Facts, RunRequest, RunSuccess } from "./protocol.js";
import { encodeTensor, type HostTensor } from "./tensors.js";

export function repeatsOf(req: RunRequest): number {
  return Math.max(1, Number(req.repeats ?? 20));
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  const at = (i: number): number => s[i] ?? Number.NaN;
  return s.length % 2 ? at(m) : (at(m - 1) + at(m)) / 2;
}

// The median time of `repeats` calls of `fn`, and its last result.
export async function p50<T>(repeats: number, fn: () => Promise<T> | T): Promise<{ ms: number; last: T }> {
  const times: number[] = [];
  let last: T | undefined;
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    last = await fn();
    times.push(performance.now() - t);
  }
  return { ms: median(times), last: last as T };
}

const imported = new Map<string, unknown>();

// Import a package once per process; the first import is timed, later ones cost 0 ms.
export async function timedImport<T>(specifier: string, load: () => Promise<T>): Promise<{ mod: T; ms: number }> {
  if (imported.has(specifier)) return { mod: imported.get(specifier) as T, ms: 0 };
  const t0 = performance.now();
  const mod = await load();
  imported.set(specifier, mod);
  return { mod, ms: performance.now() - t0 };
}

export interface Measured extends Facts {
  importMs: number;
  loadMs: number;
  versions: Record<string, string>;
}

// One warm-up call (kept out of the latency figure), then `repeats` timed calls: the route's answer.
export async function timedResponse(req: RunRequest, infer: () => Promise<HostTensor[]>, m: Measured): Promise<RunSuccess> {
  const outputs = await infer();
  const { ms } = await p50(repeatsOf(req), infer);
  return {
    ok: true,
    outputs: outputs.map(encodeTensor),
    import_ms: m.importMs,
    load_ms: m.loadMs,
    p50_ms: ms,
    notes: m.notes,
    frictions: m.frictions,
    versions: m.versions,
  };
}
