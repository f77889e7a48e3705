"""Artifact cache shared by every pytest process (xdist workers included).

An entry is a directory built once: under a file lock, into a temporary sibling, then renamed into
place (atomic on one filesystem). ``manifest.json`` is written last, so an entry that has one is whole.
It records the SHA-256 of every file in the entry; reading an entry verifies them first. A mismatch (a
file changed, missing or added since the build) rebuilds the entry, or, with ``on_mismatch="refuse"``
(a user's own artifacts, which the cache cannot remake from a recipe), raises :class:`CacheTampered`.

Names are sanitised: each ``/``-separated part must be a plain file name, and the entry must resolve
inside the cache directory; anything else raises :class:`UnsafeName`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock, Timeout

from .locks import locked

MANIFEST = "manifest.json"
SAFE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,99}$")


class UnsafeName(ValueError):
    """A cache name (e.g. a system's name) that is not a plain name or escapes the cache directory."""


class CacheTampered(RuntimeError):
    """A cache entry whose files no longer match the SHA-256 recorded when it was built."""


def check_name(name: str, what: str = "name") -> str:
    """``name`` if every ``/``-separated part is a plain file name; else :class:`UnsafeName`."""
    parts = name.split("/")
    bad = [p for p in parts if not SAFE_PART.match(p) or p in (".", "..")]
    if not name or bad or os.path.isabs(name) or "\\" in name:
        raise UnsafeName(f"{what} {name!r} is not a plain name (letters, digits, '._+-', not starting with '.' "
                         "and no path separators): it could escape the cache directory")
    return name


def digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_sha256(root: Path, under: str = "") -> dict[str, str]:
    """SHA-256 of every file below ``root/under`` (the manifest excluded), by path relative to ``root``."""
    base = root / under if under else root
    files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base] if base.exists() else []
    return {str(p.relative_to(root)): file_sha256(p) for p in files if p.name != MANIFEST or p.parent != root}


def verify(entry: Path, manifest: dict[str, Any], under: str = "") -> list[str]:
    """What no longer matches the recorded SHA-256 below ``entry/under``: ``[]`` when all do."""
    recorded: dict[str, str] | None = manifest.get("sha256")
    if recorded is None:
        return ["the entry records no SHA-256 (written by an older exportconf)"]
    if under:
        recorded = {k: v for k, v in recorded.items() if k == under or k.startswith(under.rstrip("/") + "/")}
    now = tree_sha256(entry, under)
    problems = [f"{f}: changed since it was built" for f in sorted(recorded) if f in now and now[f] != recorded[f]]
    problems += [f"{f}: missing" for f in sorted(set(recorded) - set(now))]
    problems += [f"{f}: added after the build" for f in sorted(set(now) - set(recorded))]
    return problems


class ArtifactCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.events: list[str] = []  # what verification found and did, for the report

    def path(self, name: str, key: dict[str, Any]) -> Path:
        check_name(name, "cache name")
        final = self.root / f"{name}-{digest(key)}"
        if not final.resolve().is_relative_to(self.root.resolve()):
            raise UnsafeName(f"cache name {name!r} resolves outside the cache directory {self.root}")
        return final

    def get_or_build(self, name: str, key: dict[str, Any], build: Callable[[Path], dict[str, Any]],
                     on_mismatch: Literal["rebuild", "refuse"] = "rebuild") -> Path:
        """Return the verified entry for ``key``, building it with ``build(tmpdir) -> manifest`` if absent."""
        final = self.path(name, key)
        if (final / MANIFEST).is_file() and not self._problems(final, on_mismatch):
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        with locked(str(final) + ".lock", f"build the cache entry {name}"):
            if (final / MANIFEST).is_file():  # another process built it while we waited, or it failed verification
                problems = self._problems(final, on_mismatch)
                if not problems:
                    return final
                self.events.append(f"{final.name}: rebuilt: {'; '.join(problems[:5])}")
            if final.exists():  # a half-built leftover from a killed run, or a rejected entry
                shutil.rmtree(final)
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
            try:
                manifest = build(tmp)
                manifest["key"] = key
                manifest["sha256"] = tree_sha256(tmp)
                (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
                os.replace(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return final

    def _problems(self, entry: Path, on_mismatch: str) -> list[str]:
        try:
            manifest = self.manifest(entry)
        except (OSError, ValueError) as e:
            return [f"unreadable manifest: {e}"]
        problems = verify(entry, manifest)
        if problems and on_mismatch == "refuse" and "sha256" in manifest:
            raise CacheTampered(f"cache entry {entry} failed verification: {'; '.join(problems[:5])}; refused "
                                "(a user's artifact is never rebuilt from the cache): delete the entry or run with "
                                "--exportconf-cache-clean to copy the artifact afresh")
        return problems

    @staticmethod
    def manifest(entry: Path) -> dict[str, Any]:
        return json.loads((entry / MANIFEST).read_text())

    def clean(self, version: str, temp_dir: str | None = None) -> list[str]:
        """Remove what killed or older runs left: temporary build directories, unheld lock files, entries
        without a manifest or written by another exportconf version, and dead runs' worker logs and
        sandbox directories in the system temporary directory. Returns what was removed."""
        removed: list[str] = []
        if self.root.is_dir():
            for lock in sorted(self.root.rglob("*.lock")):
                entry = Path(str(lock)[: -len(".lock")])
                try:
                    with FileLock(str(lock), timeout=0):
                        removed += self._clean_entry(entry, version)
                        for tmp in entry.parent.glob(f".{entry.name}-*"):
                            shutil.rmtree(tmp, ignore_errors=True)
                            removed.append(f"temporary directory {tmp}")
                except Timeout:
                    continue  # in use by a running process
                lock.unlink(missing_ok=True)
                removed.append(f"lock file {lock}")
            for man in sorted(self.root.rglob(MANIFEST)):
                if not man.with_name(man.parent.name + ".lock").exists():
                    removed += self._clean_entry(man.parent, version)
        removed += _clean_temp(Path(temp_dir or tempfile.gettempdir()))
        return removed

    @staticmethod
    def _clean_entry(entry: Path, version: str) -> list[str]:
        if not entry.is_dir():
            return []
        try:
            manifest = ArtifactCache.manifest(entry)
        except (OSError, ValueError):
            shutil.rmtree(entry, ignore_errors=True)
            return [f"incomplete entry {entry}"]
        made_by = manifest.get("key", {}).get("exportconf")
        if "sha256" not in manifest or (made_by is not None and made_by != version):
            shutil.rmtree(entry, ignore_errors=True)
            return [f"entry of exportconf {made_by or 'older'} {entry}"]
        return []


def _clean_temp(tmp: Path) -> list[str]:
    """Worker logs and sandbox directories (``exportconf-<pid>-...``) of processes that are gone."""
    removed = []
    for p in sorted(tmp.glob("exportconf-*")):
        m = re.match(r"^exportconf-(?:sandbox-|scan-)?(\d+)-", p.name)
        if not m or _alive(int(m.group(1))):
            continue
        if time.time() - p.stat().st_mtime < 5:
            continue
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        removed.append(f"left-over {p}")
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
