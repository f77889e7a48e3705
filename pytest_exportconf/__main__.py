"""``python -m pytest_exportconf``: the ``exportconf`` command (merge, diff)."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
