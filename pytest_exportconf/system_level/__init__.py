"""The system level: each cell's model inside its stack's real web app (``pytest_exportconf/webapps``),
driven over HTTP on loopback and through its page in Chromium (the study's unit of analysis).

``apps``: the three apps and their cached builds; ``servers``: starting and always reaping them;
``drive``: golden inputs, bounded load and bad-request probes over HTTP; ``browser``: the pages in
headless Chromium; ``cell``: one cell measured and graded by the rubric.
"""

from __future__ import annotations

LEVELS = ("runtime", "system")
