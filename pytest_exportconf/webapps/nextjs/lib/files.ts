// The model files of models.json, for the browser to fetch (inference in the page itself).
import fs from "node:fs";
import path from "node:path";

import { HttpError } from "./systems";

import type { GenericInput } from "./systems";

interface Entry {
  artifact: string;
  preprocessing: string | null;
  input?: GenericInput;
  example?: (number | string)[] | string;
  title?: string;
}

function entryOf(system: string, format: string): Entry {
  const all = JSON.parse(fs.readFileSync(process.env.EXPORTCONF_MODELS ?? "models.json", "utf8")) as Record<
    string,
    Record<string, Entry>
  >;
  const entry = all[system]?.[format];
  if (!entry) throw new HttpError(404, `no model for ${system}/${format}`);
  return entry;
}

// What a generic page and API need to know about a system the app has no page of its own for.
export function genericEntry(system: string, format: string): { input: GenericInput; example: Entry["example"]; title: string } {
  const entry = entryOf(system, format);
  if (!entry.input) throw new HttpError(404, `${system}/${format} declares no input`);
  return { input: entry.input, example: entry.example, title: entry.title ?? system };
}

// `model` is the artifact itself; `preprocessing.json` its tf-idf spec; any other name a file beside
// the artifact (a tfjs graph model's weight shards, an ONNX model's external data).
export function modelFile(system: string, format: string, file: string): string {
  const entry = entryOf(system, format);
  if (file === "model") return entry.artifact;
  if (file === "preprocessing.json") {
    if (!entry.preprocessing) throw new HttpError(404, "this model has its preprocessing inside");
    return entry.preprocessing;
  }
  if (file !== path.basename(file) || file.startsWith(".")) throw new HttpError(400, `bad file name ${file}`);
  return path.join(path.dirname(entry.artifact), file);
}
