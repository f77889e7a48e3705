// exportconf's Node harness core: the plumbing both stacks share, written once (TypeScript, compiled by
// tsc to ESM JavaScript + .d.ts). The stacks' entry points (src/harness.mjs, src/harness.ts) only say
// what differs between them.

export { serve, ROUTES, type RouteFn } from "./serve.js";
export { untyped, type Stack } from "./stack.js";
export { typeFacts } from "./typefacts.js";
export { applyPreprocessing, checkSpec, type TfidfSpec } from "./preprocessing.js";
export type { Facts, Friction, Request, Response, WireTensor } from "./protocol.js";
