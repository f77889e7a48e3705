// The harness loop: read one request per line from stdin, answer one line on stdout, carry on after
// any failure. Routes are looked up by the request's `route` field ("name" or "name:target").

import readline from "node:readline";

import { Bridge } from "./bridge.js";
import { ortRoute } from "./ort.js";
import { versions } from "./packages.js";
import { errorText, isRun, log, openChannel, send, type Request, type Response, type RunRequest } from "./protocol.js";
import type { Stack } from "./stack.js";
import { tfjsRoute } from "./tfjs.js";

export type RouteFn = (req: RunRequest, target: string, stack: Stack, bridge: Bridge) => Promise<Response>;

export const ROUTES: Readonly<Record<string, RouteFn>> = {
  "onnxruntime-node": (req, _target, stack) => ortRoute(req, "onnxruntime-node", stack),
  "onnxruntime-web": (req, _target, stack) => ortRoute(req, "onnxruntime-web", stack),
  "tfjs-graph-model": (req, _target, stack) => tfjsRoute(req, "cpu", stack),
  "tfjs-graph-model-wasm": (req, _target, stack) => tfjsRoute(req, "wasm", stack),
  "python-bridge": (req, target, _stack, bridge) => bridge.run(req, target),
};

function argValue(argv: readonly string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function handle(req: Request, stack: Stack, bridge: Bridge): Promise<Response> {
  if (req.op === "ping") return { ok: true, pid: process.pid, versions: versions(["onnxruntime-node", "onnxruntime-web"]) };
  if (!isRun(req)) return { ok: false, error: `unknown op ${JSON.stringify(req.op)}; known: run, ping, shutdown` };
  const routeField = String(req.route ?? "");
  const cut = routeField.indexOf(":");
  const name = cut >= 0 ? routeField.slice(0, cut) : routeField;
  const target = cut >= 0 ? routeField.slice(cut + 1) : "";
  log(`run #${req.id ?? "?"}: ${routeField} on ${req.artifact}`);
  const route = Object.prototype.hasOwnProperty.call(ROUTES, name) ? ROUTES[name] : undefined;
  if (!route) return { ok: false, error: `unknown route ${JSON.stringify(name)}; known: ${Object.keys(ROUTES).join(", ")}` };
  return await route(req, target, stack, bridge);
}

// Serve the protocol on stdin/stdout until "shutdown" or the end of stdin.
//   --python PATH   the interpreter the Python bridge spawns (else $EXPORTCONF_PYTHON, else python3)
export async function serve(stack: Stack, argv: readonly string[] = process.argv): Promise<void> {
  openChannel(stack.tag);
  const bridge = new Bridge(argValue(argv, "--python") ?? process.env["EXPORTCONF_PYTHON"] ?? "python3");
  // Terminated (e.g. by the parent's timeout): take the Python worker along, whatever it is doing.
  for (const [sig, code] of [["SIGTERM", 143], ["SIGINT", 130], ["SIGHUP", 129]] as const) {
    process.on(sig, () => {
      bridge.kill();
      process.exit(code);
    });
  }
  log(`node ${process.version} pid ${process.pid}`);
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let req: Request;
    try {
      req = JSON.parse(line) as Request;
    } catch (e) {
      send({ id: null, ok: false, error: `bad request line: ${e instanceof Error ? e.message : String(e)}` });
      continue;
    }
    if (req === null || typeof req !== "object") {
      send({ id: null, ok: false, error: `a request is a JSON object; got ${line.slice(0, 200)}` });
      continue;
    }
    if (req.op === "shutdown") break;
    let resp: Response;
    try {
      resp = await handle(req, stack, bridge);
    } catch (e) {
      resp = { ok: false, error: errorText(e), trace: e instanceof Error ? String(e.stack ?? e) : String(e) };
    }
    send({ ...resp, id: req.id ?? null });
  }
  bridge.stop();
  process.exit(0);
}
