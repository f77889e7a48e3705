"""Running set-up commands that must succeed (nodeenv, npm, pip, tsc), saying what runs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
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
