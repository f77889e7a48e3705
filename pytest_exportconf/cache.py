"""Artifact cache shared by every pytest process (xdist workers included).

An entry is a directory built once: under a file lock, into a temporary sibling, then renamed into
place (atomic on one filesystem). ``manifest.json`` is written last, so an entry that has one is whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .locks import locked

MANIFEST = "manifest.json"


def digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


class ArtifactCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, name: str, key: dict[str, Any]) -> Path:
        return self.root / f"{name}-{digest(key)}"

    def get_or_build(self, name: str, key: dict[str, Any], build: Callable[[Path], dict[str, Any]]) -> Path:
        """Return the entry for ``key``, building it with ``build(tmpdir) -> manifest`` if absent."""
        final = self.path(name, key)
        if (final / MANIFEST).is_file():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        with locked(str(final) + ".lock", f"build the cache entry {name}"):
            if (final / MANIFEST).is_file():  # another process built it while we waited
                return final
            if final.exists():  # a half-built leftover from a killed run
                shutil.rmtree(final)
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
            try:
                manifest = build(tmp)
                manifest["key"] = key
                (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
                os.replace(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return final

    @staticmethod
    def manifest(entry: Path) -> dict[str, Any]:
        return json.loads((entry / MANIFEST).read_text())
