"""``exportconf merge RESULTS... -o drift.html [--markdown FILE] [--history DIR]``: one view across runs.

Rows are cells, columns are runs (tox envs, CI jobs), each column labelled by the versions that differ
between the runs. An entry whose grade differs from the column before it is highlighted with the
frictions that changed (and the error when nothing passed). With ``--history DIR`` every merged run is
kept in DIR, and the report shows per cell the run and the version change at which its grade moved.
"""

from __future__ import annotations

import html
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .diff import _short, friction_delta, primary_failure, version_changes
from .resultsfile import Results, ResultsError, load

# versions that identify a run but never explain drift on their own
QUIET_VERSIONS = ("python",)


@dataclass
class Entry:
    grade: str | None  # None: the run did not measure this cell
    changed: bool = False  # differs from the previous column's grade
    delta: str = ""  # friction change vs the previous column, or why nothing passed
    reason: str = ""


@dataclass(frozen=True)
class Move:
    """A cell's grade moved between two consecutive history runs of one environment."""

    cell: str
    env: str
    run: str
    old: str | None
    new: str | None
    versions: tuple[str, ...]
    why: str


@dataclass
class Drift:
    runs: list[Results]
    refused: list[str] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    history_runs: list[str] = field(default_factory=list)

    @property
    def cells(self) -> list[str]:
        return sorted({c for r in self.runs for c in r.cells})

    def differing_versions(self) -> list[str]:
        """Version keys whose value is not the same in every run (not recorded counts as a value)."""
        per_run = [r.versions() for r in self.runs]
        keys = sorted({k for v in per_run for k in v})
        return [k for k in keys if len({v.get(k) for v in per_run}) > 1]

    def labels(self) -> list[tuple[str, list[str]]]:
        """(run name, ['tensorflow-cpu 2.16.2', ...]) per column: only the versions that differ."""
        keys = self.differing_versions()
        loud = [k for k in keys if k not in QUIET_VERSIONS] or keys
        out = []
        for r in self.runs:
            v = r.versions()
            out.append((r.name, [f"{k} {v.get(k, 'not recorded')}" for k in loud]))
        return out

    def row(self, cell: str) -> list[Entry]:
        entries: list[Entry] = []
        prev: dict[str, Any] | None = None
        for r in self.runs:
            c = r.cells.get(cell)
            if c is None:
                entries.append(Entry(None, changed=prev is not None, delta="not measured"))
                continue
            e = Entry(c["grade"], reason=c.get("reason", ""))
            if prev is not None and prev["grade"] != c["grade"]:
                e.changed = True
                parts = [d] if (d := friction_delta(prev, c)) else []
                if (failure := primary_failure(c)) and failure != primary_failure(prev):
                    parts.append(_short(failure, 160))
                if c["grade"] == "--":
                    parts.append(c.get("reason", ""))
                e.delta = "; ".join(parts) or c.get("reason", "")
            elif prev is None and entries:
                e.changed, e.delta = True, "newly measured"
            entries.append(e)
            prev = c
        return entries

    def drifting(self) -> list[str]:
        return [c for c in self.cells if len({e.grade for e in self.row(c)}) > 1]

    def moves_of(self, cell: str) -> list[Move]:
        return [m for m in self.moves if m.cell == cell]


# ---- history -----------------------------------------------------------------------------------------

def record_history(history: Path, runs: list[Results]) -> str:
    """Copy this merge's (valid) results files into a new numbered run directory; return its name."""
    history.mkdir(parents=True, exist_ok=True)
    existing = sorted(p.name for p in history.iterdir() if p.is_dir() and p.name[:4].isdigit())
    number = int(existing[-1][:4]) + 1 if existing else 1
    stamp = max((r.created for r in runs), default="")[:19].replace(":", "").replace("-", "")
    name = f"{number:04d}" + (f"-{stamp}" if stamp else "")
    target = history / name
    target.mkdir()
    for r in runs:
        dest = target / f"{r.name}.json"
        n = 2
        while dest.exists():  # two runs with one name (e.g. the same env from two machines)
            dest, n = target / f"{r.name}-{n}.json", n + 1
        shutil.copyfile(r.path, dest)
    return name


def read_history(history: Path, refused: list[str]) -> list[tuple[str, list[Results]]]:
    out = []
    for run_dir in sorted(p for p in history.iterdir() if p.is_dir() and p.name[:4].isdigit()):
        runs = []
        for f in sorted(run_dir.glob("*.json")):
            try:
                runs.append(load(f))
            except ResultsError as e:
                refused.append(str(e))
        out.append((run_dir.name, runs))
    return out


def history_moves(history: list[tuple[str, list[Results]]]) -> list[Move]:
    """Per environment, walk its runs in order; record each grade move with the versions that changed."""
    last: dict[str, tuple[str, Results]] = {}
    moves: list[Move] = []
    for run_name, runs in history:
        for r in runs:
            before = last.get(r.name)
            if before is not None:
                prev = before[1]
                versions = tuple(version_changes(prev, r))
                for cell in sorted(set(prev.cells) | set(r.cells)):
                    a, b = prev.cells.get(cell), r.cells.get(cell)
                    ga, gb = (a or {}).get("grade"), (b or {}).get("grade")
                    if ga == gb:
                        continue
                    why = (friction_delta(a, b) or b.get("reason", "")) if a and b else (
                        "newly measured" if b else "not measured")
                    moves.append(Move(cell, r.name, run_name, ga, gb, versions, why))
            last[r.name] = (run_name, r)
    return moves


