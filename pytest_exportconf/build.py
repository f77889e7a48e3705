"""Train a system with one framework and export it in every format that framework can produce.

One cache entry per (system, framework): training is the expensive step, exporting the rest is cheap,
so an entry holds all of that framework's exports, their export records and the reference outputs.

Training and exporting run in a child process forked for the build, under ``--exportconf-timeout``
(as loads run in the worker process): a framework that crashes or hangs costs that producer, with the
real error, and the run goes on. When an exporter is what crashed or hung, the build runs again
without it (training is seeded) and that format's export records the failure.
"""

from __future__ import annotations

import builtins
import inspect
import json
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__, tensors
from .cache import ArtifactCache, CacheTampered, verify
from .digest import tree_digest
from .registry import Registry

MANIFEST_LAYOUT = 2  # bump when what an entry's manifest holds changes (2: every output, named inputs)


STAGE = ".exportconf-stage"  # what the build child is doing: "train", or "export FORMAT/VARIANT"
RESULT = ".exportconf-build.json"  # the build child's answer
MAX_EXPORTER_FAILURES = 2  # builds run again at most this often, each without an exporter that crashed or hung


class BuildFailed(RuntimeError):
    """Training (or the build around it) failed in the build child; the message is its real error."""

    def __init__(self, message: str, trace: str = "") -> None:
        super().__init__(message)
        self.trace = trace


