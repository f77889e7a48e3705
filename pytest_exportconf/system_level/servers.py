"""Web servers started for the system level: on 127.0.0.1, an ephemeral port, and always reaped.

Every server is started in a process group of its own (``start_new_session``), with the kernel told to
kill it when the process that started it dies (``PR_SET_PDEATHSIG``), and with ``EXPORTCONF_SERVER_TAG``
in its environment (the tag a test looks for in ``/proc`` to prove that no server outlives a run).
:func:`stop_all` kills every group still alive; it runs at session end, on ``atexit`` and on SIGTERM.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TAG_ENV = "EXPORTCONF_SERVER_TAG"
_PR_SET_PDEATHSIG = 1
_live: dict[int, Server] = {}  # pid -> server, this process's running servers
_lock = threading.Lock()


def free_port() -> int:
    """An ephemeral port the kernel just handed out (free unless someone takes it in between)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


try:  # resolved here, not in the child: a dlopen between fork and exec can wait on another thread's lock
    _prctl: Any = ctypes.CDLL("libc.so.6", use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None  # not Linux: the process group kill at exit still applies


def _die_with_parent() -> None:  # runs in the child between fork and exec
    """The kernel kills the server when the thread that spawned it ends (PR_SET_PDEATHSIG)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Server:
    argv: list[str]
    cwd: Path
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    started_s: float | None = None  # spawn until the health check answered
    notes: list[str] = field(default_factory=list)
    _t0: float = 0.0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self, env: dict[str, str]) -> None:
        """Start the server; :meth:`wait_ready` waits for it to answer."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - owned by the child until it exits
        self._t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        log.close()
        with _lock:
            _live[self.proc.pid] = self

    def wait_ready(self, health: str = "/healthz", timeout: float = 120.0) -> None:
        """Poll ``health`` until it answers 200 (RuntimeError when the server exits or the time is up)."""
        assert self.proc is not None, "spawn() first"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with status {self.proc.returncode} before answering "
                                   f"{health}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base + health, timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not answer {health} within {timeout:.0f} s: {self.log_tail()}")
            time.sleep(0.05)
        self.started_s = time.perf_counter() - self._t0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:].strip()
        except OSError:
            return ""

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to the whole group, SIGKILL after ``grace`` seconds, then reap."""
        if self.proc is None:
            return
        _kill_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        _kill_group(self.proc.pid, signal.SIGKILL)  # children that ignored SIGTERM, or outlived the leader
        self.proc.wait()
        with _lock:
            _live.pop(self.proc.pid, None)


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_all() -> None:
    with _lock:
        servers = list(_live.values())
    for s in servers:
        s.stop(grace=2.0)


def tagged_processes(tag: str) -> list[int]:
    """Pids of processes whose environment carries ``EXPORTCONF_SERVER_TAG=tag`` (Linux ``/proc``)."""
    needle = f"{TAG_ENV}={tag}".encode()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if needle in (d / "environ").read_bytes().split(b"\0"):
                found.append(int(d.name))
        except OSError:
            continue
    return found


def request(base: str, path: str, body: Any = None, *, raw: bytes | None = None,
            content_type: str = "application/json", timeout: float = 120.0) -> tuple[int, Any, float]:
    """POST (or GET without a body): status, the decoded JSON answer (None if it is not JSON), ms."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", content_type)
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    ms = (time.perf_counter() - t0) * 1000
    try:
        return status, json.loads(text), ms
    except ValueError:
        return status, None, ms


def _on_sigterm(previous: Any) -> Callable[[int, Any], None]:
    def handler(signum: int, frame: Any) -> None:
        stop_all()
        if callable(previous):
            previous(signum, frame)
        else:
            raise SystemExit(128 + signum)

    return handler


atexit.register(stop_all)
if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _on_sigterm(signal.getsignal(signal.SIGTERM)))
