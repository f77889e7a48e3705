"""Processes: set-up commands that must succeed (nodeenv, npm, pip, tsc), saying what runs; whether a
process still runs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Log = Callable[[str], None]
OUTPUT_TAIL = 4000


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_logged(argv: list[str], log: Log, error: type[Exception] = RuntimeError,
               **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (logged first) with no stdin; a non-zero exit raises ``error`` with the output's tail."""
    log("exportconf: $ " + " ".join(argv))
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)
    if proc.returncode != 0:
        from .netenv import hint

        out = (proc.stdout + proc.stderr).strip()
        why = hint(out)  # a TLS or proxy failure names the variable to pass (NODE_EXTRA_CA_CERTS, ...)
        raise error(f"`{' '.join(argv)}` failed with exit status {proc.returncode}:\n{out[-OUTPUT_TAIL:]}"
                    + (f"\n{why}" if why else ""))
    return proc


def pid_running(pid: int) -> bool:
    """Whether ``pid`` still runs (gone, or a zombie waiting for its reaper, counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
