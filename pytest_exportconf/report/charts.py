"""Static inline SVG charts for the HTML report, drawn with matplotlib (no network needed to view them).

Two charts: the primary producer's export sizes against the study's Tables II/III, and the latency per
cell at the runtime level (p50 of the golden batch in the stack's runtime) and the system level (p50 of
200 requests at concurrency 8 over HTTP). Without matplotlib the report says so instead.
"""

from __future__ import annotations

import io
import re
from typing import Any

from ..concepts import Outcome
from ..state import State

_UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def study_bytes(text: str) -> float | None:
    m = re.fullmatch(r"\s*([\d.]+)\s*(B|kB|MB|GB)\s*", text or "")
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "exportconf", "font.size": 8})
    import matplotlib.pyplot as plt

    return plt


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    fig.clf()
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _primary_size(o: Outcome | None) -> int | None:
    for p in o.producers if o else []:
        if p.primary and p.size_bytes is not None:
            return p.size_bytes
    return None


def sizes_svg(state: State) -> str:
    from ..study import SIZES

    plt = _pyplot()
    systems = [s for s in state.selection.systems if s in SIZES]
    if not systems:
        return ""
    fig, axes = plt.subplots(1, len(systems), figsize=(4.2 * len(systems), 2.8), squeeze=False)
    for ax, system in zip(axes[0], systems, strict=True):
        formats = [f for f in state.selection.formats if f in SIZES[system]]
        measured = []
        for f in formats:
            sizes = [_primary_size(state.outcomes.get(f"{system}/{f}/{st}")) for st in state.selection.stacks]
            measured.append(next((s for s in sizes if s is not None), 0) / 1e3)
        study = [(study_bytes(SIZES[system][f]) or 0) / 1e3 for f in formats]
        x = range(len(formats))
        ax.bar([i - 0.2 for i in x], study, 0.4, label="study (Tables II/III)", color="#999")
        ax.bar([i + 0.2 for i in x], measured, 0.4, label="measured (primary framework)", color="#1f77b4")
        ax.set_xticks(list(x), formats)
        ax.set_yscale("log")
        ax.set_ylabel("kB (log)")
        ax.set_title(system)
    axes[0][0].legend(loc="upper left", fontsize=7)
    return _svg(fig)


def latency_svg(state: State) -> str:
    plt = _pyplot()
    cells = [(c, o) for c, o in sorted(state.outcomes.items()) if o.winner]
    if not cells:
        return ""
    labels, runtime, system = [], [], []
    for c, o in cells:
        att = next((p.attempts[p.winner] for p in o.producers if p.winner is not None
                    and f"{p.framework}/{p.attempts[p.winner].variant}/{p.attempts[p.winner].route}" == o.winner),
                   None)
        load = ((o.system_level or {}).get("load") or {})
        labels.append(c.replace("number_predictor", "np").replace("sentiment", "st"))
        runtime.append(att.p50_ms if att and att.p50_ms else 0)
        system.append(load.get("p50_ms") or 0)
    fig, ax = plt.subplots(figsize=(max(6, 0.32 * len(cells)), 3.2))
    x = range(len(cells))
    ax.bar([i - 0.2 for i in x], runtime, 0.4, label="runtime level: p50 of the golden batch in the runtime",
           color="#7cb342")
    if any(system):
        ax.bar([i + 0.2 for i in x], system, 0.4, label="system level: p50 of 200 HTTP requests (concurrency 8)",
               color="#f0a202")
    ax.set_xticks(list(x), labels, rotation=70, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("ms (log)")
    ax.legend(loc="upper left", fontsize=7)
    return _svg(fig)


def section(state: State) -> str:
    try:
        sizes, latency = sizes_svg(state), latency_svg(state)
    except ImportError:
        return "<p class='nm'>charts not drawn: they need matplotlib (pip install 'exportconf[all]')</p>"
    # the sizes chart exists for the study's own systems only: no study words for a project's systems
    return ("<h3>Charts</h3>" + ("<h4>Export sizes against the study</h4>" + sizes if sizes else "")
            + "<h4>Latency per cell: runtime and system level</h4>" + latency)
