"""The run's web-app servers: started once per run, shared by every process that drives them.

Without pytest-xdist the pytest process starts them: every selected stack's app at once, when the first
system-level cell sets up. Under xdist the controller starts them at session start, each in a
thread of its own that lives until the session ends (the kernel's parent-death signal follows the thread
that spawned a server), and writes where each one listens into a state file the workers wait for. Two
workers then drive one Flask, one node:http and one Next.js server, instead of each starting its own
and importing TensorFlow and torch again in it and in its bridges: on 2 cores that is wall time.

A state file (``<dir>/<stack>.json``) is either where the app listens, or why it is not up. Cells publish
their models into the app's ``models.json`` under a file lock, since two workers may write at once.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..locks import locked
from ..procs import pid_running
from .apps import APPS, Tools
from .servers import TAG_ENV, Server, free_port

APP_TIMEOUT = 1800.0  # how long a worker waits for the controller's app: a cold Next.js build and its start


@dataclass
class Running:
    """One app's server as any process of the run sees it."""

    stack: str
    label: str
    info: dict[str, Any]  # the build's marker: seconds, cached, frictions observed, notes
    port: int
    pid: int
    log: Path
    models: Path
    started_s: float | None  # spawn until the health check answered
    python: str  # the interpreter a Node app spawns for its bridge

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return pid_running(self.pid)

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:].strip()
        except OSError:
            return ""

    def publish(self, system: str, fmt: str, entry: dict[str, Any]) -> None:
        """Tell the app about a cell's model (it loads it on the first request for it)."""
        with locked(str(self.models) + ".lock", f"add {system}/{fmt} to the {self.label} app", timeout=120):
            models = json.loads(self.models.read_text())
            models.setdefault(system, {})[fmt] = entry
            tmp = self.models.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(models, indent=1))
            os.replace(tmp, self.models)

    @contextmanager
    def driving(self) -> Iterator[None]:
        """Hold the app for one cell: under xdist another worker's cell waits, so that neither's first
        request waits on the other's model load, nor its latency on the other's load test."""
        with locked(self.models.with_name("drive.lock"), f"drive the {self.label} app", timeout=APP_TIMEOUT):
            yield

    def to_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "label": self.label, "info": self.info, "port": self.port, "pid": self.pid,
                "log": str(self.log), "models": str(self.models), "started_s": self.started_s, "python": self.python}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Running:
        return cls(d["stack"], d["label"], d["info"], d["port"], d["pid"], Path(d["log"]), Path(d["models"]),
                   d["started_s"], d["python"])


class AppHost:
    """Starts and stops the run's app servers; the one place that does."""

    def __init__(self, cache_dir: Path, tools: Tools, stacks: list[str]) -> None:
        self.cache_dir = cache_dir
        self.tools = tools
        self.stacks = [s for s in stacks if s in APPS]
        self.dir = Path(tempfile.mkdtemp(prefix="exportconf-apps-"))
        self.launched: dict[str, tuple[Running, Server]] = {}
        self.failed: dict[str, str] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---- in this process ---------------------------------------------------------------------------
    def launch(self, stack: str) -> None:
        """Build the app (cached) and spawn its server; :meth:`ready` waits for it to answer."""
        if stack in self.launched or stack in self.failed:
            return
        try:
            webapp = APPS[stack](tools=self.tools)
            build = webapp.build(self.cache_dir)
            port = free_port()
            (self.dir / stack).mkdir()
            models = self.dir / stack / "models.json"
            models.write_text("{}")
            server = Server(webapp.argv(build, port), build.dir, port, self.dir / stack / "server.log")
            env = webapp.env(build, port, models)
            if os.environ.get(TAG_ENV):
                env[TAG_ENV] = os.environ[TAG_ENV]
            server.spawn(env)
        except Exception as e:
            self.failed[stack] = f"{type(e).__name__}: {e}"
            return
        assert server.proc is not None
        self.launched[stack] = (Running(stack, webapp.label, build.info, port, server.proc.pid, server.log_path,
                                        models, None, self.tools.python), server)

    def ready(self, stack: str) -> Running:
        """The app's server once it answers its health check (RuntimeError: why it is not up)."""
        self.launch(stack)
        if stack in self.failed:
            raise RuntimeError(self.failed[stack])
        run, server = self.launched[stack]
        if run.started_s is None:
            try:
                server.wait_ready()
            except Exception as e:
                self.failed[stack] = f"{type(e).__name__}: {e}"
                raise RuntimeError(self.failed[stack]) from e
            run.started_s = server.started_s
        return run

    def start_all(self) -> None:
        """Spawn every app, then wait until each answers (or failed, which :meth:`ready` then says). The
        servers start side by side; each is polled by a thread of its own, so that its start time is its
        own and not the time this process got round to asking. The threads end before this returns (a
        forked build child must not inherit a thread holding a lock)."""
        for stack in self.stacks:
            self.launch(stack)
        waits = [threading.Thread(target=self._await, args=(s,), name=f"exportconf-await-{s}")
                 for s in self.launched]
        for t in waits:
            t.start()
        for t in waits:
            t.join()

    def _await(self, stack: str) -> None:
        try:
            self.ready(stack)
        except RuntimeError:
            pass  # recorded in self.failed: the stack's cells say it

    # ---- for xdist workers ---------------------------------------------------------------------------
    def start_in_threads(self) -> None:
        """Start every app in a thread of its own and write its state file when it answers (or fails)."""
        for stack in self.stacks:
            t = threading.Thread(target=self._serve, args=(stack,), name=f"exportconf-app-{stack}", daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, stack: str) -> None:
        try:
            state: dict[str, Any] = self.ready(stack).to_dict()
        except Exception as e:
            state = {"stack": stack, "failed": self.failed.get(stack) or f"{type(e).__name__}: {e}"}
        tmp = self.dir / f".{stack}.json"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.dir / f"{stack}.json")
        self._stop.wait()  # the server dies with this thread (PR_SET_PDEATHSIG): it lives until close()

    def close(self) -> None:
        for _, server in self.launched.values():
            server.stop()
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class HostedApps:
    """The apps as a worker sees them: the controller's state files, waited for."""

    def __init__(self, directory: Path, timeout: float = APP_TIMEOUT) -> None:
        self.dir = directory
        self.timeout = timeout

    def ready(self, stack: str) -> Running:
        if stack not in APPS:
            raise RuntimeError(f"no web app for stack {stack}; apps: {', '.join(APPS)}")
        path = self.dir / f"{stack}.json"
        deadline = time.monotonic() + self.timeout
        while not path.is_file():
            if not self.dir.is_dir():
                raise RuntimeError(f"the run's app directory {self.dir} is gone: the controller ended")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the controller did not start the {stack} app within {self.timeout:.0f} s")
            time.sleep(0.1)
        state = json.loads(path.read_text())
        if "failed" in state:
            raise RuntimeError(state["failed"])
        return Running.from_dict(state)