def merge(paths: list[Path], history: Path | None = None) -> Drift:
    """Load every file (refusing, with the reason, those that are corrupt or of an unknown schema);
    with ``history``, keep this merge as a new run there and read every run kept so far."""
    refused: list[str] = []
    runs: list[Results] = []
    for p in paths:
        try:
            runs.append(load(p))
        except ResultsError as e:
            refused.append(str(e))
    drift = Drift(runs, refused)
    if history is not None:
        if runs:
            record_history(history, runs)
        if history.is_dir():
            kept = read_history(history, drift.refused)
            drift.history_runs = [name for name, _ in kept]
            drift.moves = history_moves(kept)
            if not runs and kept:
                drift.runs = kept[-1][1]  # no new files: report the latest kept run
    return drift


# ---- rendering ---------------------------------------------------------------------------------------

def md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def _md_entry(e: Entry) -> str:
    if e.grade is None:
        return "·"
    text = f"`{e.grade}`"
    if e.changed:
        text = f"**{text}** :warning: {md_escape(e.delta[:160])}"
    return text


def _move_text(m: Move) -> str:
    versions = "; ".join(m.versions) if m.versions else "no recorded version changed"
    return f"run {m.run}, {m.env}: {m.old or '(none)'} -> {m.new or '(none)'} ({versions}): {m.why}"


def render_markdown(d: Drift) -> str:
    labels = d.labels()
    drifting = d.drifting()
    lines = [f"### exportconf drift: {len(drifting)} of {len(d.cells)} cells change grade across "
             f"{len(d.runs)} runs", ""]
    for name, versions in labels:
        lines.append(f"- **{md_escape(name)}**: {md_escape(', '.join(versions)) or 'same versions'}")
    lines.append("")

    def table(cells: list[str]) -> list[str]:
        out = ["| cell | " + " | ".join(md_escape(n) for n, _ in labels) + " |",
               "|---|" + "---|" * len(labels)]
        for cell in cells:
            out.append(f"| `{cell}` | " + " | ".join(_md_entry(e) for e in d.row(cell)) + " |")
        return out

    if drifting:
        lines += table(drifting)
    else:
        lines.append("No cell changes grade between these runs.")
    lines += ["", f"<details><summary>All {len(d.cells)} cells</summary>", "", *table(d.cells), "", "</details>"]
    if d.moves:
        lines += ["", f"#### History ({len(d.history_runs)} runs kept)", "", "| cell | moved at |", "|---|---|"]
        lines += [f"| `{m.cell}` | {md_escape(_move_text(m))} |" for m in d.moves]
    if d.refused:
        lines += ["", "#### Refused files", ""] + [f"- {md_escape(r)}" for r in d.refused]
    return "\n".join(lines) + "\n"


CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.3em .6em;vertical-align:top;text-align:left}
th.run{min-width:9em}
th .v{display:block;font-weight:normal;font-size:.8em;color:#555}
td.g{font-family:monospace;font-weight:bold;font-size:1.1em;text-align:center}
td.changed{background:#fff3b0;outline:2px solid #d9a400}
td .delta{display:block;font-family:system-ui,sans-serif;font-weight:normal;font-size:.78em;color:#7a4b00;
  max-width:22em;text-align:left}
.g-pp{color:#0a7a0a}.g-p{color:#4a8a00}.g-m{color:#b86e00}.g-mm{color:#b00020}.g-none{color:#999}
tr.drifts td.cell{font-weight:bold}
.refused{color:#b00020}
"""
GRADE_CLASS = {"++": "g-pp", "+": "g-p", "-": "g-m", "--": "g-mm"}


def render_html(d: Drift) -> str:
    e = html.escape
    labels = d.labels()
    drifting = set(d.drifting())
    head = "".join(f"<th class='run'>{e(n)}" + "".join(f"<span class='v'>{e(v)}</span>" for v in vs) + "</th>"
                   for n, vs in labels)
    if d.moves:
        head += "<th>grade moved at (history)</th>"
    rows = []
    for cell in sorted(d.cells, key=lambda c: (c not in drifting, c)):
        tds = []
        for en in d.row(cell):
            cls = "g " + (GRADE_CLASS.get(en.grade, "") if en.grade else "g-none") + (" changed" if en.changed else "")
            body = e(en.grade) if en.grade else "&middot;"
            if en.changed:
                body += f"<span class='delta'>{e(en.delta)}</span>"
            tds.append(f"<td class='{cls}' title='{e(en.reason or en.delta, quote=True)}'>{body}</td>")
        if d.moves:
            tds.append("<td>" + "<br>".join(e(_move_text(m)) for m in d.moves_of(cell)) + "</td>")
        cls = " class='drifts'" if cell in drifting else ""
        rows.append(f"<tr{cls}><td class='cell'>{e(cell)}</td>{''.join(tds)}</tr>")
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>exportconf drift</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>exportconf drift</h1><p>{len(drifting)} of {len(d.cells)} cells change grade across "
        f"{len(d.runs)} runs. Columns are labelled by the versions that differ between runs; a highlighted "
        "entry differs from the column before it, with the frictions that changed "
        "(<code>+kind</code> added, <code>-kind</code> gone) or why nothing passed. Hover for the full reason.</p>",
        f"<table><thead><tr><th>cell</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>",
    ]
    if d.history_runs:
        parts.append(f"<p>History: {len(d.history_runs)} runs kept ({e(', '.join(d.history_runs))}).</p>")
    if d.refused:
        parts.append("<h2 class='refused'>Refused files</h2><ul>"
                     + "".join(f"<li class='refused'><pre>{e(r)}</pre></li>" for r in d.refused) + "</ul>")
    versions = {r.name: r.versions() for r in d.runs}
    parts.append("<details><summary>All recorded versions</summary><pre>"
                 f"{e(json.dumps(versions, indent=1))}</pre></details></body></html>")
    return "".join(parts)
