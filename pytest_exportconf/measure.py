"""Measure one cell: every producer's export of the format, up the stack's route ladder, compared
with the reference, graded by the rubric. Nothing here knows a concrete format or stack."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import rubric, tensors
from .build import Builder
from .cache import CacheTampered
from .compare import compare
from .concepts import ROUTE_KINDS, Attempt, Friction, Outcome, ProducerRow
from .registry import Registry, Route, TensorSpec
from .runner import Runner
from .security import Scanner, worst
from .snippets import LANGUAGES, SnippetContext
from .study import study_grade
from .zygote import sandbox_note


@dataclass
class Measurer:
    registry: Registry
    builder: Builder
    runner: Runner
    frameworks: list[str] | None = None  # selection; None = all registered
    repeats: int = 20
    reported: set[str] = field(default_factory=set)  # systems whose build error was shown in full
    trust_all: bool = False  # --exportconf-trust: load artifacts the scan finds dangerous (still sandboxed)
    build_offset: int = 0  # this xdist worker's number: where in a cell's producers its builds start
    scanner: Scanner = field(init=False)

    def __post_init__(self) -> None:
        self.scanner = Scanner(self.runner)  # scans fork from the runner's sandbox broker, as loads do

    def producers(self, system: str, fmt: str) -> list[str]:
        """Frameworks that can produce ``fmt`` for ``system``: the format's primary one first."""
        sys_, format_ = self.registry.systems[system], self.registry.formats[fmt]
        names = [f for f in self.registry.frameworks if self.frameworks is None or f in self.frameworks]
        names = [f for f in names if f in sys_.frameworks and sys_.exporter(format_, f)]
        return sorted(names, key=lambda f: f != sys_.primary_framework(format_))

    def prepare(self, system: str, fmt: str) -> None:
        """Train (or load) every producer of the cell's format; raises BuildError when the system's own
        declaration fails (its factory raises, the model rejects its golden inputs). Each xdist worker starts
        at another producer (``build_offset``): on a cold cache two workers then train different models at
        once instead of one waiting on the other's lock."""
        producers = self.producers(system, fmt)
        k = self.build_offset % len(producers) if producers else 0
        for fw in producers[k:] + producers[:k]:
            try:
                self.builder.get(system, fw)
            except CacheTampered:
                pass  # a refusal of that producer's artifacts, reported by its cell

    def measure(self, system: str, fmt: str, stack: str) -> Outcome:
        format_ = self.registry.formats[fmt]
        primary = self.registry.systems[system].primary_framework(format_)
        out = Outcome(system=system, format=fmt, stack=stack, primary_framework=primary,
                      study_grade=study_grade(fmt, stack) if self.registry.systems[system].in_study else None,
                      executes_code_on_load=format_.executes_code_on_load)
        routes = self.registry.routes_for(fmt, stack)
        producers = self.producers(system, fmt)
        if format_.executes_code_on_load:  # every producer's zygote imports at once, not one after another
            self.runner.prestart([list(self.registry.frameworks[fw].modules) for fw in producers])
        switch: Friction | None = None  # set once the primary framework was measured and did not pass
        for fw in producers:
            row = self._producer(system, fmt, fw, fw == primary, routes, switch)
            out.producers.append(row)
            if row.primary and row.exported and row.winner is None:
                switch = Friction("framework-switch", f"the primary framework {primary} did not pass on {stack}",
                                  "observed", f"{primary}: {_first_error([row])}")
        primary_rows = [p for p in out.producers if p.primary and p.exported]
        unmeasured = "" if primary_rows else f"primary framework not measured ({primary}: " + (
            next((p.export_error.splitlines()[0][:200] for p in out.producers if p.primary and p.export_error), "")
            or "not selected or cannot produce this format") + ")"
        # The primary framework's pass is the cell's; another producer's only when the primary was not
        # measured or did not pass (and then it carries the switch).
        passing = [p for p in primary_rows if p.winner is not None] or [p for p in out.producers
                                                                         if p.winner is not None]
        verdicts = [p.verdict for p in out.producers if p.verdict]
        out.verdict = worst(verdicts)
        if passing:
            best = min(passing, key=lambda p: (rubric.rank(p.grade), not p.primary))
            att = best.attempts[best.winner or 0]
            out.grade, out.frictions = best.grade, best.frictions
            out.verdict = best.scans.get(att.variant, {}).get("label", out.verdict)
            out.winner = f"{best.framework}/{att.variant}/{att.route}"
            out.snippet = att.snippet
            out.snippet_language = LANGUAGES.get(stack, "") if att.snippet else ""
            kinds = ", ".join(sorted({f.kind for f in best.frictions})) or "no friction"
            out.reason = f"{att.route} ({att.kind}) on the {best.framework} export, {att.variant}: {kinds}"
        else:
            out.grade = "--"
            if not producers:
                out.reason = "no selected framework can produce this format for this system"
            elif not routes:
                out.reason = f"no route runs {fmt} on {stack}"
            else:
                out.reason = "no route passed: " + _first_error(out.producers)
        if unmeasured and producers:
            out.reason += f"; {unmeasured}"
        out.status = rubric.GRADE_STATUS[out.grade]  # type: ignore[assignment]
        return out

    def _producer(self, system: str, fmt: str, fw: str, primary: bool, routes: list[type[Route]],
                  switch: Friction | None) -> ProducerRow:
        row = ProducerRow(framework=fw, primary=primary)
        try:
            build = self.builder.get(system, fw)  # a BuildError is the declaration's, not a measurement
        except CacheTampered as e:
            row.refused.append(str(e))
            row.export_error = str(e)
            return row
        exports = build.exports(fmt)
        row.export_error = "; ".join(f"{r['variant']}: {r['error']}" for r in exports if not r["ok"])
        exports = [r for r in exports if r["ok"]]
        row.integrity = list(build.integrity)
        exports = [r for r in exports if self._admit(system, fmt, build, r, row)]
        if not exports:
            return row
        row.exported = True
        row.size_bytes, row.files, row.exporter = exports[0]["size_bytes"], exports[0]["files"], exports[0]["exporter"]
        # The ladder: route kinds from the best grade they allow (native) down, and within a kind the
        # recipe's preferred variant first, so the first pass is also the best grade this producer gets.
        ladder = [(rec, route) for kind in ROUTE_KINDS for rec in exports for route in routes if route.kind == kind]
        for rec, route in ladder:
            att = self._attempt(system, fw, build.entry, build.variant(rec["variant"]), rec, route, switch)
            row.attempts.append(att)
            if att.ok:
                row.winner = len(row.attempts) - 1
                row.grade = rubric.grade(True, att.frictions)
                row.frictions = att.frictions
                row.size_bytes, row.files, row.exporter = rec["size_bytes"], rec["files"], rec["exporter"]
                return row
        return row

    def _attempt(self, system: str, fw: str, entry: Path, variant: dict[str, Any], rec: dict[str, Any],
                 route: type[Route], switch: Friction | None) -> Attempt:
        sys_ = self.registry.systems[system]
        att = Attempt(route=route.name, kind=route.kind, variant=rec["variant"])
        att.notes.append(f"exported by {rec['exporter']}: {', '.join(rec['files'])} ({rec['size_bytes']:,} bytes)")
        att.notes.extend(rec.get("notes", []))
        artifact = entry / rec["main"]
        if route.kind == "converted":
            try:
                artifact = self._convert(route, artifact, att)
            except Exception as e:
                att.error = f"conversion failed: {type(e).__name__}: {e}"
                return att
        request = {
            "op": "run",
            "route": route.target(),
            "artifact": str(artifact),
            "preprocessing": str(entry / variant["preprocessing"]) if variant["preprocessing"] else None,
            "inputs": variant["golden"],
            "input_spec": variant["input_spec"],
            "repeats": self.repeats,
            # what a sandbox zygote imports before it forks the load's child (the bridge forwards it too);
            # the producer's framework only, so that every format of one producer shares one zygote
            "preload": list(self.registry.frameworks[fw].modules),
        }
        sandboxed = self.registry.formats[route.format].executes_code_on_load
        resp = self.runner.call(route.runtime, request, sandboxed=sandboxed)
        if resp.get("sandbox"):
            sb = resp["sandbox"]
            att.notes.append(sandbox_note(sb, resp))
        att.notes.extend(resp.get("notes", []))
        log = [ln for ln in resp.get("log", "").splitlines() if ln.strip()]
        if log and route.runtime != "python":  # the harness's own lines; the Python worker's is library noise
            att.notes.append("harness log: " + " | ".join(log[-5:]))
        att.versions = resp.get("versions", {})
        if not resp.get("ok"):
            att.error = resp.get("error", "unknown error")
            if resp.get("trace"):
                att.notes.append("trace: " + resp["trace"][-1500:])
            return att
        att.import_ms, att.load_ms, att.p50_ms = resp.get("import_ms"), resp.get("load_ms"), resp.get("p50_ms")
        frictions = [Friction.from_dict(f) for f in rec.get("frictions", []) + resp.get("frictions", [])]
        frictions += rubric.implied(route.kind, _kind_evidence(route, att))
        if variant["preprocessing"]:
            frictions.append(Friction("separate-preprocessing", "preprocessing.json applied by the stack",
                                      "observed", f"the {rec['variant']} variant ran with {variant['preprocessing']}"))
        if switch is not None:
            frictions.append(dataclasses.replace(switch, detail=f"{switch.detail}; produced by {rec['exporter']}"))
        att.frictions = _unique(frictions)
        got = [(t.get("name"), tensors.decode(t)) for t in resp["outputs"]]
        want = [(t.get("name"), tensors.decode(t)) for t in variant["reference"]]
        cmp = compare(got, want, sys_.tolerance())
        att.max_abs_error, att.min_atol = cmp.max_abs_error, cmp.min_atol
        att.outputs = [o.to_dict() for o in cmp.outputs]
        att.notes.append(f"compared with reference: {cmp.detail}")
        att.ok = cmp.ok
        if not cmp.ok:
            att.error = f"outputs differ from the reference: {cmp.detail}"
            return att
        att.snippet = self._snippet(system, route, artifact, entry, variant, att, resp.get("facts") or {})
        return att

    def _snippet(self, system: str, route: type[Route], artifact: Path, entry: Path, variant: dict[str, Any],
                 att: Attempt, facts: dict[str, str]) -> str:
        """The passing route's program for this artifact; a route that cannot write one leaves a note."""
        specs, golden = variant["input_spec"], variant["golden"]
        specs = specs if isinstance(specs, list) else [specs]
        golden = golden if isinstance(golden, list) else [golden]
        if len(specs) != 1 or len(golden) != 1:
            att.notes.append(f"no snippet: snippets feed one input; this system feeds {len(specs)}")
            return ""
        (spec,), (inputs,) = specs, golden
        ctx = SnippetContext(
            cell=f"{system}/{route.format}/{route.stack}", route=route.name, artifact=artifact,
            inputs=tensors.decode(inputs), input_spec=TensorSpec(spec["name"], spec["dtype"], tuple(spec["shape"])),
            preprocessing=entry / variant["preprocessing"] if variant["preprocessing"] else None,
            facts={str(k): str(v) for k, v in facts.items()},
            notes=tuple(n for n in att.notes if n.startswith("converted by")),
        )
        try:
            code = route.snippet(ctx)
        except Exception as e:  # a snippet is a convenience: its failure is a note, not a failed cell
            att.notes.append(f"no snippet: {type(e).__name__}: {e}")
            return ""
        if not code:
            att.notes.append(f"no snippet: route {route.name} writes none")
        return code
    def _admit(self, system: str, fmt: str, build: Any, rec: dict[str, Any], row: ProducerRow) -> bool:
        """Verify an export's files against the cache's SHA-256, scan it, and refuse it when it changed or the
        scan finds it dangerous or unscannable and neither the system nor the run trusts it."""
        variant = rec["variant"]
        changed = build.verify_export(rec)
        if changed:
            row.refused.append(f"{variant}: refused: the cached artifact changed after it was built and verified: "
                               + "; ".join(changed[:5]))
            return False
        verdict = self.scanner.verdict(build.entry / rec["main"], self.registry.formats[fmt].executes_code_on_load)
        row.scans[variant] = verdict
        row.verdict = worst([v["label"] for v in row.scans.values()])
        if verdict["status"] in ("clean", "none"):
            return True
        trusted = "per system (trust = true)" if getattr(self.registry.systems[system], "trust", False) else (
            "per run (--exportconf-trust)" if self.trust_all else "")
        if trusted:
            verdict["trusted"] = trusted
            verdict.setdefault("notes", []).append(f"trusted {trusted}: loaded anyway, in the sandbox")
            return True
        row.refused.append(f"{variant}: refused to load {rec['main'].split('/')[-1]}: {verdict['label']}; "
                           "trust it with trust = true on the system or --exportconf-trust to load it (sandboxed)")
        return False

    def _convert(self, route: type[Route], artifact: Path, att: Attempt) -> Path:
        """Run a converted route's conversion step once per artifact, cached like the exports. Keyed on
        the conversion itself, so routes sharing it (CPU and WASM backends, JS and TS) convert once."""
        prepare = route.prepare.__func__  # type: ignore[attr-defined]
        converter = f"{prepare.__module__}.{prepare.__qualname__}"
        key = {"converter": converter, "artifact": str(artifact), "mtime": artifact.stat().st_mtime_ns}
        entry = self.builder.cache.get_or_build(
            f"converted/{prepare.__qualname__.split('.')[0]}", key,
            lambda out: dict(zip(("main", "notes"), route.prepare(artifact, out), strict=True)),
        )
        manifest = self.builder.cache.manifest(entry)
        att.notes.extend(manifest["notes"])
        return entry / manifest["main"]


