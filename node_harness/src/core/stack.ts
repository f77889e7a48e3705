// What differs between the JavaScript and the TypeScript stack, and nothing else: the facts about
// the packages' type definitions that a TypeScript developer meets (a JavaScript developer does not).

import type { Facts } from "./protocol.js";

export interface Stack {
  // the log's tag: "js", "ts"
  tag: string;
  // record what the packages' type definitions mean for this stack's developer
  typeFacts(packages: readonly string[], facts: Facts): void;
}

// For a stack without types: nothing to record.
export function untyped(_packages: readonly string[], _facts: Facts): void {}
