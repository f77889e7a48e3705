"""The Node.js project of the JavaScript and TypeScript stacks (``package.json``, lockfile, ``src/``).

Not Python code: this file only lets the wheel and an editable install map the top-level
``node_harness/`` folder to ``pytest_exportconf.node_harness``, so :data:`ROOT` finds it either way.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