def _kind_evidence(route: type[Route], att: Attempt) -> str:
    """What showed a route kind's friction in this attempt: the conversion's notes, the bridged route; for an
    unofficial runtime (declared) the route's registered classification."""
    if route.kind == "converted":
        return next((n for n in att.notes if n.startswith("converted by")), f"{route.name} converted the artifact")
    if route.kind == "unofficial":  # declared: whose runtime it is is a documented fact, not a measurement
        doc = (route.__doc__ or "").strip().splitlines()
        return (f"{route.__module__}.{route.__qualname__} is registered as an unofficial runtime"
                + (f": {doc[0]}" if doc else ""))
    return f"{route.name} ran {route.target()} ({route.__module__}.{route.__qualname__})"


def _unique(frictions: list[Friction]) -> list[Friction]:
    seen: dict[str, Friction] = {}
    for f in frictions:
        seen.setdefault(f.kind, f)
    return list(seen.values())


def _first_error(rows: list[ProducerRow]) -> str:
    for r in rows:
        if r.refused and not r.attempts:
            return f"{r.framework}/{r.refused[0]}"
        for a in r.attempts:
            if a.error:
                return f"{r.framework}/{a.variant}/{a.route}: {a.error.splitlines()[0][:200]}"
        if r.export_error:
            return f"{r.framework}: {r.export_error.splitlines()[0][:200]}"
    return "nothing ran"
