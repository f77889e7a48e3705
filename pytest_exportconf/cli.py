"""The ``exportconf`` command (also ``python -m pytest_exportconf``): merge and diff results files.

::

    exportconf merge results/*.json -o drift.html --markdown drift.md [--history DIR]
    exportconf diff main.json pr.json [--fail-on missing] [--markdown FILE]

Exit status: ``merge`` 0, or 2 when a file was refused (the others are still merged and written);
``diff`` 1 on a failing change (any downgrade, plus the kinds named by ``--fail-on``), 2 when a file
cannot be read, 0 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import diff as diffmod
from . import merge as mergemod
from .fsutil import atomic_write_text
from .resultsfile import ResultsError, load


def _write(target: str, text: str) -> None:
    """Write to a file, '-' for stdout; a Markdown target of '$GITHUB_STEP_SUMMARY' style is appended to."""
    if target == "-":
        sys.stdout.write(text)
        return
    path = Path(target)
    if os.environ.get("GITHUB_STEP_SUMMARY") and path == Path(os.environ["GITHUB_STEP_SUMMARY"]):
        with path.open("a", encoding="utf-8") as f:  # the step summary collects every step's text
            f.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)


def cmd_merge(args: argparse.Namespace) -> int:
    history = Path(args.history) if args.history else None
    if not args.results and history is None:
        print("exportconf merge: give results files, or --history DIR", file=sys.stderr)
        return 2
    d = mergemod.merge([Path(p) for p in args.results], history)
    for r in d.refused:
        print(f"exportconf merge: refused {r}", file=sys.stderr)
    if not d.runs:
        print("exportconf merge: no readable results file; nothing written", file=sys.stderr)
        return 2
    if args.output:
        _write(args.output, mergemod.render_html(d))
    if args.markdown:
        _write(args.markdown, mergemod.render_markdown(d))
    drifting = d.drifting()
    print(f"exportconf merge: {len(d.runs)} runs, {len(d.cells)} cells, {len(drifting)} change grade"
          + (f"; written to {args.output}" if args.output else "")
          + (f"; markdown to {args.markdown}" if args.markdown and args.markdown != "-" else ""))
    for cell in drifting:
        grades = " ".join(e.grade or "." for e in d.row(cell))
        print(f"  {cell}: {grades}")
    for m in d.moves:
        print(f"  history: {m.cell}: {mergemod._move_text(m)}")
    return 2 if d.refused else 0


def cmd_diff(args: argparse.Namespace) -> int:
    try:
        fail_on = diffmod.parse_fail_on(args.fail_on or "")
    except ValueError as e:
        print(f"exportconf diff: {e}", file=sys.stderr)
        return 2
    try:
        old, new = load(args.old), load(args.new)
    except ResultsError as e:
        print(f"exportconf diff: {e}", file=sys.stderr)
        return 2
    d = diffmod.diff(old, new)
    print(diffmod.render_text(d, fail_on))
    if args.markdown:
        _write(args.markdown, diffmod.render_markdown(d, fail_on))
    return 1 if diffmod.failing(d, fail_on) else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="exportconf", description="Merge and compare exportconf results files.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{merge,diff}")
    m = sub.add_parser("merge", help="one drift view across results files (tox envs, CI jobs)",
                       description="Rows are cells, columns are runs labelled by the versions that differ.")
    m.add_argument("results", nargs="*", help="results files (exportconf-results/1)")
    m.add_argument("-o", "--output", metavar="HTML", help="write the drift report as HTML")
    m.add_argument("--markdown", metavar="FILE", help="write it as Markdown ('-' for stdout; "
                   "$GITHUB_STEP_SUMMARY is appended to)")
    m.add_argument("--history", metavar="DIR", help="keep this merge as a new run in DIR and report, per cell, "
                   "the run and version change at which its grade moved")
    m.set_defaults(func=cmd_merge)
    d = sub.add_parser("diff", help="downgrades, upgrades, new and missing cells between two runs",
                       description="Exit status 1 on any downgrade (and on the kinds --fail-on adds).")
    d.add_argument("old", help="the reference results (e.g. the previous main's)")
    d.add_argument("new", help="the results to check")
    d.add_argument("--fail-on", metavar="KINDS", default="",
                   help=f"also fail on these kinds, comma-separated: {', '.join(diffmod.KINDS[1:])}")
    d.add_argument("--markdown", metavar="FILE", help="also write the diff as Markdown ('-' for stdout)")
    d.set_defaults(func=cmd_diff)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
