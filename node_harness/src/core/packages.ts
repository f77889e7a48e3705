// Where the harness and its npm packages are, and their versions.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface PackageJson {
  name?: string;
  version?: string;
  types?: string;
  typings?: string;
  exports?: unknown;
  dependencies?: Record<string, string>;
}

// The harness directory: the nearest one above this file holding package.json (dist/core -> the root).
export const ROOT: string = (() => {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "package.json"))) return dir;
    if (path.dirname(dir) === dir) throw new Error("the harness has no package.json above it");
  }
})();

export function packageDir(name: string): string | null {
  for (let dir = ROOT; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, "node_modules", name);
    if (fs.existsSync(path.join(candidate, "package.json"))) return candidate;
    if (path.dirname(dir) === dir) return null;
  }
}

export function packageJson(name: string): PackageJson | null {
  const dir = packageDir(name);
  return dir ? (JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as PackageJson) : null;
}

export function versions(packages: readonly string[]): Record<string, string> {
  const out: Record<string, string> = { node: process.version.replace(/^v/, "") };
  for (const p of packages) out[p] = packageJson(p)?.version ?? "not installed";
  return out;
}
