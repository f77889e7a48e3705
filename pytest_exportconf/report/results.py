"""The JSON results file (schema documented in docs/results-schema.md)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from .. import __version__, rubric, sandbox, study
from ..fsutil import atomic_write_text
from ..state import State
from .matrix import grade_counts

SCHEMA = "exportconf-results/1"


def results(state: State) -> dict[str, Any]:
    reg = state.registry
    counts = grade_counts(state)
    return {
        "schema": SCHEMA,
        "exportconf": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "seed": state.seed,
        "selection": {"systems": state.selection.systems, "formats": state.selection.formats,
                      "stacks": state.selection.stacks, "frameworks": state.selection.frameworks},
        "frameworks": {name: fw.versions() for name, fw in reg.frameworks.items()
                       if name in state.selection.frameworks},
        **({"env": label} if (label := os.environ.get("EXPORTCONF_ENV") or os.environ.get("TOX_ENV_NAME")) else {}),
        "tools": _tools(),
        "rubric": {"grades": rubric.GRADE_MEANING,
                   "frictions": {k: {"severity": s, "meaning": m} for k, (s, m) in rubric.FRICTIONS.items()}},
        "summary": {"cells": len(state.outcomes), "grades": {g: counts.get(g, 0) for g in rubric.GRADES}},
        "study": {"table_iv": study.TABLE_IV, "sizes": study.SIZES},
        "sandbox": sandbox.describe(),  # what confined the loads of code-executing formats on this machine
        "cells": [o.to_dict() for _, o in sorted(state.outcomes.items())],
    }


def _tools() -> dict[str, Any]:
    """Converter tool environments this run used, with what they pin (tensorflowjs pins tensorflow)."""
    from ..toolenv import tools_used

    return tools_used()


def write_results(state: State, path: Path) -> None:
    atomic_write_text(path, json.dumps(results(state), indent=1))
