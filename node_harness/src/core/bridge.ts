// The Python bridge (the study's workaround): one long-lived `python -m pytest_exportconf.worker` child,
// spawned with child_process and spoken to with the same protocol. A separate variant's preprocessing
// runs in Node first (the stack's own code); the Python worker receives the vectors.

import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import readline from "node:readline";

import { versions } from "./packages.js";
import { loadPreprocessing, preprocess } from "./preprocessing.js";
import { log, type Response, type RunRequest, type WireTensor } from "./protocol.js";
import { requestTensors, sameShapeAs } from "./tensors.js";
import { p50, repeatsOf } from "./timing.js";

interface Pending {
  resolve: (r: Response) => void;
  reject: (e: Error) => void;
}

export class Bridge {
  private child: ChildProcessWithoutNullStreams | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  constructor(private readonly python: string) {}

  private async start(): Promise<number> {
    if (this.child && this.child.exitCode === null) return 0;
    const t0 = performance.now();
    // what to run comes from Python (the sandbox supervisor: every load in a fresh confined child)
    const args = JSON.parse(process.env["EXPORTCONF_BRIDGE_ARGS"] ?? '["-m", "pytest_exportconf.worker"]') as string[];
    const child = spawn(this.python, args, { stdio: ["pipe", "pipe", "pipe"], env: process.env });
    this.child = child;
    child.stderr.on("data", (d: Buffer) => process.stderr.write(d)); // the Python worker's log joins ours
    const lines = readline.createInterface({ input: child.stdout });
    lines.on("line", (line: string) => {
      let msg: Response & { id?: number };
      try {
        msg = JSON.parse(line) as Response & { id?: number };
      } catch {
        return;
      }
      const p = msg.id === undefined ? undefined : this.pending.get(msg.id);
      if (p && msg.id !== undefined) {
        this.pending.delete(msg.id);
        p.resolve(msg);
      }
    });
    const failAll = (why: string): void => {
      for (const p of this.pending.values()) p.reject(new Error(why));
      this.pending.clear();
    };
    child.on("error", (e: Error) => failAll(`could not start ${this.python}: ${e.message}`));
    child.on("exit", (code: number | null, signal: NodeJS.Signals | null) => failAll(`the Python worker exited (status ${code ?? signal})`));
    await this.call({ op: "ping" });
    log(`python bridge: started ${this.python} -m pytest_exportconf.worker (pid ${child.pid})`);
    return performance.now() - t0;
  }

  private call(msg: object): Promise<Response> {
    const child = this.child;
    if (!child || child.exitCode !== null) return Promise.reject(new Error("the Python worker is not running"));
    const id = ++this.nextId;
    return new Promise<Response>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      child.stdin.write(JSON.stringify({ ...msg, id }) + "\n");
    });
  }

  async run(req: RunRequest, target: string): Promise<Response> {
    if (!target) throw new Error("python-bridge needs a target: python-bridge:<module:Class>");
    const spawnMs = await this.start();
    const repeats = repeatsOf(req);
    const spec = loadPreprocessing(req.preprocessing);
    let forwarded: WireTensor | WireTensor[] = req.inputs;
    let prepMs = 0;
    if (spec) {
      const inputs = requestTensors(req);
      const timed = await p50(repeats, () => preprocess(spec, inputs));
      prepMs = timed.ms;
      forwarded = sameShapeAs(req, timed.last);
    }
    const t0 = performance.now();
    const resp = await this.call({ ...req, route: target, preprocessing: null, inputs: forwarded });
    const forwardMs = performance.now() - t0;
    if (!resp.ok) return resp;
    // The bridge's own cost per call: a round trip carrying the batch (ping ignores the payload).
    const roundTrip = (await p50(repeats, () => this.call({ op: "ping", inputs: forwarded }))).ms;
    const pythonP50 = resp.p50_ms ?? 0;
    const notes = [
      ...(resp.notes ?? []),
      `python bridge: ${this.python} -m pytest_exportconf.worker running ${target}; spawn ${spawnMs.toFixed(1)} ms` +
        `${spawnMs ? "" : " (already running)"}, forwarded request ${forwardMs.toFixed(1)} ms, ` +
        `round trip with the inputs ${roundTrip.toFixed(3)} ms p50` +
        (spec ? `, tf-idf in Node ${prepMs.toFixed(3)} ms p50` : "") +
        `; p50_ms = Python's ${pythonP50.toFixed(3)} ms + these`,
    ];
    return {
      ...resp,
      import_ms: (resp.import_ms ?? 0) + spawnMs,
      p50_ms: pythonP50 + roundTrip + prepMs,
      notes,
      bridge: {
        spawn_ms: spawnMs,
        forward_ms: forwardMs,
        round_trip_p50_ms: roundTrip,
        python_p50_ms: pythonP50,
        preprocessing_p50_ms: prepMs,
      },
      versions: { ...(resp.versions ?? {}), ...versions([]) },
    };
  }

  stop(): void {
    if (this.child && this.child.exitCode === null) this.child.stdin.end(JSON.stringify({ op: "shutdown" }) + "\n");
  }

  kill(): void {
    if (this.child && this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}
