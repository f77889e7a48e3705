// The model files of models.json, for the browser to fetch (inference in the page itself).
import fs from "node:fs";
import path from "node:path";

import { HttpError } from "./systems";

interface Entry {
  artifact: string;
  preprocessing: string | null;
}

// `model` is the artifact itself; `preprocessing.json` its tf-idf spec; any other name a file beside
// the artifact (a tfjs graph model's weight shards, an ONNX model's external data).
export function modelFile(system: string, format: string, file: string): string {
  const all = JSON.parse(fs.readFileSync(process.env.EXPORTCONF_MODELS ?? "models.json", "utf8")) as Record<
    string,
    Record<string, Entry>
  >;
  const entry = all[system]?.[format];
  if (!entry) throw new HttpError(404, `no model for ${system}/${format}`);
  if (file === "model") return entry.artifact;
  if (file === "preprocessing.json") {
    if (!entry.preprocessing) throw new HttpError(404, "this model has its preprocessing inside");
    return entry.preprocessing;
  }
  if (file !== path.basename(file) || file.startsWith(".")) throw new HttpError(400, `bad file name ${file}`);
  return path.join(path.dirname(entry.artifact), file);
}
