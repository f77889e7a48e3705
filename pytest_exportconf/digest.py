"""The one content digest of files and folders: cache keys, lockfile and source stamps, conversion memos."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def tree_digest(paths: Path | Iterable[Path], *, salt: Any = None, length: int = 16) -> str:
    """SHA-256 (hex, ``length`` characters) over ``salt`` (as JSON) and, for every file under ``paths``
    (each a file or a folder, taken in sorted order), its name and bytes. A file's name is relative to
    the folder given, or its own name when the file was given; ``__pycache__`` is skipped."""
    h = hashlib.sha256(json.dumps(salt, sort_keys=True).encode())
    for path in sorted([paths] if isinstance(paths, Path) else [Path(p) for p in paths]):
        files = sorted(f for f in path.rglob("*") if f.is_file() and "__pycache__" not in f.parts) \
            if path.is_dir() else [path]
        for f in files:
            name = f.relative_to(path).as_posix() if path.is_dir() else f.name
            h.update(name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:length]
