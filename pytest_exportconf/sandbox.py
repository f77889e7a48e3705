"""The confinement of every load that can run code, and of the scanner: a fresh, short-lived child per
artifact (forked from a zygote that imported the framework first: :mod:`pytest_exportconf.zygote`).

What a sandboxed child gets (see the README's "Security" section):

* a private temporary directory as its working directory, ``HOME`` and ``TMPDIR``, removed afterwards;
* a scrubbed environment: only the names in :data:`ENV_ALLOW` pass, never ``os.environ`` whole;
* resource limits: address space, CPU time, open files, processes (:class:`Limits`);
* its own process group, killed as a whole on timeout and when it is done (with every other process of
  the namespace), and ``PR_SET_PDEATHSIG`` = SIGKILL, so that a SIGKILL of pytest takes it along;
* where bubblewrap (``bwrap``) runs: a read-only view of the file system except its directory, no
  network, its own PID namespace (every process in it dies with the child) and ``--die-with-parent``;
  else, where unprivileged user namespaces work, ``unshare`` for no network and its own PID namespace;
  else neither, said in :func:`describe`.

``python -m pytest_exportconf.sandbox`` is the long-lived supervisor the Node harnesses spawn for the
Python bridge: it answers pings itself and runs every ``run`` request in a fresh sandboxed child.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from . import lines

ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONHASHSEED", "TF_CPP_MIN_LOG_LEVEL",
             "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LD_LIBRARY_PATH", "VIRTUAL_ENV",
             "SYSTEMROOT")
PR_SET_PDEATHSIG = 1
GIB = 1 << 30


@dataclass(frozen=True)
class Limits:
    address_space: int = 8 * GIB  # RLIMIT_AS (--exportconf-sandbox-memory); TensorFlow maps ~3 GiB on import
    cpu_seconds: int = 1200  # RLIMIT_CPU, summed over threads: twice the wall-clock timeout in a run
    open_files: int = 1024  # RLIMIT_NOFILE
    processes: int = 256  # RLIMIT_NPROC above the user's tasks at spawn (the kernel exempts root)


def scrubbed_env(extra: dict[str, str] | None = None, home: str | None = None) -> dict[str, str]:
    """The allow-listed part of this process's environment, with PYTHONPATH rebuilt from ``sys.path``
    (routes declared in a user's conftest must be importable in the child)."""
    env = {k: v for k, v in os.environ.items() if k in ENV_ALLOW}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if home:
        env["HOME"] = env["TMPDIR"] = home
    env.update(extra or {})
    return env


def set_pdeathsig() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def user_tasks() -> int:
    """Tasks (threads included) of this real user now: RLIMIT_NPROC counts them all."""
    uid, n = os.getuid(), 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.stat(f"/proc/{d}").st_uid == uid:
                    n += len(os.listdir(f"/proc/{d}/task"))
            except OSError:
                pass
    return n


def preexec(limits: Limits, nproc: int) -> Any:
    def run() -> None:
        set_pdeathsig()
        for res, value in ((resource.RLIMIT_AS, limits.address_space), (resource.RLIMIT_CPU, limits.cpu_seconds),
                           (resource.RLIMIT_NOFILE, limits.open_files), (resource.RLIMIT_NPROC, nproc)):
            try:
                resource.setrlimit(res, (value, value))
            except (ValueError, OSError):
                pass

    return run


@cache
def confinement() -> tuple[str, list[str]]:
    """Which confinement this machine allows: ("bwrap", argv), ("unshare", argv) or ("none", [])."""
    bwrap = shutil.which("bwrap")
    if bwrap:
        probe = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all",
                 "--die-with-parent", "true"]
        if _works(probe):
            return "bwrap", [bwrap]
    unshare = shutil.which("unshare")
    if unshare:
        argv = [unshare, "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
        if _works([*argv, "true"]):
            return "unshare", argv
    return "none", []


def _works(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=20, stdin=subprocess.DEVNULL).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def describe(limits: Limits | None = None) -> str:
    """What the sandbox enforces on this machine, for the field notes."""
    limits = limits or Limits()
    kind, _ = confinement()
    fs = {"bwrap": "read-only file system except its own directory, no network, own PID namespace (bubblewrap)",
          "unshare": "no network, own PID namespace (unshare; writes outside its directory NOT blocked and "
                     "children keep capabilities in their user namespace: install bubblewrap)",
          "none": "no namespaces available: network and writes NOT blocked"}[kind]
    return (f"fresh child per artifact (forked from a zygote that imported the framework before any artifact), "
            f"scrubbed environment, private temp dir; {fs}; limits: address space "
            f"{limits.address_space / GIB:.0f} GiB, CPU {limits.cpu_seconds} s, {limits.open_files} open files, "
            f"processes +{limits.processes}" + (" (not enforced for root)" if os.geteuid() == 0 else ""))


def wrap(argv: list[str], workdir: Path) -> list[str]:
    """``argv`` as run inside the confinement, with ``workdir`` its only writable place."""
    kind, prefix = confinement()
    if kind == "bwrap":
        # As root, bwrap keeps every capability unless told: a child with CAP_SYS_ADMIN could remount the
        # file system writable, one with CAP_SYS_PTRACE could read the zygote's memory. Drop them all.
        caps = ["--cap-drop", "ALL"] if os.geteuid() == 0 else []
        return [*prefix, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--bind", str(workdir),
                str(workdir), "--unshare-all", "--die-with-parent", "--new-session", *caps, "--chdir", str(workdir),
                "--", *argv]
    return [*prefix, *argv]


def kill_group(proc: subprocess.Popen[Any]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def ping() -> dict[str, Any]:
    """The answer to a ``ping`` from a process that runs sandboxed loads: who it is, and how it confines."""
    return {"ok": True, "pid": os.getpid(), "sandbox": confinement()[0]}


def serve(timeout: float, broker: str | None = None) -> None:
    """The Node bridge's supervisor: JSON lines on stdin/stdout; each ``run`` goes to a fresh sandboxed child,
    through the pytest process's broker when given one (its zygotes are shared by every stack), else
    through zygotes of its own."""
    set_pdeathsig()
    if os.getppid() == 1:
        return
    channel = lines.open_channel()
    from .zygote import BrokerClient, Sandbox, relay_log

    box = BrokerClient(broker) if broker else Sandbox(timeout)
    try:  # a child's log joins our stderr, which the harness keeps as its log
        lines.serve({"run": lambda req: relay_log(box.call(req, timeout)), "ping": lambda req: ping()}, channel)
    finally:
        box.close()


def bridge_args(timeout: float, broker: Path | None = None) -> list[str]:
    """What the Node harnesses pass to Python for the bridge (``EXPORTCONF_BRIDGE_ARGS``)."""
    via = ["--broker", str(broker)] if broker else []
    return ["-m", "pytest_exportconf.sandbox", "--timeout", str(timeout), *via]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pytest_exportconf.sandbox", description=serve.__doc__)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--broker", help="the Unix socket of the pytest process's sandbox broker")
    parser.add_argument("--describe", action="store_true", help="print what the sandbox enforces here and exit")
    args = parser.parse_args(argv)
    if args.describe:
        print(describe())
        return 0
    serve(args.timeout, args.broker)
    return 0


if __name__ == "__main__":
    sys.exit(main())
