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
    return ", ".join(f"{_e(f.kind)} ({rubric.FRICTIONS.get(f.kind, ('?',))[0]})" for f in o_frictions)


def matrix_html(state: State) -> str:
    parts = []
    for m in matrices(state):
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
                tds.append(f'<td style="background:{bg}">{_grade(o.grade)}{level} '
                           f'<span class="small">study: {_e(o.study_grade or "n/a")}</span>'
                           f'<div class="why">{_e(o.reason)}</div>'
                           + (f'<div class="why">system: {_e(why)}</div>' if why else "") + "</td>")
            rows.append(f"<tr><th>{_e(row.label)}</th>{''.join(tds)}</tr>")
        parts.append(f"<h3>{_e(m.label)} <code>{_e(m.system)}</code></h3>"
                     f"<table><tr><th>format</th>{head}</tr>{''.join(rows)}</table>")
    return "".join(parts)


def sizes_html(state: State) -> str:
    parts = []
    frameworks = state.selection.frameworks
    for system in state.selection.systems:
        sizes = study.SIZES.get(system, {})
        head = "".join(f"<th>{_e(fw)}</th>" for fw in frameworks)
        rows = []
        for fmt in state.selection.formats:
            measured: dict[str, str] = {}
            # one size per producer: of the export that ran in the first stack of the run (Python first)
            for stack in state.selection.stacks:
                o = state.outcomes.get(f"{system}/{fmt}/{stack}")
                for p in o.producers if o else []:
                    if p.size_bytes is not None:
                        mark = "<b>{}</b>" if p.primary else "{}"
                        measured.setdefault(p.framework, mark.format(_e(human_size(p.size_bytes))))
            cells = "".join(f"<td>{measured.get(fw, '-')}</td>" for fw in frameworks)
            rows.append(f"<tr><th>{_e(state.registry.formats[fmt].label)}</th>"
                        f"<td>{_e(sizes.get(fmt, 'n/a'))}</td>{cells}</tr>")
        parts.append(f"<h4>{_e(system)}</h4><table><tr><th>format</th><th>study (Tables II/III)</th>{head}</tr>"
                     f"{''.join(rows)}</table>")
    return "<p class='small'>Measured size of each producer's export (bold: the primary framework): the " \
           "variant that ran in the first stack measured (Python when selected).</p>" + "".join(parts)


def differences_html(state: State) -> str:
    items = []
    for cell, o in sorted(state.outcomes.items()):
        if not o.study_grade or o.study_grade == o.level_grade:
            continue
        better = rubric.rank(o.level_grade) < rubric.rank(o.study_grade)
        why = "".join(f"<li>{_e(f.kind)} ({rubric.FRICTIONS.get(f.kind, ('?',))[0]}): {_e(f.detail)}</li>"
                      for f in o.frictions)
        why += "".join(f"<li>{_e(f['kind'])} (system level): {_e(f['detail'])}</li>"
                       for f in (o.system_level or {}).get("frictions", []))
        why = f"<ul>{why}</ul>" if why else " nothing got in the way."
        failed = [f"{p.framework}/{a.variant}/{a.route}: {a.error.splitlines()[0][:160]}"
                  for p in o.producers for a in p.attempts if not a.ok and a.error]
        tried = f"<div class='small'>routes that failed first: {_e('; '.join(failed))}</div>" if failed else ""
        level = "system" if o.system_grade is not None else "runtime"
        items.append(f"<li><code>{_e(cell)}</code>: measured {_grade(o.level_grade)} ({level} level), "
                     f"study {_e(o.study_grade)} "
                     f"({'better' if better else 'worse'}). {_e(o.reason)}. Frictions:{why}{tried}</li>")
    return f"<ul>{''.join(items)}</ul>" if items else "<p>Every measured cell matches the study.</p>"


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


def notes_html(o: Outcome) -> str:
    parts = [f"<p>{_e(o.reason)}</p>"]
    if o.executes_code_on_load:
        parts.append("<p class='small'>Security: this format can execute code when loaded "
                     "(reported beside the grade, not part of it).</p>")
    head = ("<tr><th>variant</th><th>route</th><th>kind</th><th>result</th><th>frictions</th><th>max abs err</th>"
            "<th>min atol</th><th>import ms</th><th>load ms</th><th>p50 ms</th><th>versions</th></tr>")
    for p in o.producers:
        role = "primary" if p.primary else "other producer"
        parts.append(f"<h5>{_e(p.framework)} ({role}): {_grade(p.grade)} — "
                     f"{_e(p.exporter or 'not exported')}, {_e(human_size(p.size_bytes))}</h5>")
        if p.export_error:
            parts.append(f"<div class='err'>{_e(p.export_error[:3000])}</div>")
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
            + matrix_html(state) + "<h3>Sizes (the study's Tables II and III beside)</h3>" + sizes_html(state)
            + charts.section(state) + system_html.section(state)
            + "<h3>Where the measurement differs from the study</h3>" + differences_html(state)
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


def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    grade = dict(getattr(report, "user_properties", [])).get("exportconf_grade")
    cells.insert(2, f"<td>{_grade(grade) if isinstance(grade, str) else ''}</td>")
