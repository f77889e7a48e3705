"""The system level's part of the HTML report: latency over HTTP, bad requests per stack, screenshots."""

from __future__ import annotations

from html import escape
from typing import Any

from ..concepts import Outcome
from ..state import State


def _e(x: Any) -> str:
    return escape(str(x))


def _ms(v: Any) -> str:
    return f"{v:.1f}" if isinstance(v, int | float) else "-"


def _measured(state: State) -> list[tuple[str, Outcome, dict[str, Any]]]:
    return [(c, o, o.system_level) for c, o in sorted(state.outcomes.items())
            if o.system_level and o.system_level.get("measured")]


def latency_html(rows: list[tuple[str, Outcome, dict[str, Any]]]) -> str:
    head = ("<tr><th>cell</th><th>app</th><th>model integrated with</th><th>server start ms</th>"
            "<th>first request ms (model load)</th><th>warm request ms</th><th>load p50 / p95 ms</th>"
            "<th>load errors</th><th>golden over HTTP</th><th>system frictions (evidence)</th></tr>")
    body = []
    for cell, _o, s in rows:
        load, cold, g = s.get("load") or {}, s.get("cold") or {}, s.get("golden") or {}
        fr = "".join(f"<details><summary>{_e(f['kind'])}</summary><div class='err'>{_e(f.get('detail', ''))}\n"
                     f"{_e(f.get('evidence', ''))}</div></details>" for f in s.get("frictions", [])) or "none"
        refused = f"; refused as the API's contract says: {_e(', '.join(g['refused']))}" if g.get("refused") else ""
        body.append(
            f"<tr><td><code>{_e(cell)}</code></td><td>{_e(s.get('app'))}</td>"
            f"<td>{_e((s.get('integration') or {}).get('loader'))}</td><td>{_ms(s.get('server_start_ms'))}</td>"
            f"<td>{_ms(cold.get('first_request_ms'))}</td><td>{_ms(cold.get('warm_ms'))}</td>"
            f"<td>{_ms(load.get('p50_ms'))} / {_ms(load.get('p95_ms'))}</td>"
            f"<td>{_e(load.get('errors', '-'))} of {_e(load.get('requests', '-'))}</td>"
            f"<td class='small'>{'pass' if g.get('ok') else 'FAIL'}: {_e(g.get('detail', ''))} "
            f"({_e(g.get('rows', 0))} rows){refused}</td><td class='small'>{fr}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def bad_requests_html(rows: list[tuple[str, Outcome, dict[str, Any]]]) -> str:
    """Per stack and probe: the statuses answered over every cell, and whether the server lived on."""
    stacks: dict[str, dict[str, list[str]]] = {}
    findings: list[str] = []
    for cell, o, s in rows:
        for p in s.get("bad_requests", []):
            per = stacks.setdefault(o.stack, {}).setdefault(p["probe"], [])
            per.append(str(p.get("status")))
            if not p.get("ok"):
                findings.append(f"<li><code>{_e(cell)}</code> {_e(p['probe'])}: status {_e(p.get('status'))}, "
                                f"error {_e(p.get('error'))}, next good request "
                                f"{'answered' if p.get('next_ok') else 'NOT answered correctly'}</li>")
    if not stacks:
        return "<p class='nm'>no probes ran</p>"
    probes = sorted({p for per in stacks.values() for p in per})
    head = "<tr><th>probe</th>" + "".join(f"<th>{_e(st)}</th>" for st in stacks) + "</tr>"
    body = "".join("<tr><th>" + _e(p) + "</th>" + "".join(
        f"<td>{_e(', '.join(sorted(set(stacks[st].get(p, ['-'])))))}</td>" for st in stacks) + "</tr>" for p in probes)
    verdict = (f"<p>Findings (a 5xx, no JSON error, or a server that did not answer the next good request):</p>"
               f"<ul>{''.join(findings)}</ul>" if findings else
               "<p class='small'>Every probe got a 4xx JSON error and every next good request was answered "
               "correctly.</p>")
    return f"<table>{head}{body}</table>{verdict}"


def screenshots_html(rows: list[tuple[str, Outcome, dict[str, Any]]]) -> str:
    """One page per stack and system (the first format measured there), and every UI check's verdict."""
    shots, verdicts, seen = [], [], set()
    for cell, o, s in rows:
        ui = s.get("ui") or {}
        if not ui:
            continue
        if not ui.get("measured"):
            verdicts.append(f"<li><code>{_e(cell)}</code>: not measured: {_e(ui.get('reason'))}</li>")
            continue
        if not ui.get("ok"):
            verdicts.append(f"<li><code>{_e(cell)}</code>: FAIL: {_e(ui.get('reason'))}</li>")
        if ui.get("screenshot") and (o.stack, o.system) not in seen:
            seen.add((o.stack, o.system))
            shots.append(f"<figure style='display:inline-block;margin:4px'><img src='{ui['screenshot']}' "
                         f"width='410' alt='{_e(ui.get('title'))}'><figcaption class='small'>{_e(o.stack)}: "
                         f"{_e(ui.get('title'))} ({_e(ui.get('browser'))}) shows {_e(ui.get('shown'))}"
                         "</figcaption></figure>")
    n = sum(1 for _, _, s in rows if (s.get("ui") or {}).get("ok"))
    head = f"<p class='small'>{n} of {len(rows)} pages showed exactly the API's answer.</p>"
    return head + (f"<ul>{''.join(verdicts)}</ul>" if verdicts else "") + "".join(shots)


def browser_html(rows: list[tuple[str, Outcome, dict[str, Any]]]) -> str:
    """The Browser column: each format's model run in Chromium by the Next.js app's page itself."""
    cells = [(o, s["browser"]) for _, o, s in rows if s.get("browser")]
    if not cells:
        return "<p class='nm'>not measured: it runs with the TypeScript stack's cells</p>"
    colours = {"++": "#1a7f37", "+": "#7cb342", "-": "#f0a202", "--": "#cf222e"}
    body, shots = [], []
    for o, b in cells:
        g = b.get("grade")
        grade = (f"<b style='color:{colours.get(g, '#000')}'>{_e(g)}</b>" if g else "<i>not measured</i>")
        extra = [f"runtime: {_e(b.get('runtime') or '-')}", f"model load in the page {_ms(b.get('load_ms'))} ms"]
        if b.get("failed_requests"):
            extra.append("failed requests: " + _e("; ".join(b["failed_requests"][:3])))
        if b.get("console"):
            extra.append("console: " + _e("; ".join(b["console"][:3])))
        body.append(f"<tr><td><code>{_e(o.system)}/{_e(o.format)}</code></td><td>{grade}</td>"
                    f"<td class='small'>{_e(b.get('reason', ''))}<br>{'<br>'.join(extra)}</td></tr>")
        if b.get("screenshot"):
            shots.append(f"<figure style='display:inline-block;margin:4px'><img src='{b['screenshot']}' width='410' "
                         f"alt='{_e(b.get('title'))}'><figcaption class='small'>{_e(b.get('title'))}: "
                         f"{_e(b.get('shown'))}</figcaption></figure>")
    return ("<table><tr><th>cell</th><th>Browser grade</th><th>how</th></tr>" + "".join(body) + "</table>"
            + "".join(shots))


def section(state: State) -> str:
    rows = _measured(state)
    if not rows:
        levels = {o.system_level.get("reason") for o in state.outcomes.values() if o.system_level}
        why = "; ".join(sorted(str(r) for r in levels if r)) or "--exportconf-level=runtime"
        return f"<h3>System level</h3><p class='nm'>not measured: {_e(why)}</p>"
    return ("<h3>System level: each model inside its stack's web app</h3>"
            "<p class='small'>Over HTTP on 127.0.0.1: the golden inputs one request each, then 200 requests at "
            "concurrency 8. Cold start: the server's start until its health check answered, and the first "
            "request of the cell (which loads the model).</p>" + latency_html(rows)
            + "<h4>Bad requests per stack (statuses over every cell)</h4>" + bad_requests_html(rows)
            + "<h4>The pages in Chromium</h4>" + screenshots_html(rows)
            + "<h4>Browser column: inference in Chromium itself (the Next.js app's /browser pages)</h4>"
            + browser_html(rows))
