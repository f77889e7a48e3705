"""Hooks of the exportconf plugin. Implement them in a ``conftest.py`` or a plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .concepts import Outcome
    from .registry import Registry


@pytest.hookspec
def pytest_exportconf_register(registry: Registry) -> None:
    """Add systems, frameworks, formats, stacks and routes to the registry.

    The built-in ones register through this same hook. Example ``conftest.py``::

        from pytest_exportconf.registry import Route

        class MyOnnxRoute(Route):
            name, kind, format, stack = "my-runtime", "unofficial", "onnx", "python"
            def load(self, req): ...

        def pytest_exportconf_register(registry):
            registry.add_route(MyOnnxRoute)
    """


@pytest.hookspec(firstresult=True)
def pytest_exportconf_grade(outcome: Outcome) -> str | None:
    """Return a grade (``++``, ``+``, ``-``, ``--``) to override the rubric for one cell, or None.

    Example ``conftest.py``::

        def pytest_exportconf_grade(outcome):
            if outcome.format == "pickle":
                return "--"  # our policy: never ship pickles
    """
