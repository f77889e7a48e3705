// The JSON-lines protocol of docs/protocol.md, as types, and the channel that carries it: stdout holds
// protocol lines only; console output of the harness and of the libraries it loads goes to stderr.

export type NumericDtype = "float32" | "float64" | "int8" | "int32" | "int64" | "uint8" | "bool";
export type Dtype = NumericDtype | "string";

export interface WireTensor {
  name?: string | null;
  dtype: Dtype;
  shape: number[];
  data: string | string[];
}

// How a friction was known: `observed` in this run (with its evidence) or `declared` (a documented fact).
export interface Friction {
  kind: string;
  detail: string;
  source?: "observed" | "declared";
  evidence?: string;
}

export interface InputSpec {
  name: string;
  dtype: string;
  shape: (number | null)[];
}

export interface RunRequest {
  id?: number | null;
  op: "run";
  route: string;
  artifact: string;
  preprocessing?: string | null;
  // a list of named tensors (one per model input), or one tensor for a model with one input
  inputs: WireTensor | WireTensor[];
  input_spec?: InputSpec | InputSpec[];
  repeats?: number;
}

export interface OtherRequest {
  id?: number | null;
  op: string;
}

export type Request = RunRequest | OtherRequest;

export interface Failure {
  ok: false;
  error: string;
  trace?: string;
  [extra: string]: unknown;
}

export interface Success {
  ok: true;
  outputs?: WireTensor[];
  import_ms?: number;
  load_ms?: number;
  p50_ms?: number;
  notes?: string[];
  frictions?: Friction[];
  versions?: Record<string, string>;
  [extra: string]: unknown;
}

export type Response = Success | Failure;

export interface RunSuccess extends Success {
  outputs: WireTensor[];
  import_ms: number;
  load_ms: number;
  p50_ms: number;
  notes: string[];
  frictions: Friction[];
  versions: Record<string, string>;
}

// What a route learns while it runs: field notes and frictions, in the order they happened.
export interface Facts {
  notes: string[];
  frictions: Friction[];
}

export function isRun(req: Request): req is RunRequest {
  return req.op === "run";
}

export function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

let channelWrite: ((line: string) => boolean) | null = null;
let logTag = "node";

// Take stdout for the protocol; everything else printed (console.*, process.stdout.write) goes to stderr.
export function openChannel(tag: string): void {
  logTag = tag;
  if (channelWrite) return;
  const write = process.stdout.write.bind(process.stdout);
  channelWrite = (line: string): boolean => write(line);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]): boolean =>
    process.stderr.write(chunk, ...rest)) as typeof process.stdout.write;
  for (const level of ["log", "info", "debug", "warn", "trace"] as const) {
    console[level] = (...args: unknown[]): void => {
      process.stderr.write(args.map(String).join(" ") + "\n");
    };
  }
}

export function send(obj: object): boolean {
  if (!channelWrite) throw new Error("openChannel() first");
  return channelWrite(JSON.stringify(obj) + "\n");
}

export function log(msg: string): void {
  process.stderr.write(`[exportconf-harness ${logTag}] ${msg}\n`);
}
