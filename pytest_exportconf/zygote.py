"""Sandboxed loads without paying a framework import per artifact: a zygote per set of preloaded modules.

A zygote is a long-lived process started inside the sandbox (:func:`sandbox.wrap`: read-only file system
except its own directory, no network, own PID namespace, scrubbed environment, resource limits). It
imports the producer's framework once (TensorFlow alone costs 3-5 s here), *before* it has seen any
artifact, then forks one fresh child per ``run`` request. The child loads and runs the artifact and exits;
only it ever executes the artifact's code. Between two children the zygote kills whatever the last one
left running (every process of its PID namespace but itself) and empties its directory, so no child sees
another's files or processes. The zygote is not dumpable: a child cannot ptrace it or write its memory
through /proc, and the child closes the zygote's protocol channel before it touches the artifact, so it
cannot answer in the zygote's name. A child that kills the zygote fails its own cell; the next request
starts a new zygote.

Host side: :class:`Sandbox` keeps zygotes, one per ``preload`` list. One *broker* per pytest process owns
them (``--broker SOCK``): the pytest process speaks to it over stdin/stdout, and the bridge supervisors its
Node harnesses spawn (:func:`sandbox.serve`) over its Unix socket, so a pytest process imports each
framework once for every stack, not once per stack.

Run as ``python -m pytest_exportconf.zygote --preload tensorflow [--pidns]`` (a zygote; each ``run`` request
carries its ``timeout`` in seconds) or ``--broker SOCK --timeout S --limits JSON`` (the broker).
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import importlib
import json
import os
import select
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from . import sandbox
from .childproc import Worker
from .lines import open_channel, serve
from .procs import pid_running

PR_SET_DUMPABLE = 4
CHILD_PREFIX = "exportconf-sandbox-"  # each child's private directory, under the zygote's own
BACKSTOP_S = 30  # the host kills a zygote that overran its own per-child timeout by this much


class Sandbox:
    """The zygotes of this process, one per preload set, started on first use (host side)."""

    def __init__(self, timeout: float, limits: sandbox.Limits | None = None) -> None:
        self.timeout = timeout
        self.limits = limits or sandbox.Limits()
        self._zygotes: dict[tuple[str, ...], tuple[Worker, Path]] = {}

    def call(self, request: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Run one protocol request in a fresh child forked from the zygote of ``request["preload"]``."""
        timeout = timeout or self.timeout
        worker = self._zygote(request.get("preload") or [])
        resp = worker.call({**request, "timeout": timeout}, timeout + BACKSTOP_S)
        resp.setdefault("sandbox", {})["kind"] = sandbox.confinement()[0]
        if resp.get("crashed") and "error" in resp and not resp["error"].startswith("sandboxed"):
            resp["error"] = f"sandboxed worker {resp['error']}"
        return resp

    def _zygote(self, modules: list[str]) -> Worker:
        preload = tuple(sorted({str(m) for m in modules}))
        if preload not in self._zygotes:
            root = Path(tempfile.mkdtemp(prefix="exportconf-zygote-"))
            os.chmod(root, 0o700)
            self._zygotes[preload] = (self._worker(preload, root), root)
        return self._zygotes[preload][0]

    def _worker(self, preload: tuple[str, ...], root: Path) -> Worker:
        kind, _ = sandbox.confinement()
        argv = [sys.executable, "-m", "pytest_exportconf.zygote", "--preload", ",".join(preload),
                *(["--pidns"] if kind != "none" else [])]
        limits = self.limits

        def preexec() -> None:
            sandbox.preexec(limits, sandbox.user_tasks() + limits.processes)()

        return Worker(f"sandbox[{','.join(preload) or '-'}]", lambda: sandbox.wrap(argv, root),
                      {"HOME": str(root), "TMPDIR": str(root)}, cwd=root, preexec=preexec)

    def prestart(self, preloads: list[list[str]]) -> None:
        """Start the zygotes of these preload sets now, without waiting: their imports run meanwhile."""
        for preload in preloads:
            self._zygote(preload).start()

    def close(self) -> None:
        for worker, _ in self._zygotes.values():
            worker.request_shutdown()
        for worker, root in self._zygotes.values():
            worker.close()
            shutil.rmtree(root, ignore_errors=True)
        self._zygotes.clear()


