"""The exportconf section of the pytest-html report (registered only when pytest-html is present)."""

from __future__ import annotations

from html import escape
from typing import Any

import pytest

from .. import rubric, study
from ..concepts import Attempt, Outcome
from ..state import STATE, State
from . import charts, system_html
from .matrix import grade_counts, human_size, matrices

COLOURS = {"++": "#1a7f37", "+": "#7cb342", "-": "#f0a202", "--": "#cf222e"}
CSS = """
.ec table{border-collapse:collapse;margin:.5em 0 1.2em}.ec th,.ec td{border:1px solid #ccc;padding:4px 8px;
vertical-align:top;text-align:left}.ec .g{font-weight:bold;font-size:1.3em}.ec .nm{color:#888;font-style:italic}
.ec .why{font-size:.85em;max-width:28em}.ec details{margin:.3em 0}.ec .err{color:#cf222e;white-space:pre-wrap;
font-family:monospace;font-size:.8em;max-width:60em}.ec .small{font-size:.85em}.ec code{font-size:.85em}
"""


def _e(x: Any) -> str:
    return escape(str(x))


def _grade(g: str) -> str:
    return f'<span class="g" style="color:{COLOURS.get(g, "#000")}">{_e(g)}</span>'


def _frictions(o_frictions: list[Any]) -> str:
    if not o_frictions:
        return "no friction"
    return ", ".join(f"<span title='{_e(f.evidence)}'>{_e(f.kind)} ({rubric.FRICTIONS.get(f.kind, ('?',))[0]}, "
                     f"{_e(f.source)})</span>" for f in o_frictions)


def _evidence(f: Any) -> str:
    label = "evidence" if f.source == "observed" else "documented fact"
    return f" <span class='small'>[{label}: {_e(f.evidence[:600])}]</span>" if f.evidence else ""


def frictions_html(frictions: list[Any]) -> str:
    """The winning attempt's frictions, each with its source (observed / declared) and evidence."""
    if not frictions:
        return "<p class='small'>No friction.</p>"
    items = "".join(f"<li><b>{_e(f.kind)}</b> ({rubric.FRICTIONS.get(f.kind, ('?',))[0]}, {_e(f.source)}): "
                    f"{_e(f.detail)}{_evidence(f)}</li>" for f in frictions)
    return f"<ul class='small'>{items}</ul>"


def snippet_html(o: Outcome) -> str:
    if not o.snippet:
        return ""
    return (f"<details><summary>Runnable snippet ({_e(o.snippet_language)}, generated from the winning route "
            f"<code>{_e(o.winner)}</code>)</summary><pre class='small'>{_e(o.snippet)}</pre></details>")


def matrix_html(state: State) -> str:
    parts = []
    for m in matrices(state):
        if m.empty_reason:
            parts.append(f"<h3>{_e(m.heading)}</h3><p>No cell to measure: {_e(m.empty_reason)}.</p>")
            continue
        head = "".join(f"<th>{_e(c.label)}</th>" for c in m.columns)
        rows = []
        for row in m.rows:
            tds = []
            for col, o in zip(m.columns, row.cells, strict=True):
                if o is None:
                    label = "not measured" if not col.measured else "no result"
                    tds.append(f'<td class="nm">{label}</td>')
                    continue
                bg = COLOURS.get(o.level_grade, "#fff") + "22"
                level = ""
                if o.system_grade is not None:
                    level = (f' <span class="small">runtime</span> / {_grade(o.system_grade)} '
                             '<span class="small">system</span>')
                why = (o.system_level or {}).get("reason") if o.system_level else None
                study_grade = f'<span class="small">study: {_e(o.study_grade or "n/a")}</span>' if m.in_study else ""
                tds.append(f'<td style="background:{bg}">{_grade(o.grade)}{level} {study_grade}{_verdict(o.verdict)}'
                           f'<div class="why">{_e(o.reason)}</div>'
                           + (f'<div class="why">system: {_e(why)}</div>' if why else "") + "</td>")
            rows.append(f"<tr><th>{_e(row.label)}</th>{''.join(tds)}</tr>")
        parts.append(f"<h3>{_e(m.heading)}</h3><table><tr><th>format</th>{head}</tr>{''.join(rows)}</table>")
    return "".join(parts)


