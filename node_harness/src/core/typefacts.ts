// The TypeScript stack's type facts: a route whose npm package ships no type definitions (and has no
// @types package) is a `missing-types` friction (the typed code would declare the package's shape by
// hand); one whose definitions, or those of its dependencies, fail strict checking with the harness's
// tsconfig is `broken-types`, with tsc's output as evidence. Provisioning runs that check
// (`tsc --skipLibCheck false`) and writes types-check.json; its `needs_lib` says when the definitions
// compile only with extra `lib` settings (e.g. "dom" in a Node project).

import fs from "node:fs";
import path from "node:path";

import { packageDir, packageJson, ROOT } from "./packages.js";
import type { Facts } from "./protocol.js";

interface PackageCheck {
  errors: number;
  first: string;
  lines?: string[];
  needs_lib?: string[];
}

interface TypesCheck {
  command: string;
  packages: Record<string, PackageCheck>;
}

// Where a package's type definitions come from, or null when it ships none (and no @types package).
export function typeDefinitions(name: string): string | null {
  const pkg = packageJson(name);
  const dir = packageDir(name);
  if (!pkg || !dir) return null;
  if (pkg.types ?? pkg.typings) return `${name}/${pkg.types ?? pkg.typings}`;
  if (JSON.stringify(pkg.exports ?? {}).includes('"types"')) return `${name} (exports "types")`;
  if (fs.existsSync(path.join(dir, "index.d.ts"))) return `${name}/index.d.ts`;
  const scoped = name.startsWith("@") ? name.slice(1).replace("/", "__") : name;
  if (packageJson(`@types/${scoped}`)) return `@types/${scoped}`;
  return null;
}

function typesCheck(): TypesCheck | null {
  const file = path.join(ROOT, "types-check.json");
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as TypesCheck) : null;
}

// A package and everything it depends on, as installed.
function dependencyClosure(name: string, seen: Set<string> = new Set()): Set<string> {
  if (seen.has(name)) return seen;
  seen.add(name);
  for (const dep of Object.keys(packageJson(name)?.dependencies ?? {})) dependencyClosure(dep, seen);
  return seen;
}

export function typeFacts(packages: readonly string[], facts: Facts): void {
  const check = typesCheck();
  const missing: string[] = [];
  const problems: string[] = [];
  const evidence: string[] = [];
  for (const p of packages) {
    const where = typeDefinitions(p);
    if (!where) {
      missing.push(`${p} ships no type definitions and has no @types package`);
      continue;
    }
    facts.notes.push(`types: ${p} typed by ${where}`);
    const closure = dependencyClosure(p);
    const broken = Object.entries(check?.packages ?? {}).filter(([pkg]) => closure.has(pkg));
    if (!broken.length) continue;
    const list = broken
      .map(([pkg, e]) => `${pkg} (${e.errors} errors${e.needs_lib?.length ? `; compile only with lib ${e.needs_lib.join(", ")}` : ""})`)
      .join("; ");
    problems.push(`${p}'s type definitions do not type-check under the harness's strict tsconfig: ${list}`);
    evidence.push(...broken.flatMap(([, e]) => e.lines ?? [e.first]));
  }
  if (problems.length) {
    const lines = [...new Set(evidence)].slice(0, 12);
    facts.frictions.push({
      kind: "broken-types",
      detail: problems.join(" | "),
      source: "observed",
      evidence: `$ ${check?.command ?? "tsc"}\n${lines.join("\n")}`,
    });
  }
  if (missing.length) {
    facts.frictions.push({
      kind: "missing-types",
      detail: missing.join(" | "),
      source: "observed",
      evidence: missing.map((m) => m.split(" ")[0]).map((p) => `${p}: no types/typings/exports types, no index.d.ts, no @types package`).join("; "),
    });
  }
}
