"""One long-lived child process spoken to in JSON lines (docs/protocol.md): started on first use,
restarted after a crash or a timeout, its stderr kept in a log file of which each call gets the tail."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from . import sandbox

STDERR_TAIL = 4000
READ_CHUNK = 1 << 16
LOG_PREFIX = "exportconf-"  # + pid of the pytest process: --exportconf-cache-clean sweeps dead ones' logs


class Worker:
    def __init__(self, name: str, argv: Callable[[], list[str]], env: dict[str, str] | None = None,
                 cwd: Path | None = None, preexec: Callable[[], None] = sandbox.set_pdeathsig) -> None:
        self.name = name
        self._argv = argv
        self._env = env
        self._cwd = cwd
        self._preexec = preexec  # runs in the child before exec: PDEATHSIG, and a sandbox's limits
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self._next_id = 0
        self._pending = b""  # bytes read from the worker's stdout, not yet a whole line
        self.starts = 0

    @property
    def log_path(self) -> Path | None:
        return Path(self._log.name) if self._log else None

    def _drop_log(self) -> None:
        if self._log:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None

    def _start(self) -> subprocess.Popen[str]:
        self._drop_log()  # a restarted worker's old log has been reported already
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the worker
            "w+", prefix=f"{LOG_PREFIX}{os.getpid()}-{self.name}-", suffix=".log", delete=False, encoding="utf-8"
        )
        env = sandbox.scrubbed_env({"HOME": os.environ.get("HOME", "/"), **(self._env or {})})
        self._proc = subprocess.Popen(
            self._argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            text=True, encoding="utf-8", env=env, bufsize=1, cwd=self._cwd,
            start_new_session=True,  # its own process group: killing it takes its children too (the bridge)
            preexec_fn=self._preexec,  # and SIGKILL of pytest takes it along (PDEATHSIG)
        )
        self._pending = b""
        self.starts += 1
        return self._proc

    def _stderr_since(self, offset: int) -> str:
        if not self._log:
            return ""
        with open(self._log.name, encoding="utf-8", errors="replace") as f:
            f.seek(offset)
            return f.read()[-STDERR_TAIL:]

    def call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        try:
            proc = self._proc if self._proc and self._proc.poll() is None else self._start()
        except Exception as e:  # e.g. no Node.js: every request of this runtime fails with the reason
            return {"ok": False, "crashed": True, "error": f"could not start the {self.name} worker: {e}"}
        assert proc.stdin and proc.stdout and self._log
        offset = os.path.getsize(self._log.name)
        self._next_id += 1
        request = {**request, "id": self._next_id}
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
        except BrokenPipeError:
            return self._failed(proc, offset, "worker exited before the request could be sent")
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        try:
            while True:
                # Whole lines only, from our own buffer of raw reads: a buffered response is answered at
                # once (never waited on as if nothing came), a partial line never blocks a read.
                while (cut := self._pending.find(b"\n")) >= 0:
                    line, self._pending = self._pending[:cut], self._pending[cut + 1:]
                    try:
                        resp = json.loads(line)
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        continue  # not ours: stray output that reached the channel
                    if isinstance(resp, dict) and resp.get("id") == self._next_id:
                        resp["log"] = self._stderr_since(offset)
                        return resp
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    sandbox.kill_group(proc)
                    return self._failed(proc, offset, f"timed out after {timeout:.0f} s; worker killed")
                chunk = os.read(proc.stdout.fileno(), READ_CHUNK)  # returns what is there; never blocks here
                if not chunk:
                    proc.wait()
                    sandbox.kill_group(proc)  # a dead harness may leave a bridge child behind
                    return self._failed(proc, offset, f"worker died (exit status {proc.returncode})")
                self._pending += chunk
        finally:
            sel.close()

    def _failed(self, proc: subprocess.Popen[str], offset: int, what: str) -> dict[str, Any]:
        self._proc = None
        tail = self._stderr_since(offset).strip()
        return {"ok": False, "crashed": True, "error": f"{self.name} {what}" + (f"\n{tail}" if tail else ""),
                "log": tail}

    def start(self) -> None:
        """Start the child now if it is not running, without waiting for it (a zygote imports meanwhile)."""
        if not (self._proc and self._proc.poll() is None):
            self._start()

    def request_shutdown(self) -> None:
        """Ask the child to exit without waiting: :meth:`close` then waits (many children exit in parallel)."""
        if self._proc and self._proc.poll() is None:
            try:
                assert self._proc.stdin
                self._proc.stdin.write(json.dumps({"op": "shutdown"}) + "\n")
                self._proc.stdin.flush()
            except Exception:
                sandbox.kill_group(self._proc)

    def close(self) -> None:
        self.request_shutdown()
        if self._proc and self._proc.poll() is None:
            try:
                self._proc.wait(timeout=10)
            except Exception:
                sandbox.kill_group(self._proc)
        self._drop_log()
        self._proc = None
