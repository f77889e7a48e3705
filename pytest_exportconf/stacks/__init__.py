"""Built-in stacks and their routes."""

from __future__ import annotations

from ..registry import Route, Stack
from . import python

BUILTIN_STACKS: tuple[Stack, ...] = (python.STACK,)
BUILTIN_ROUTES: tuple[type[Route], ...] = python.ROUTES