def _in_child(target: Callable[[], dict[str, Any]], out: Path, timeout: float) -> tuple[dict[str, Any] | None, str]:
    """Run ``target`` in a forked child (its own process group) for at most ``timeout`` s. Returns its
    answer (``{"ok": True, "manifest": ...}`` or ``{"ok": False, "error": ...}``), or None and what
    happened to the child (killed on the timeout, crashed)."""
    result = out / RESULT

    def child() -> None:
        os.setsid()  # a kill takes the child's own children along
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                payload: dict[str, Any] = {"ok": True, "manifest": target()}
            except BaseException as e:
                payload = {"ok": False, "error": f"{type(e).__name__}: {e}".strip()[:3000],
                           "trace": traceback.format_exc()[-3000:]}
        payload["warnings"] = [{"category": w.category.__name__, "message": str(w.message), "filename": w.filename,
                                "lineno": w.lineno} for w in caught]
        try:
            result.write_text(json.dumps(payload))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)  # not the parent's (pytest's) exit handlers

    proc = multiprocessing.get_context("fork").Process(target=child, daemon=True)
    proc.start()
    proc.join(timeout)
    if proc.is_alive() and proc.pid is not None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.join()
        return None, f"timed out after {timeout:.0f} s; killed"
    if result.is_file():
        payload = json.loads(result.read_text())
        result.unlink()
        for w in payload.pop("warnings", []):  # raised again here, where the cell's field notes collect them
            category = getattr(builtins, w["category"], None)
            category = category if isinstance(category, type) and issubclass(category, Warning) else UserWarning
            warnings.warn_explicit(w["message"], category, w["filename"], w["lineno"])
        return payload, ""
    code = proc.exitcode if proc.exitcode is not None else "?"
    return None, f"crashed (exit status {code})"


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class BuildError(RuntimeError):
    """A system that cannot be built: its cells are errors (of the declaration), not measured grades."""

    def __init__(self, system: str, message: str, trace: str) -> None:
        super().__init__(message)
        self.system, self.trace = system, trace


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
    timeout: float | None = None  # seconds for one build in its child process; None: build in this process
    _built: dict[tuple[str, str], Build] = field(default_factory=dict)  # this process's entries, read once
    _failed: dict[tuple[str, str], BuildError] = field(default_factory=dict)

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
            "manifest": MANIFEST_LAYOUT,
            "code": self._code_digest(system, framework),
        }

    def _code_digest(self, system: str, framework: str) -> str:
        """Digest of the Python files beside the recipe's and the exporters' modules (their helpers
        included), so that editing the code that makes an artifact invalidates it."""
        sys_ = self.registry.systems[system]
        objs: list[object] = [sys_]
        objs += [fmt for fmt in self.registry.formats.values() if sys_.exporter(fmt, framework)]
        dirs = {Path(inspect.getfile(type(o))).parent for o in objs}
        return tree_digest(sorted(f for d in dirs for f in d.glob("*.py")))

    def get(self, system: str, framework: str) -> Build:
        """The built entry; raises BuildError (remembered for the session) if the system cannot be built."""
        if (system, framework) in self._built:
            return self._built[(system, framework)]
        if (system, framework) in self._failed:
            raise self._failed[(system, framework)]
        seen = len(self.cache.events)
        sys_ = self.registry.systems[system]
        try:
            entry = self.cache.get_or_build(
                f"{system}/{framework}", self.key(system, framework),
                lambda tmp: self._isolated(system, framework, tmp),
                on_mismatch="rebuild" if sys_.rebuildable else "refuse",
            )
        except CacheTampered:
            raise  # not the declaration's fault: the cell reports the refusal (measure.py)
        except Exception as e:
            detail = str(e) if isinstance(e, BuildFailed) else f"{type(e).__name__}: {e}"
            trace = e.trace if isinstance(e, BuildFailed) and e.trace else traceback.format_exc()
            err = BuildError(system, f"{sys_.action} {system} with {framework} failed: {detail}", trace)
            self._failed[(system, framework)] = err
            raise err from e
        build = self._built[(system, framework)] = Build(entry, ArtifactCache.manifest(entry),
                                                         integrity=self.cache.events[seen:])
        return build

    def _isolated(self, system: str, framework: str, out: Path) -> dict[str, Any]:
        """:meth:`_build` in a child process under the timeout (in this process where fork is missing)."""
        # Forking a process that runs other threads (the system level's browser driver and load threads)
        # can leave the child waiting forever on a lock one of them held: build in this process then.
        if self.timeout is None or "fork" not in multiprocessing.get_all_start_methods() \
                or threading.active_count() > 1:
            return self._build(system, framework, out)
        skip: dict[str, str] = {}
        while True:
            for p in out.iterdir():  # what an earlier attempt left
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            payload, what = _in_child(lambda: self._build(system, framework, out, skip), out, self.timeout)
            if payload is not None:
                if not payload["ok"]:
                    raise BuildFailed(payload["error"], payload.get("trace", ""))
                return dict(payload["manifest"])
            stage = (out / STAGE).read_text() if (out / STAGE).is_file() else "train"
            if not stage.startswith("export ") or len(skip) >= MAX_EXPORTER_FAILURES:
                raise BuildFailed(f"the build child {what} during {stage!r}")
            skip[stage.removeprefix("export ")] = f"the exporter {what} (in the build child, --exportconf-timeout)"

    def _build(self, system: str, framework: str, out: Path, skip: dict[str, str] | None = None) -> dict[str, Any]:
        """Train, then export in every format; ``skip`` holds exports ("FORMAT/VARIANT") not to attempt
        again, with why."""
        skip = skip or {}
        stage = out / STAGE
        stage.write_text("train")
        sys_ = self.registry.systems[system]
        exportables = sys_.train(framework, self.seed)
        golden = tensors.encode_inputs(sys_.golden()[0])
        manifest: dict[str, Any] = {"variants": {}, "exports": {}}
        for ex in exportables:
            manifest["variants"][ex.variant] = {
                "golden": golden,
                "reference": [tensors.encode(a, n) for n, a in ex.references],
                "input_spec": [{"name": s.name, "dtype": s.dtype, "shape": list(s.shape)} for s in ex.input_specs],
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
                key = f"{fmt_name}/{ex.variant}"
                stage.write_text(f"export {key}")
                if key in skip:
                    manifest["exports"].setdefault(fmt_name, {})[ex.variant] = {"ok": False, "error": skip[key]}
                    continue
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
        stage.unlink()
        return manifest
