#!/usr/bin/env node
// The TypeScript stack: a strict TypeScript entry point (tsc --strict, noUncheckedIndexedAccess,
// exactOptionalPropertyTypes) over the same harness core as the JavaScript stack. What differs is
// what a TypeScript developer meets: the packages' type definitions. A route whose package ships none
// records `missing-types`; one whose definitions fail strict checking records `broken-types`.
//
//   node dist/harness.js [--python /path/to/python]

import { serve, typeFacts, type Stack } from "./core/index.js";

const stack: Stack = { tag: "ts", typeFacts };

await serve(stack);
