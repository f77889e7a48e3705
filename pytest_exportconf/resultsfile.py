"""Reading results files (``exportconf-results/1``) through their published JSON Schema.

The schema ships in the package (``schema/results-1.json``) and in ``docs/results-schema-1.json``.
It is strict on what ``exportconf merge`` and ``exportconf diff`` read (the schema name, the cells, each
cell's coordinates, grade, reason and friction kinds) and open elsewhere: fields are only ever added
within a schema version, so a newer plugin's file still validates here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA = "exportconf-results/1"
SCHEMA_FILE = Path(__file__).resolve().parent / "schema" / "results-1.json"
KNOWN = {SCHEMA: SCHEMA_FILE}


class ResultsError(ValueError):
    """A file that is not a readable results file of a known schema version."""


@cache
def schema_document(name: str = SCHEMA) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(KNOWN[name].read_text())
    return doc


def validation_errors(doc: Any, name: str = SCHEMA, limit: int = 5) -> list[str]:
    """The schema violations of ``doc`` (at most ``limit``), each as 'where: what'; empty when valid."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema_document(name))
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    out = []
    for e in errors[:limit]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path) or "(top level)"
        out.append(f"{where.lstrip('.')}: {e.message[:300]}")
    if len(errors) > limit:
        out.append(f"... and {len(errors) - limit} more")
    return out


def check(doc: Any, source: str = "results") -> None:
    """Raise :class:`ResultsError` unless ``doc`` is a valid results document of a known schema."""
    if not isinstance(doc, dict) or "schema" not in doc:
        raise ResultsError(f"{source}: not an exportconf results file (no top-level 'schema' field)")
    name = doc["schema"]
    if name not in KNOWN:
        raise ResultsError(f"{source}: unknown schema {name!r}; this exportconf reads "
                           + ", ".join(sorted(KNOWN)) + " (upgrade exportconf to read newer files)")
    errors = validation_errors(doc, name)
    if errors:
        raise ResultsError(f"{source}: does not match the {name} schema ({SCHEMA_FILE.name}):\n  "
                           + "\n  ".join(errors))


@dataclass
class Results:
    """One validated results file."""

    path: Path
    doc: dict[str, Any]
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The run's name: its ``env`` label (tox env, CI job) or else the file's stem."""
        return str(self.doc.get("env") or self.path.stem)

    @property
    def created(self) -> str:
        return str(self.doc.get("created", ""))

    def versions(self) -> dict[str, str]:
        """Every version the run recorded, flat: framework distributions, converter tools (prefixed by the
        tool), the runtimes seen in the load workers, and Python."""
        out: dict[str, str] = {}
        for dists in self.doc.get("frameworks", {}).values():
            for dist, version in dists.items():
                if version != "not installed":
                    out[dist] = version
        for tool, info in self.doc.get("tools", {}).items():
            for dist, version in (info.get("versions") or {}).items():
                out[f"{tool}:{dist}"] = str(version)
        seen: dict[str, set[str]] = {}
        for cell in self.cells.values():
            for producer in cell.get("producers", []):
                for attempt in producer.get("attempts", []):
                    for dist, version in (attempt.get("versions") or {}).items():
                        seen.setdefault(dist, set()).add(str(version))
        for dist, versions in seen.items():
            out.setdefault(dist, "/".join(sorted(versions)))
        if "python" in self.doc:
            out["python"] = str(self.doc["python"])
        return out


def load(path: str | Path) -> Results:
    """Read and validate one results file; :class:`ResultsError` says why a file is refused."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ResultsError(f"{p}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ResultsError(f"{p}: corrupt (not UTF-8 text: {e.reason} at byte {e.start})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ResultsError(f"{p}: corrupt (not JSON: {e.msg}, line {e.lineno} column {e.colno})") from None
    check(doc, str(p))
    return Results(p, doc, {c["cell"]: c for c in doc["cells"]})
