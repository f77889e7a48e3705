"""Registers the built-in systems, frameworks, formats, stacks and routes through the public hook."""

from __future__ import annotations

import pytest

from .fixtures.number_predictor import NumberPredictor
from .fixtures.sentiment import Sentiment
from .formats import BUILTIN as FORMATS
from .frameworks import BUILTIN as FRAMEWORKS
from .registry import Registry
from .stacks import BUILTIN_ROUTES, BUILTIN_STACKS, node


@pytest.hookimpl(tryfirst=True)
def pytest_exportconf_register(registry: Registry) -> None:
    registry.add_system(NumberPredictor())
    registry.add_system(Sentiment())
    for fw in FRAMEWORKS:
        registry.add_framework(fw)
    for fmt in FORMATS:
        registry.add_format(fmt)
    for stack in (*BUILTIN_STACKS, *node.STACKS):
        registry.add_stack(stack)
    for route in (*BUILTIN_ROUTES, *node.ROUTES):
        registry.add_route(route)
