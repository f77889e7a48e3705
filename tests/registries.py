"""The registry a ``--exportconf`` run builds, for tests that read the built-in suite's pieces."""

from __future__ import annotations

import importlib

from pytest_exportconf import builtin
from pytest_exportconf.registry import Registry


def builtin_registry() -> Registry:
    """The built-in hook and the built-in plugins beside it (the JavaScript/TypeScript stacks are one)."""
    registry = Registry()
    builtin.pytest_exportconf_register(registry)
    for _, module in builtin.PLUGINS:
        importlib.import_module(module).pytest_exportconf_register(registry)
    return registry
