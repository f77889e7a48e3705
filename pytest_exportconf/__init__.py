"""exportconf: measure how ML model export formats integrate into real technology stacks."""

from __future__ import annotations

__version__ = "0.1.0"
