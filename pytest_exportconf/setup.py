"""The run's set-up step, through the ``pytest_exportconf_setup`` hook.

It runs once per run where the user sees it: on the xdist controller (or the only process), before
workers start. What the implementations :meth:`~Setup.provide` travels to each worker in
``workerinput``; there the hook runs again with ``controller=False`` and :meth:`~Setup.received`
returns it, so a worker never provisions again. A failure is :meth:`~Setup.fail`-ed once, printed
once by the controller, and handed to the workers like any other result.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .registry import Registry

WORKERINPUT_KEY = "exportconf_setup"


@dataclass
class Setup:
    registry: Registry  # add runtimes (``registry.add_runtime``) here
    stacks: list[str]  # the selected names
    formats: list[str]
    cache_dir: Path  # the run's artifact cache directory
    option: Callable[[str], str]  # an ``--exportconf-*`` option (or its ini value) by name, e.g. "node"
    log: Callable[[str], None]  # printed past pytest's capture on the controller
    controller: bool  # True: prepare for real; False: an xdist worker, use received()
    _received: dict[str, Any] = field(default_factory=dict)
    provided: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def provide(self, key: str, value: Any) -> None:
        """Hand ``value`` (JSON-serialisable) to every worker under ``key``."""
        json.dumps(value)
        if key in self.provided:
            raise ValueError(f"setup key {key!r} provided twice; keys so far: {', '.join(self.provided)}")
        self.provided[key] = value

    def received(self, key: str) -> Any:
        """What the controller provided under ``key`` (None when it provided nothing)."""
        return self._received.get(key)

    def shared(self, key: str) -> Any:
        """What was provided under ``key``: this process's own on the controller, the controller's on a worker."""
        return self.provided.get(key) if self.controller else self._received.get(key)

    def fail(self, what: str, error: str) -> None:
        """Record that preparing ``what`` failed (reported once, by the controller)."""
        self.failures[what] = error

    def workerinput(self) -> str:
        return json.dumps(self.provided)

    @staticmethod
    def from_workerinput(workerinput: dict[str, Any]) -> dict[str, Any]:
        raw = workerinput.get(WORKERINPUT_KEY)
        return dict(json.loads(raw)) if isinstance(raw, str) else {}