def sizes_html(state: State) -> str:
    """One table per system: the formats and producers that exist for it, the study's sizes beside
    for the study's own systems."""
    parts = []
    for system in state.selection.systems:
        sys_ = state.registry.systems[system]
        measured: dict[str, dict[str, str]] = {}  # format -> producer -> size
        for fmt in state.selection.formats:
            # one size per producer: of the export that ran in the first stack of the run (Python first)
            for stack in state.selection.stacks:
                o = state.outcomes.get(f"{system}/{fmt}/{stack}")
                for p in o.producers if o else []:
                    if p.size_bytes is not None:
                        mark = "<b>{}</b>" if p.primary else "{}"
                        measured.setdefault(fmt, {}).setdefault(p.framework, mark.format(_e(human_size(p.size_bytes))))
        if not measured:
            continue
        producers = [fw for fw in state.selection.frameworks + [f for f in sys_.frameworks]
                     if any(fw in sizes for sizes in measured.values())]
        producers = list(dict.fromkeys(producers))
        study_sizes = study.SIZES.get(system, {}) if sys_.in_study else None
        head = ("<th>study (Tables II/III)</th>" if study_sizes is not None else "") + "".join(
            f"<th>{_e(fw)}</th>" for fw in producers)
        rows = []
        for fmt, sizes in measured.items():
            study_cell = f"<td>{_e(study_sizes.get(fmt, 'n/a'))}</td>" if study_sizes is not None else ""
            cells = "".join(f"<td>{sizes.get(fw, '-')}</td>" for fw in producers)
            rows.append(f"<tr><th>{_e(state.registry.formats[fmt].label)}</th>{study_cell}{cells}</tr>")
        parts.append(f"<h4>{_e(sys_.label)}</h4><table><tr><th>format</th>{head}</tr>{''.join(rows)}</table>")
    return "<p class='small'>Measured size of each producer's export (bold: the primary framework): the " \
           "variant that ran in the first stack measured (Python when selected).</p>" + "".join(parts)


def differences_html(state: State) -> str:
    """Only the study's own systems have a study grade to differ from."""
    compared = [o for o in state.outcomes.values() if o.study_grade]
    items = []
    for o in sorted(compared, key=lambda o: o.cell):
        if o.study_grade == o.level_grade:
            continue
        better = rubric.rank(o.level_grade) < rubric.rank(o.study_grade or o.level_grade)
        why = "".join(f"<li>{_e(f.kind)} ({rubric.FRICTIONS.get(f.kind, ('?',))[0]}, {_e(f.source)}): "
                      f"{_e(f.detail)}{_evidence(f)}</li>" for f in o.frictions)
        why += "".join(f"<li>{_e(f['kind'])} (system level): {_e(f['detail'])}</li>"
                       for f in (o.system_level or {}).get("frictions", []))
        why = f"<ul>{why}</ul>" if why else " nothing got in the way."
        failed = [f"{p.framework}/{a.variant}/{a.route}: {a.error.splitlines()[0][:160]}"
                  for p in o.producers for a in p.attempts if not a.ok and a.error]
        tried = f"<div class='small'>routes that failed first: {_e('; '.join(failed))}</div>" if failed else ""
        level = "system" if o.system_grade is not None else "runtime"
        items.append(f"<li><code>{_e(o.cell)}</code>: measured {_grade(o.level_grade)} ({level} level), "
                     f"study {_e(o.study_grade)} "
                     f"({'better' if better else 'worse'}). {_e(o.reason)}. Frictions:{why}{tried}</li>")
    if items:
        return f"<ul>{''.join(items)}</ul>"
    return "<p>Every measured cell matches the study.</p>" if compared else ""


def _attempt_row(a: Attempt) -> str:
    def num(v: float | None, fmt: str) -> str:
        return format(v, fmt) if v is not None else "-"

    status = "pass" if a.ok else "fail"
    return (f"<tr><td>{_e(a.variant)}</td><td>{_e(a.route)}</td><td>{_e(a.kind)}</td><td>{status}</td>"
            f"<td>{_frictions(a.frictions)}</td><td>{num(a.max_abs_error, '.2g')}</td>"
            f"<td>{num(a.min_atol, '.2g')}</td><td>{num(a.import_ms, '.0f')}</td><td>{num(a.load_ms, '.1f')}</td>"
            f"<td>{num(a.p50_ms, '.3f')}</td><td class='small'>"
            + _e(", ".join(f"{k} {v}" for k, v in a.versions.items())) + "</td></tr>"
            + (f"<tr><td></td><td colspan='10' class='err'>{_e(a.error[:3000])}</td></tr>" if a.error else "")
            + "".join(f"<tr><td></td><td colspan='10' class='small'>{_e(n[:1500])}</td></tr>" for n in a.notes))


