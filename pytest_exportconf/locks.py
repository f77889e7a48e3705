"""File locks that never wait forever: every lock has a timeout, and the error names the lock, what
it protects and who holds it (process, host, since when), read from a note the holder leaves beside it."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

DEFAULT_TIMEOUT = 3600.0  # seconds; the longest holds: a tool-environment install, a build run again


class LockTimeout(TimeoutError):
    """A lock was not acquired in time."""


def _holder(note: Path) -> str:
    try:
        info = json.loads(note.read_text())
    except (OSError, ValueError):
        return "its holder left no note (a process of another exportconf version, or one that just started)"
    since = time.strftime("%H:%M:%S", time.localtime(float(info.get("since", 0))))
    return f"held by pid {info.get('pid')} on {info.get('host')} since {since} ({info.get('what')})"


@contextmanager
def locked(path: str | os.PathLike[str], what: str, timeout: float = DEFAULT_TIMEOUT) -> Iterator[None]:
    """Hold the file lock ``path`` while ``what`` happens; raise :class:`LockTimeout` after ``timeout`` s."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    note = path.with_name(path.name + ".holder")
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise LockTimeout(f"waited {timeout:.0f} s for the lock {path} to {what}: {_holder(note)}; if no such "
                          "process runs any more, delete the lock file") from None
    try:
        note.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "what": what,
                                    "since": time.time()}))
        yield
    finally:
        note.unlink(missing_ok=True)
        lock.release()