class BrokerClient:
    """A bridge supervisor's connection to its pytest process's broker."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._sock: socket.socket | None = None
        self._rfile: Any = None

    def call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        # A connection kept from an earlier request may be to a broker that has since been restarted (its
        # pytest process restarts one that died): such a connection is re-made once; a fresh one is not.
        for reused in (self._sock is not None, False):
            try:
                return self._call(request, timeout)
            except (ConnectionError, EOFError) as e:
                self.close()
                if not reused:
                    return self._failed(e)
            except (OSError, ValueError) as e:
                self.close()
                return self._failed(e)
        raise AssertionError("unreachable")

    def _call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._sock.connect(self.path)
            self._rfile = self._sock.makefile("rb")
        self._sock.settimeout(timeout + 2 * BACKSTOP_S)
        self._sock.sendall((json.dumps({**request, "timeout": timeout}) + "\n").encode())
        line = self._rfile.readline()
        if not line:
            raise EOFError("the broker closed the connection")
        resp: dict[str, Any] = json.loads(line)
        return resp

    def _failed(self, e: Exception) -> dict[str, Any]:
        return {"ok": False, "crashed": True, "error": f"the sandbox broker at {self.path} did not answer: "
                                                        f"{type(e).__name__}: {e}"}

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._rfile = None


def broker_argv(path: Path, timeout: float, limits: sandbox.Limits) -> list[str]:
    return [sys.executable, "-m", "pytest_exportconf.zygote", "--broker", str(path), "--timeout", str(timeout),
            "--limits", json.dumps(dataclasses.asdict(limits))]


def broker(path: Path, timeout: float, limits: sandbox.Limits) -> None:
    """Serve protocol lines from stdin (the pytest process) and from clients of the socket at ``path`` (the
    bridge supervisors), one request at a time; exit when stdin closes. Zygote logs go to this stderr."""
    sandbox.set_pdeathsig()
    box = Sandbox(timeout, limits)
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    channel = os.dup(1)
    os.dup2(2, 1)
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ, channel)
    sel.register(listener, selectors.EVENT_READ)
    pending: dict[int, bytes] = {}
    try:
        while True:
            for key, _ in sel.select():
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    sel.register(conn, selectors.EVENT_READ, conn.fileno())
                    continue
                fd = key.fd
                data = os.read(fd, 1 << 16)
                if not data:
                    if fd == sys.stdin.fileno():
                        return
                    sel.unregister(key.fileobj)
                    key.fileobj.close()  # type: ignore[union-attr]
                    pending.pop(fd, None)  # the next connection may get this fd number
                    continue
                pending[fd] = pending.get(fd, b"") + data
                while b"\n" in pending[fd]:
                    line, pending[fd] = pending[fd].split(b"\n", 1)
                    if line.strip() and _answer_safely(box, line, key.data) == "shutdown":
                        return
    finally:
        box.close()
        path.unlink(missing_ok=True)


def _answer_safely(box: Sandbox, line: bytes, out_fd: int) -> str:
    """Answer one line; a request the broker cannot handle fails alone, with the reason, and the broker
    (every stack's sandbox) lives on."""
    try:
        return _answer(box, json.loads(line), out_fd)
    except Exception as e:
        resp = {"ok": False, "crashed": True, "error": f"the sandbox broker failed on this request: "
                f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]}
        try:
            resp["id"] = json.loads(line).get("id")
        except ValueError:
            pass
        try:
            os.write(out_fd, (json.dumps(resp) + "\n").encode())
        except OSError:
            pass
        return "error"


def relay_log(resp: dict[str, Any]) -> dict[str, Any]:
    """Move a sandboxed child's log from its answer to this process's stderr (which the caller keeps)."""
    log = resp.pop("log", None)
    if log:
        sys.stderr.write(log)
        sys.stderr.flush()
    return resp


def _answer(box: Sandbox, req: dict[str, Any], out_fd: int) -> str:
    op = req.get("op")
    if op == "shutdown":
        return "shutdown"
    if op in ("run", "scan"):
        resp = relay_log(box.call(req, req.get("timeout")))
    elif op == "ping":
        resp = sandbox.ping()
    elif op == "prestart":
        box.prestart(req.get("preloads") or [])
        resp = {"ok": True}
    else:
        resp = {"ok": False, "error": f"unknown op {op!r}; known: run, scan, ping, prestart, shutdown"}
    resp["id"] = req.get("id")
    data = (json.dumps(resp) + "\n").encode()
    while data:
        data = data[os.write(out_fd, data):]
    return str(op)


def sandbox_note(sb: dict[str, Any], resp: dict[str, Any]) -> str:
    """The field note of one sandboxed load: where it ran and what it cost."""
    zygote = ""
    if "zygote_pid" in sb:
        paid = "started for this load" if sb.get("first") else "paid by an earlier load"
        zygote = (f"forked from a zygote (pid {sb['zygote_pid']}) that imported "
                  f"{', '.join(sb['preloaded']) or 'nothing'} before any artifact ({sb.get('preload_ms', 0):.0f} ms, "
                  f"{paid})")
    failed = f"; preload failed: {'; '.join(sb['preload_failed'])}" if sb.get("preload_failed") else ""
    return (f"sandboxed child ({sb.get('kind')}) {zygote}{failed}: {sb.get('wall_ms', 0):.0f} ms from fork to exit, "
            f"of which import {resp.get('import_ms') or 0:.0f} ms, load {resp.get('load_ms') or 0:.0f} ms")


# ---- the zygote process ----------------------------------------------------------------------------------

