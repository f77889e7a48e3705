"""The one place where loads happen: worker processes driven over the JSON-lines protocol.

Each pytest process owns one ``Runner``; it starts a worker per runtime on first use and keeps it for
the session. A worker that crashes or exceeds the timeout is killed and restarted on the next request;
the request that was running gets an error carrying the worker's exit status and stderr tail.

A load that can run code (``sandboxed=True``: the format executes code on load) never reaches a
long-lived Python worker: it runs in a fresh sandboxed child of its own, forked from a zygote that imported
the producer's framework beforehand (:class:`zygote.Sandbox`); the Node harnesses' Python bridge does the
same through ``EXPORTCONF_BRIDGE_ARGS``. Every worker gets
the scrubbed environment and dies with the pytest process (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import sandbox
from .childproc import Worker
from .zygote import BACKSTOP_S, broker_argv


def python_worker_argv() -> list[str]:
    return [sys.executable, "-m", "pytest_exportconf.worker"]


class Runner:
    """Dispatches route requests to the long-lived worker of the route's runtime."""

    def __init__(self, timeout: float, runtimes: dict[str, Callable[[], list[str]]] | None = None,
                 limits: sandbox.Limits | None = None) -> None:
        self.timeout = timeout
        self.limits = limits or sandbox.Limits()
        self.runtimes: dict[str, Callable[[], list[str]]] = {"python": python_worker_argv, **(runtimes or {})}
        self.workers: dict[str, Worker] = {}
        # The sandbox broker: this process's zygotes, shared with the bridge supervisors of its harnesses.
        self._broker_dir = Path(tempfile.mkdtemp(prefix="exportconf-broker-"))
        os.chmod(self._broker_dir, 0o700)
        socket_path = self._broker_dir / "broker.sock"
        self.broker = Worker("sandbox broker", lambda: broker_argv(socket_path, self.timeout, self.limits))
        # what the Node harnesses spawn for the Python bridge: the sandbox supervisor
        self.worker_env = {"EXPORTCONF_BRIDGE_ARGS": json.dumps(sandbox.bridge_args(timeout, socket_path))}

    def call(self, runtime: str, request: dict[str, Any], sandboxed: bool = False) -> dict[str, Any]:
        """Run ``request`` on ``runtime``; ``sandboxed`` Python requests get a fresh sandboxed child."""
        if runtime not in self.runtimes:
            return {"ok": False, "error": f"no worker for runtime {runtime!r}; known: {', '.join(self.runtimes)}"}
        if sandboxed and runtime == "python":
            return self.broker.call({**request, "timeout": self.timeout}, self.timeout + 2 * BACKSTOP_S)
        if runtime != "python":  # the harness's bridge supervisor relays to the broker: have it listening
            up = self.broker.call({"op": "ping"}, 60)
            if not up.get("ok"):
                return {"ok": False, "crashed": True, "error": f"the sandbox broker did not start: {up.get('error')}"}
        worker = self.workers.get(runtime)
        if worker is None:
            worker = self.workers[runtime] = Worker(runtime, self.runtimes[runtime], self.worker_env)
        return worker.call(request, self.timeout)

    def prestart(self, preloads: list[list[str]]) -> None:
        """Have the broker start the zygotes of these preload sets now (those not running yet), so that
        their imports overlap; the loads that need them wait for them as usual."""
        self.broker.call({"op": "prestart", "preloads": [p for p in preloads if p]}, 60)

    def close(self) -> None:
        for w in [*self.workers.values(), self.broker]:  # all asked first: they exit in parallel
            w.request_shutdown()
        for w in self.workers.values():
            w.close()
        self.workers.clear()
        self.broker.close()
        shutil.rmtree(self._broker_dir, ignore_errors=True)