def _verdict(label: str) -> str:
    """The scan verdict beside a grade (never part of it)."""
    if not label:
        return ""
    colour = "#070" if label.startswith(("clean", "nothing")) else "#b00"
    return f' <span class="small" style="color:{colour}" title="scan verdict">scan: {_e(label[:200])}</span>'


def _security(p: Any) -> str:
    items = [f"<li>{_e(v)}: {_e(s.get('label', ''))}"
             + (f" (trusted {_e(s['trusted'])})" if s.get("trusted") else "")
             + (f" <span class='small'>by {_e(', '.join(s.get('scanners', [])))}; "
                f"{_e('; '.join(s.get('notes', []))[:1500])}</span>" if s.get("notes") else "") + "</li>"
             for v, s in p.scans.items()]
    items += [f"<li class='err'>{_e(r)}</li>" for r in p.refused]
    items += [f"<li>cache: {_e(i)}</li>" for i in p.integrity]
    return f"<ul class='small'>{''.join(items)}</ul>" if items else ""


def notes_html(o: Outcome) -> str:
    parts = [f"<p>{_e(o.reason)}</p>", frictions_html(o.frictions), snippet_html(o)]
    if o.warnings:
        parts.append("<p class='small'>Warnings the frameworks raised while this cell was measured:</p>"
                     "<ul class='small'>" + "".join(f"<li>{_e(w)}</li>" for w in o.warnings) + "</ul>")
    if o.executes_code_on_load:
        parts.append("<p class='small'>Security: this format can execute code when loaded; its artifacts are "
                     "scanned before loading and loaded in a sandboxed child (reported beside the grade, not part "
                     f"of it). Verdict: {_e(o.verdict or 'not scanned')}.</p>")
    head = ("<tr><th>variant</th><th>route</th><th>kind</th><th>result</th><th>frictions</th><th>max abs err</th>"
            "<th>min atol</th><th>import ms</th><th>load ms</th><th>p50 ms</th><th>versions</th></tr>")
    for p in o.producers:
        role = "primary" if p.primary else "other producer"
        parts.append(f"<h5>{_e(p.framework)} ({role}): {_grade(p.grade)} — "
                     f"{_e(p.exporter or 'not exported')}, {_e(human_size(p.size_bytes))}</h5>")
        if p.export_error:
            parts.append(f"<div class='err'>{_e(p.export_error[:3000])}</div>")
        parts.append(_security(p))
        if p.attempts:
            parts.append(f"<table>{head}{''.join(_attempt_row(a) for a in p.attempts)}</table>")
    return "".join(parts)


def section(state: State) -> str:
    counts = grade_counts(state)
    legend = "".join(f"<li>{_grade(g)} {_e(m)}</li>" for g, m in rubric.GRADE_MEANING.items())
    notes = "".join(f"<details><summary><code>{_e(c)}</code> {_grade(o.grade)}</summary>{notes_html(o)}</details>"
                    for c, o in sorted(state.outcomes.items()))
    return (f"<div class='ec'><style>{CSS}</style><h2>exportconf: ease of integration</h2>"
            f"<p>{len(state.outcomes)} cells: " + ", ".join(f"{counts.get(g, 0)} {_e(g)}" for g in rubric.GRADES)
            + f". Results file: <code>{_e(state.results_path)}</code>.</p><ul class='small'>{legend}</ul>"
            + matrix_html(state) + "<h3>Sizes</h3>" + sizes_html(state)
            + charts.section(state) + system_html.section(state)
            + (f"<h3>Where the measurement differs from the study</h3>{diffs}" if (diffs := differences_html(state))
               else "")
            + "<h3>Field notes per cell</h3>" + notes + "</div>")


def pytest_html_results_summary(prefix: list[str], summary: list[str], postfix: list[str],
                                session: pytest.Session) -> None:
    state = session.config.stash.get(STATE, None)
    if state is not None:
        prefix.append(section(state))


def pytest_html_report_title(report: Any) -> None:
    report.title = "exportconf: model export format conformance"


def pytest_html_results_table_header(cells: list[str]) -> None:
    cells.insert(2, "<th>Grade</th>")
    cells.insert(3, "<th>Reason</th>")


def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    props = dict(getattr(report, "user_properties", []))
    grade, reason = props.get("exportconf_grade"), props.get("exportconf_reason")
    cells.insert(2, f"<td>{_grade(grade) if isinstance(grade, str) else ''}</td>")
    cells.insert(3, f"<td class='small'>{_e(reason) if isinstance(reason, str) else ''}</td>")
