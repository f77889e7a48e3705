// The shared text-preprocessing specification (tf-idf), in TypeScript.
//
// Exactly the steps of pytest_exportconf/preprocessing.py (and preprocessing.mjs), so that Python,
// JavaScript and TypeScript produce bit-identical float32 vectors:
//   1. lower-case ASCII letters only;
//   2. tokens are the maximal runs of [a-z0-9_] of length >= 2, in order;
//   3. count each token found in `vocabulary` (token -> column), ignore the rest;
//   4. multiply the counts by idf[column] (float64);
//   5. divide by the L2 norm when it is non-zero, then round to float32.
// The L2 norm sums the squares in NumPy's pairwise order, so the float64 norm is Python's.

export const TOKEN_PATTERN = "[a-z0-9_]{2,}";

export interface TfidfSpec {
  kind: "tfidf";
  version?: number;
  token_pattern?: string;
  lowercase?: boolean;
  norm?: string;
  vocabulary: Record<string, number>;
  idf: number[];
}

export interface Vectors {
  data: Float32Array;
  shape: [number, number];
}

function lowerAscii(text: string): string {
  return text.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

export function tokens(text: string): string[] {
  return lowerAscii(text).match(/[a-z0-9_]{2,}/g) ?? [];
}

// NumPy's pairwise summation (numpy/_core/src/umath/loops_utils.h.src, PW_BLOCKSIZE 128).
export function pairwiseSum(a: Float64Array, start: number, n: number): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i]!;
    return res;
  }
  if (n <= 128) {
    const r = new Float64Array(8);
    for (let j = 0; j < 8; j++) r[j] = a[start + j]!;
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j]! += a[start + i + j]!;
    }
    let res = ((r[0]! + r[1]!) + (r[2]! + r[3]!)) + ((r[4]! + r[5]!) + (r[6]! + r[7]!));
    for (; i < n; i++) res += a[start + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
}

export function checkSpec(spec: unknown): TfidfSpec {
  const s = spec as Partial<TfidfSpec> | null;
  if (s === null || typeof s !== "object" || s.kind !== "tfidf") {
    throw new Error(`unknown preprocessing kind ${JSON.stringify(s?.kind)}; known: tfidf`);
  }
  if (s.token_pattern !== undefined && s.token_pattern !== TOKEN_PATTERN) {
    throw new Error(`token_pattern ${JSON.stringify(s.token_pattern)} is not the shared ${TOKEN_PATTERN}`);
  }
  if (typeof s.vocabulary !== "object" || !Array.isArray(s.idf)) throw new Error("tfidf spec needs vocabulary and idf");
  return s as TfidfSpec;
}

export function applyPreprocessing(spec: TfidfSpec, texts: readonly string[]): Vectors {
  checkSpec(spec);
  const vocab = new Map<string, number>(Object.entries(spec.vocabulary));
  const idf = Float64Array.from(spec.idf);
  const cols = idf.length;
  const out = new Float32Array(texts.length * cols);
  const row = new Float64Array(cols);
  const sq = new Float64Array(cols);
  texts.forEach((text, i) => {
    row.fill(0);
    for (const tok of tokens(String(text))) {
      const j = vocab.get(tok);
      if (j !== undefined) row[j]! += 1;
    }
    for (let j = 0; j < cols; j++) {
      row[j]! *= idf[j]!;
      sq[j] = row[j]! * row[j]!;
    }
    const norm = Math.sqrt(pairwiseSum(sq, 0, cols));
    for (let j = 0; j < cols; j++) out[i * cols + j] = norm > 0 ? row[j]! / norm : row[j]!;
  });
  return { data: out, shape: [texts.length, cols] };
}
