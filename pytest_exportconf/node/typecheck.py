"""What a strict TypeScript project meets when it adds the harness's packages: tsc with the packages'
own ``.d.ts`` files checked (``skipLibCheck`` off), errors counted per package, and for each failing
package the extra ``lib`` setting (if any) that makes its definitions compile. The TypeScript stack
reports these as ``broken-types``, with tsc's lines as evidence."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .environment import NodeEnv

_TSC_ERROR = re.compile(r"^node_modules/((?:@[^/]+/)?[^/]+)/\S*?\(\d+,\d+\): error (TS\d+: .*)$")
TYPES_CHECK = "tsc --noEmit -p tsconfig.json --skipLibCheck false"
EXTRA_LIBS = (("dom",),)  # `lib` additions a Node project may be told to make for a package's types
EVIDENCE_LINES = 8


def _tsc_errors(env: NodeEnv, *extra: str) -> dict[str, list[str]]:
    """tsc's error lines per package whose .d.ts files they are in (errors inside TypeScript's own lib
    files are clashes some package caused, not that lib's)."""
    proc = env.tsc("--noEmit", "-p", "tsconfig.json", "--skipLibCheck", "false", *extra)
    out: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        m = _TSC_ERROR.match(line.strip())
        if m and not m.group(1).startswith(("typescript", "@typescript/")):
            out.setdefault(m.group(1), []).append(line.strip())
    return out


def library_type_check(env: NodeEnv) -> dict[str, Any]:
    """The check on the provisioned harness ``env``, as written to its ``types-check.json``."""
    plain = _tsc_errors(env)
    config = json.loads(re.sub(r"^\s*//.*$", "", (env.harness / "tsconfig.json").read_text(), flags=re.M))
    base_lib = [str(x) for x in config.get("compilerOptions", {}).get("lib", ["es2022"])]
    fixed_by: dict[str, list[str]] = {}
    for libs in EXTRA_LIBS:
        with_libs = _tsc_errors(env, "--lib", ",".join([*base_lib, *libs]))
        for pkg in plain:
            if pkg not in with_libs and pkg not in fixed_by:
                fixed_by[pkg] = list(libs)
    packages = {pkg: {"errors": len(lines), "first": lines[0][:300], "lines": [x[:300] for x in lines[:EVIDENCE_LINES]],
                      "needs_lib": fixed_by.get(pkg, [])} for pkg, lines in plain.items()}
    return {"command": TYPES_CHECK, "packages": packages}
