#!/usr/bin/env node
// The JavaScript stack: plain ESM, no build step of its own. It uses the harness core (compiled from
// src/core/ by tsc) as a JavaScript developer uses a library: import it and serve the protocol of
// docs/protocol.md on stdin/stdout. JavaScript has no type definitions to meet: nothing is recorded
// about them.
//
//   node src/harness.mjs [--python /path/to/python]

import { serve, untyped } from "../dist/core/index.js";

await serve({ tag: "js", typeFacts: untyped });