def _no_dump() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _sweep(root: Path, child: int | None, pidns: bool) -> None:
    """Kill what the last child left running, and empty the zygote's directory."""
    if child:
        try:
            os.killpg(child, signal.SIGKILL)  # its own process group (set in the child)
        except (ProcessLookupError, PermissionError):
            pass
    killed = []
    if pidns:  # our own PID namespace: every process but init and us belongs to the last child
        for d in os.listdir("/proc"):
            if d.isdigit() and int(d) not in (1, os.getpid()):
                try:
                    os.kill(int(d), signal.SIGKILL)
                    killed.append(int(d))
                except (ProcessLookupError, PermissionError):
                    pass
    # SIGKILL takes effect when the kernel next schedules the process: wait until each is dead, so the
    # next child never shares the namespace with a live leftover (on a loaded machine that takes a while)
    deadline = time.monotonic() + 10
    while True:
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:  # reap what was reparented to us
                pass
        except ChildProcessError:
            pass
        killed = [pid for pid in killed if pid_running(pid)]
        if not killed or time.monotonic() > deadline:
            break
        time.sleep(0.005)
    for entry in root.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _child(req: dict[str, Any], home: Path, channel_fd: int, out_fd: int) -> None:
    """In the forked child: close the zygote's channel, move into a private directory, run, answer."""
    os.close(channel_fd)
    os.setpgid(0, 0)
    sandbox.set_pdeathsig()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.chdir(home)
    os.environ["HOME"] = os.environ["TMPDIR"] = tempfile.tempdir = str(home)
    from .worker import HANDLERS

    try:
        resp = HANDLERS[req["op"]](req)
    except BaseException as e:  # a failing load is a result
        resp = {"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
    data = (json.dumps(resp) + "\n").encode()
    while data:
        data = data[os.write(out_fd, data):]


def _run(req: dict[str, Any], root: Path, channel_fd: int, timeout: float, pidns: bool) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix=CHILD_PREFIX, dir=root))
    r, w = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; coverage cannot follow it
        code = 0
        try:
            os.close(r)
            _child(req, home, channel_fd, w)
        except BaseException:
            code = 70
        os._exit(code)
    os.close(w)
    buf, deadline, timed_out = b"", time.monotonic() + timeout, False
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([r], [], [], left)[0]:
            timed_out = True
            break
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        buf += chunk
    os.close(r)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    wall_ms = (time.perf_counter() - t0) * 1000
    _sweep(root, pid, pidns)
    try:
        resp: dict[str, Any] = json.loads(buf.decode().splitlines()[-1])
    except (ValueError, IndexError, UnicodeDecodeError):
        why = (f"timed out after {timeout:.0f} s" if timed_out else
               f"died (exit status {os.waitstatus_to_exitcode(status)})")
        resp = {"ok": False, "crashed": True, "error": f"sandboxed worker {why}"}
    resp["sandbox"] = {"wall_ms": wall_ms}
    return resp


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m pytest_exportconf.zygote", description=__doc__.splitlines()[0])
    ap.add_argument("--preload", default="", help="modules to import before any artifact is seen, comma-separated")
    ap.add_argument("--pidns", action="store_true", help="this zygote has its own PID namespace")
    ap.add_argument("--broker", type=Path, help="be the broker, listening on this Unix socket")
    ap.add_argument("--timeout", type=float, default=600, help="the broker's default timeout per load")
    ap.add_argument("--limits", default="{}", help="the broker's sandbox.Limits as JSON")
    args = ap.parse_args(argv)
    if args.broker:
        broker(args.broker, args.timeout, sandbox.Limits(**json.loads(args.limits)))
        return
    sandbox.set_pdeathsig()
    _no_dump()
    root = Path.cwd()
    sys.path[:] = [p for p in sys.path if p not in ("", str(root))]  # a child's files are never importable
    channel = open_channel()
    t0 = time.perf_counter()
    preloaded, failed = [], []
    for module in filter(None, args.preload.split(",")):
        try:
            importlib.import_module(module)
            preloaded.append(module)
        except Exception as e:  # the child imports it again and fails with the real error
            failed.append(f"{module}: {type(e).__name__}: {e}")
    import_ms = (time.perf_counter() - t0) * 1000
    from . import worker  # noqa: F401 - the children's protocol handler, imported once here

    _sweep(root, None, False)
    served = 0

    def run(req: dict[str, Any]) -> dict[str, Any]:
        nonlocal served
        resp = _run(req, root, channel.fileno(), float(req.get("timeout") or 600), args.pidns)
        resp["sandbox"] |= {"zygote_pid": os.getpid(), "preloaded": preloaded, "preload_failed": failed,
                            "preload_ms": import_ms, "first": served == 0}
        served += 1
        return resp

    serve({"run": run, "scan": run, "ping": lambda req: {"ok": True, "pid": os.getpid(), "preloaded": preloaded}},
          channel)


if __name__ == "__main__":
    main()
