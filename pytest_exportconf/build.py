"""Train a system with one framework and export it in every format that framework can produce.

One cache entry per (system, framework): training is the expensive step, exporting the rest is cheap,
so an entry holds all of that framework's exports, their export records and the reference outputs.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__, tensors
from .cache import ArtifactCache, verify
from .registry import Registry


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass
class Build:
    """A (system, framework) cache entry, as read back."""

    entry: Path
    manifest: dict[str, Any]
    integrity: list[str] = field(default_factory=list)  # what verifying the cache entry found and did

    def verify_export(self, rec: dict[str, Any]) -> list[str]:
        """Re-check one export's files against the SHA-256 recorded at build time, just before a load."""
        return verify(self.entry, self.manifest, "/".join(Path(rec["main"]).parts[:3]))

    def exports(self, fmt: str) -> list[dict[str, Any]]:
        """Export records of one format, one per variant, in the recipe's order of preference."""
        return [dict(rec, variant=v) for v, rec in self.manifest["exports"].get(fmt, {}).items()]

    def variant(self, name: str) -> dict[str, Any]:
        return self.manifest["variants"][name]


@dataclass
class Builder:
    registry: Registry
    cache: ArtifactCache
    seed: int = 0
    _built: dict[tuple[str, str], Build] = field(default_factory=dict)  # this process's entries, read once
    _failed: dict[tuple[str, str], str] = field(default_factory=dict)

    def key(self, system: str, framework: str) -> dict[str, Any]:
        sys_ = self.registry.systems[system]
        fw = self.registry.frameworks[framework]
        return {
            "system": system,
            "recipe": sys_.recipe_version,
            "framework": framework,
            "versions": fw.versions(),
            "formats": sorted(f for f, fmt in self.registry.formats.items() if sys_.exporter(fmt, framework)),
            "system_token": sys_.cache_token(),
            "seed": self.seed,
            "exportconf": __version__,
            "code": self._code_digest(system, framework),
        }

    def _code_digest(self, system: str, framework: str) -> str:
        """Digest of the Python files beside the recipe's and the exporters' modules (their helpers
        included), so that editing the code that makes an artifact invalidates it."""
        sys_ = self.registry.systems[system]
        objs: list[object] = [sys_]
        objs += [fmt for fmt in self.registry.formats.values() if sys_.exporter(fmt, framework)]
        dirs = {Path(inspect.getfile(type(o))).parent for o in objs}
        files = sorted(f for d in dirs for f in d.glob("*.py"))
        h = hashlib.sha256()
        for f in files:
            h.update(Path(f).read_bytes())
        return h.hexdigest()[:16]

    def get(self, system: str, framework: str) -> Build:
        """The built entry; raises RuntimeError (remembered for the session) if training fails."""
        if (system, framework) in self._built:
            return self._built[(system, framework)]
        if (system, framework) in self._failed:
            raise RuntimeError(self._failed[(system, framework)])
        seen = len(self.cache.events)
        sys_ = self.registry.systems[system]
        try:
            entry = self.cache.get_or_build(
                f"{system}/{framework}", self.key(system, framework), lambda tmp: self._build(system, framework, tmp),
                on_mismatch="rebuild" if sys_.rebuildable else "refuse",
            )
        except Exception as e:
            msg = f"training {system} with {framework} failed: {type(e).__name__}: {e}"
            self._failed[(system, framework)] = msg
            raise RuntimeError(msg) from e
        build = self._built[(system, framework)] = Build(entry, ArtifactCache.manifest(entry),
                                                         integrity=self.cache.events[seen:])
        return build

    def _build(self, system: str, framework: str, out: Path) -> dict[str, Any]:
        sys_ = self.registry.systems[system]
        exportables = sys_.train(framework, self.seed)
        golden = tensors.encode(sys_.golden()[0])
        manifest: dict[str, Any] = {"variants": {}, "exports": {}}
        for ex in exportables:
            manifest["variants"][ex.variant] = {
                "golden": golden,
                "reference": [float(v) for v in ex.reference],
                "input_spec": {"name": ex.input_spec.name, "dtype": ex.input_spec.dtype,
                               "shape": list(ex.input_spec.shape)},
                "preprocessing": None,
            }
            if ex.preprocessing is not None:
                prep = out / "preprocessing" / ex.variant / "preprocessing.json"
                prep.parent.mkdir(parents=True, exist_ok=True)
                prep.write_text(json.dumps(ex.preprocessing))
                manifest["variants"][ex.variant]["preprocessing"] = str(prep.relative_to(out))
        for fmt_name, fmt in self.registry.formats.items():
            exporter = sys_.exporter(fmt, framework)
            if exporter is None:
                continue
            for ex in exportables:
                dest = out / "exports" / fmt_name / ex.variant
                dest.mkdir(parents=True)
                rec: dict[str, Any]
                try:
                    res = exporter(ex, dest)
                    main = dest / res.main
                    rec = {
                        "ok": True, "main": str(main.relative_to(out)), "exporter": res.exporter,
                        "files": sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()),
                        "size_bytes": dir_size(dest), "notes": res.notes,
                        "frictions": [f.to_dict() for f in res.frictions],
                    }
                except Exception as e:
                    rec = {"ok": False, "error": f"{type(e).__name__}: {e}".strip()[:2000],
                           "trace": traceback.format_exc()[-3000:]}
                manifest["exports"].setdefault(fmt_name, {})[ex.variant] = rec
        return manifest
