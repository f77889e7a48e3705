"""Runnable snippets: for a cell's winning route, a minimal self-contained program in the stack's own
language (Python, plain JavaScript, strict TypeScript) that loads the cell's artifact and prints its
outputs for the golden inputs. Polygraphy's ``--gen-script`` is the model.

Each route class writes its own program (``Route.snippet``) from a :class:`SnippetContext`; this module
holds what the programs share: literals of the golden inputs, the shared tf-idf preprocessing in each
language (the same steps as ``preprocessing.py`` and ``node_harness/src/preprocessing.*``), and the
frame that prints the outputs. Every program prints one JSON line: a list of ``{"shape", "data"}``,
one per output tensor, data flattened to numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .registry import TensorSpec

LANGUAGES = {"python": "python", "javascript": "javascript", "typescript": "typescript"}  # stack -> language


@dataclass(frozen=True)
class SnippetContext:
    """What a route needs to write its program: the artifact it loaded (after any conversion), the golden
    inputs as the system sends them, the tensor spec the model takes (after preprocessing), the shared
    preprocessing file of a ``separate`` variant, and facts the load found (e.g. a pickled object's family)."""

    cell: str
    route: str
    artifact: Path
    inputs: np.ndarray
    input_spec: TensorSpec
    preprocessing: Path | None = None
    facts: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # extra comment lines (the conversion command, the coercions made)

    @property
    def text(self) -> bool:
        return self.input_spec.dtype == "string"


def _header(ctx: SnippetContext, comment: str, language: str) -> str:
    lines = [f"exportconf snippet ({language}) for {ctx.cell}: route {ctx.route}",
             "generated from the route definition that ran; prints each output as {shape, data}",
             *ctx.notes]
    return "\n".join(f"{comment} {ln}" for ln in lines)


# ---- Python ----------------------------------------------------------------------------------------------

PY_TFIDF = '''
def tfidf(spec, texts):
    """The shared tf-idf: lower-case ASCII, tokens [a-z0-9_]{2,}, counts x idf, L2 norm, float32."""
    idf = np.asarray(spec["idf"], dtype=np.float64)
    out = np.zeros((len(texts), len(idf)))
    lower = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
    for i, text in enumerate(texts):
        for token in re.findall(r"[a-z0-9_]{2,}", str(text).translate(lower)):
            if token in spec["vocabulary"]:
                out[i, spec["vocabulary"][token]] += 1.0
    out *= idf
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out.astype(np.float32)
'''


def _py_dtype(spec: TensorSpec) -> str:
    return "object" if spec.dtype == "string" else f"np.{spec.dtype}"


def python_program(ctx: SnippetContext, imports: list[str], body: list[str], from_stdin: bool = False) -> str:
    """A Python program: ``body`` loads ``ARTIFACT`` and sets ``outputs`` from ``x`` (the model's input).

    With ``from_stdin`` the input arrives as JSON ``{"shape", "data"}`` on stdin, already preprocessed
    (what a bridge sends); else the golden inputs are literals and a separate variant's preprocessing runs here.
    """
    head = ["import json", *(["import re"] if ctx.preprocessing and not from_stdin else []),
            *(["import sys"] if from_stdin else []), "", "import numpy as np", *imports]
    lines = [_header(ctx, "#", "Python"), *head, "", f"ARTIFACT = {json.dumps(str(ctx.artifact))}"]
    if from_stdin:
        lines += ["sent = json.load(sys.stdin)",
                  f"x = np.array(sent['data'], dtype={_py_dtype(ctx.input_spec)}).reshape(sent['shape'])"]
    else:
        raw = ctx.inputs
        if ctx.preprocessing:
            lines += [PY_TFIDF, f"TEXTS = {json.dumps([str(t) for t in raw.reshape(-1)])}",
                      f"with open({json.dumps(str(ctx.preprocessing))}) as f:",
                      "    x = tfidf(json.load(f), TEXTS)"]
        elif raw.dtype.kind in "OUS":
            lines += [f"x = np.array({json.dumps([str(t) for t in raw.reshape(-1)])}, dtype=object)"]
        else:
            lines += [f"x = np.array({json.dumps(raw.astype(np.float64).tolist())}, dtype={_py_dtype(ctx.input_spec)})"]
    lines += ["", *body, "",
              'print(json.dumps([{"shape": list(np.shape(o)), "data": np.asarray(o, dtype=np.float64).reshape(-1)'
              '.tolist()} for o in outputs]))', ""]
    return "\n".join(lines)


# ---- JavaScript / TypeScript --------------------------------------------------------------------------------

JS_TFIDF = '''
// The shared tf-idf: lower-case ASCII, tokens [a-z0-9_]{2,}, counts x idf, L2 norm, float32.
function tfidf(spec{ts_spec}, texts{ts_texts}){ts_ret} {
  const n = spec.idf.length;
  const out = new Float32Array(texts.length * n);
  texts.forEach((text{ts_text}, i{ts_i}) => {
    const row = new Float64Array(n);
    const lower = text.replace(/[A-Z]/g, (c{ts_c}) => c.toLowerCase());
    for (const token of lower.match(/[a-z0-9_]{2,}/g) ?? []) {
      const j = spec.vocabulary[token];
      if (j !== undefined) row[j] = (row[j] ?? 0) + 1;
    }
    let norm = 0;
    for (let j = 0; j < n; j++) {
      row[j] = (row[j] ?? 0) * (spec.idf[j] ?? 0);
      norm += (row[j] ?? 0) ** 2;
    }
    norm = Math.sqrt(norm);
    for (let j = 0; j < n; j++) out[i * n + j] = norm > 0 ? (row[j] ?? 0) / norm : 0;
  });
  return out;
}
'''


def _tfidf_js(ts: bool) -> str:
    t = {"ts_spec": ": { vocabulary: Record<string, number>; idf: number[] }", "ts_texts": ": string[]",
         "ts_ret": ": Float32Array", "ts_text": ": string", "ts_i": ": number", "ts_c": ": string"}
    code = JS_TFIDF
    for k, v in t.items():
        code = code.replace("{" + k + "}", v if ts else "")
    return code


def js_inputs(ctx: SnippetContext, ts: bool) -> list[str]:
    """Declare ``SHAPE`` and ``DATA`` (number[] or string[]): the model's input, after preprocessing."""
    raw = ctx.inputs
    n = int(raw.shape[0])
    if ctx.preprocessing:
        return [_tfidf_js(ts),
                f"const TEXTS{': string[]' if ts else ''} = {json.dumps([str(t) for t in raw.reshape(-1)])};",
                f"const spec = JSON.parse(fs.readFileSync({json.dumps(str(ctx.preprocessing))}, \"utf8\"));",
                "const DATA = tfidf(spec, TEXTS);",
                "const SHAPE = [TEXTS.length, spec.idf.length];"]
    if raw.dtype.kind in "OUS":
        return [f"const DATA{': string[]' if ts else ''} = {json.dumps([str(t) for t in raw.reshape(-1)])};",
                f"const SHAPE = [{n}];"]
    return [f"const DATA = {json.dumps(raw.astype(np.float64).reshape(-1).tolist())};",
            f"const SHAPE = {json.dumps(list(raw.shape))};"]


def js_program(ctx: SnippetContext, ts: bool, imports: list[str], body: list[str]) -> str:
    """A JavaScript (ESM) or strict TypeScript program: ``body`` loads ``ARTIFACT``, feeds ``DATA`` of
    shape ``SHAPE`` and sets ``printed`` (a list of ``{shape, data}``)."""
    language = "TypeScript (strict)" if ts else "JavaScript (ESM)"
    imports = ['import fs from "node:fs";', *imports] if ctx.preprocessing else imports
    lines = [_header(ctx, "//", language), *dict.fromkeys(imports), "",
             f"const ARTIFACT = {json.dumps(str(ctx.artifact))};",
             *[ln for ln in js_inputs(ctx, ts) if ln], "", *body, "", "console.log(JSON.stringify(printed));", ""]
    return "\n".join(lines)


def js_print_type(ts: bool) -> str:
    return ": { shape: number[]; data: number[] }[]" if ts else ""
