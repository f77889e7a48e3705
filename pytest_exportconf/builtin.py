"""Registers the built-in systems, frameworks, formats, the Python stack and its routes through the
public hook; :data:`PLUGINS` names the built-in plugins that are separate modules, as a third party's
would be (the JavaScript/TypeScript stacks)."""

from __future__ import annotations

import pytest

from .fixtures.number_predictor import NumberPredictor
from .fixtures.sentiment import Sentiment
from .formats import BUILTIN as FORMATS
from .frameworks import BUILTIN as FRAMEWORKS
from .registry import Registry
from .stacks import BUILTIN_ROUTES, BUILTIN_STACKS

# (name, module): registered by the plugin beside this one
PLUGINS: tuple[tuple[str, str], ...] = (("exportconf-node", "pytest_exportconf.stacks.node"),)


@pytest.hookimpl(tryfirst=True)
def pytest_exportconf_register(registry: Registry) -> None:
    registry.add_system(NumberPredictor())
    registry.add_system(Sentiment())
    for fw in FRAMEWORKS:
        registry.add_framework(fw)
    for fmt in FORMATS:
        registry.add_format(fmt)
    for stack in BUILTIN_STACKS:
        registry.add_stack(stack)
    for route in BUILTIN_ROUTES:
        registry.add_route(route)
