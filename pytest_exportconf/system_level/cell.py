"""One cell at the system level: the runtime level's winning artifact inside its stack's web app.

The app is built once (cached), started once per run (host.py), and told about each cell's model through
its ``models.json`` (it loads a model on the first request for it). The cell is then driven over HTTP
with the golden inputs, a bounded load, the bad-request probes and, in Chromium, through its page.
Its system grade is the rubric applied to the runtime frictions plus the frictions this level observed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import rubric
from ..compare import compare
from ..concepts import Friction, Outcome
from . import drive
from .apps import APPS
from .browser import Browser
from .host import AppHost, HostedApps, Running

LOAD_REQUESTS, LOAD_CONCURRENCY = 200, 8
# The Browser column: the Next.js app's /browser pages run the model in Chromium itself.
BROWSER_HOST = "typescript"
BROWSER_RUNTIMES = {"onnx": "onnxruntime-web", "savedmodel": "TensorFlow.js (the converted graph model)"}


@dataclass
class SystemLevel:
    """The session's system level (one per pytest process): the run's apps, and this process's browser."""

    measurer: Any  # ..measure.Measurer: the builder and the conversion cache of the runtime level
    apps: AppHost | HostedApps  # this process's own servers, or (an xdist worker) the controller's
    browser: Browser = field(default_factory=Browser)
    failed: dict[str, str] = field(default_factory=dict)  # stack -> why its app is not up
    shot: set[tuple[str, str]] = field(default_factory=set)  # (stack, system) pages photographed: one each

    # ---- apps ------------------------------------------------------------------------------------------
    def app(self, stack: str) -> Running:
        if stack in self.failed:
            raise RuntimeError(self.failed[stack])
        try:
            run = self.apps.ready(stack)
        except RuntimeError as e:
            self.failed[stack] = str(e)
            raise
        if not run.alive():
            self.failed[stack] = f"the {run.label} server died: {run.log_tail(800)}"
            raise RuntimeError(self.failed[stack])
        return run

    def close(self) -> None:
        """Close the browser, and the servers if this process started them."""
        if isinstance(self.apps, AppHost):
            self.apps.close()
        self.browser.close()

    # ---- a cell ----------------------------------------------------------------------------------------
    def measure(self, out: Outcome) -> None:
        """Fill ``out.system_grade`` and ``out.system_level`` (a JSON-able dict)."""
        res: dict[str, Any] = {"measured": False}
        out.system_level = res
        registry = self.measurer.registry
        if out.stack not in APPS:
            res["reason"] = f"no web app for stack {out.stack}; apps: {', '.join(APPS)}"
            return
        sys_ = registry.systems[out.system]
        inputs = sys_.golden()[0]
        if isinstance(inputs, dict):
            res["reason"] = (f"the apps' pages and APIs take one input; {out.system} feeds {len(inputs)} "
                             f"({', '.join(inputs)})")
            return
        api = drive.api_for(out.system, inputs)
        if api is None:
            res["reason"] = (f"no page or API fits {out.system}'s input {np.asarray(inputs).dtype}"
                             f"{list(np.asarray(inputs).shape)}: the apps serve one row of k numbers or one text")
            return
        res["app"] = APPS[out.stack].label
        if not out.winner:
            out.system_grade = "--"
            res["reason"] = "the runtime level found no passing route to integrate"
            return
        if out.verdict and not out.verdict.startswith(("clean", "nothing to scan")):
            # trusted, the runtime level loaded it in the sandbox; an app loads it in its own server process
            res["reason"] = (f"not measured: the scan said {out.verdict}, and the web apps load a model in their "
                             "own server process, outside the sandbox, even when it is trusted")
            return
        try:
            entry, ref = self._entry(out)
        except LookupError as e:  # the app has no integration for the route that passed: a finding
            out.system_grade = "--"
            res["reason"] = str(e)
            return
        except ValueError as e:  # the apps' API cannot carry every output: our limit, so not measured
            res["reason"] = f"not measured: {e}"
            return
        try:
            run = self.app(out.stack)
        except RuntimeError as e:
            out.system_grade = "--"
            res["reason"] = f"the {res['app']} app is not up: {e}"
            return
        res["measured"] = True
        res["build"] = {k: run.info.get(k) for k in ("seconds", "cached", "notes")}
        res["server_start_ms"] = (run.started_s or 0) * 1000
        res["server_pid"] = run.pid  # one per app and run, whichever xdist worker measured the cell
        res["integration"] = {k: entry[k] for k in ("loader", "format")} | {
            "artifact": Path(entry["artifact"]).name, "preprocessing": bool(entry["preprocessing"])}
        if out.system not in drive.APIS:  # a generic page: the form is built from the input and an example
            entry |= api.entry(inputs[0], sys_.label)
        ok, frictions, evidence = self._drive(run, out, res, entry, api, inputs, ref)
        ui = res.get("ui", {})
        ui_ok = not ui.get("measured") or ui.get("ok", False)
        passed = ok and ui_ok
        system_frictions = _unique(frictions)
        res["frictions"] = [f.to_dict() | {"evidence": evidence.get(f.kind, "")} for f in system_frictions]
        out.system_grade = rubric.grade(passed, [*out.frictions, *system_frictions])
        if not ok:
            res["reason"] = "golden inputs over HTTP: " + ("; ".join(res["golden"]["errors"][:2])
                                                          or res["golden"]["detail"])
        elif not ui_ok:
            res["reason"] = "the page did not show the API's answer: " + str(ui.get("reason", ui.get("shown")))
        else:
            kinds = ", ".join(sorted({f.kind for f in system_frictions})) or "no friction of its own"
            res["reason"] = f"{res['app']} served it with {entry['loader']}: {kinds}"

    def _drive(self, run: Running, out: Outcome, res: dict[str, Any], entry: dict[str, Any], api: drive.SystemApi,
               inputs: Any, ref: list[float]) -> tuple[bool, list[Friction], dict[str, str]]:
        """Publish the cell's model to the app and drive it: golden inputs, load, probes, page, Browser
        column. Returns whether the golden inputs passed, and the frictions observed with their evidence."""
        run.publish(out.system, out.format, entry)
        frictions = [Friction(f["kind"], f["detail"]) for f in run.info.get("frictions", [])]
        evidence = {f["kind"]: f.get("evidence", "") for f in run.info.get("frictions", [])}
        path = f"/api/{out.system}/{out.format}"
        tol = self.measurer.registry.systems[out.system].tolerance()

        phases: dict[str, float] = res.setdefault("phase_ms", {})  # where the cell's time went (ms)
        t0 = time.perf_counter()
        with run.driving():  # alone on the app: the first request and the latency are this cell's own
            if (waited := _since(t0)) > 100:
                phases["wait"] = waited  # another xdist worker's cell had the app
            t0 = time.perf_counter()
            g = drive.golden(run.base, path, api, inputs)
            phases["golden"] = _since(t0)
            answered = [i for i, s in enumerate(g["scores"]) if s is not None]
            got = np.asarray([g["scores"][i] for i in answered], dtype=np.float64)
            want = np.asarray(ref, dtype=np.float64)[answered]
            cmp = compare([(None, got)], [(None, want)], tol)
            ok = cmp.ok and not g["errors"] and bool(answered)
            if ok:
                t0 = time.perf_counter()
                res["load"] = drive.load("127.0.0.1", run.port, path, api.body(inputs[answered[0]]),
                                         LOAD_REQUESTS, LOAD_CONCURRENCY)
                phases["load"] = _since(t0)
        refused = [f"row {i}: {api.rejects(r)}" for i, r in enumerate(inputs) if api.rejects(r)]
        res["golden"] = {"ok": ok, "rows": len(answered), "refused": refused, "errors": g["errors"][:5],
                         "detail": cmp.detail, "max_abs_error": cmp.max_abs_error}
        res["cold"] = {"first_request_ms": g["first_ms"], "warm_ms": float(np.median(g["ms"][1:])) if
                       len(g["ms"]) > 1 else None}
        if entry["loader"] == "python-bridge":
            frictions.append(Friction("bridge", f"the {res['app']} server spawned {run.python} "
                                      "bridge.py (child_process) to run the model"))
            evidence["bridge"] = (f"first request for this model, its load in the bridge included (and the bridge's "
                                  f"start, for the app's first bridged model): {g['first_ms']:.0f} ms")
        if ok:
            first = answered[0]

            def close(s: float) -> bool:
                return compare([(None, np.asarray([s]))], [(None, want[:1])], tol).ok

            t0 = time.perf_counter()
            res["bad_requests"] = drive.bad_requests(run.base, path, api, inputs[first], float(got[0]), close)
            phases["bad_requests"], t0 = _since(t0), time.perf_counter()
            res["ui"] = self._ui(run, out, api, inputs[first], float(got[0]))
            phases["ui"], t0 = _since(t0), time.perf_counter()
            if out.stack == BROWSER_HOST:
                res["browser"] = self._browser_column(run, out, api, [inputs[i] for i in answered], want)
                phases["browser"] = _since(t0)
            if not run.alive():
                res["server_died"] = run.log_tail(800)
        return ok, frictions, evidence

    def _entry(self, out: Outcome) -> tuple[dict[str, Any], list[float]]:
        """The app's models.json entry for the runtime level's winner, and that variant's reference."""
        framework, variant, route_name = out.winner.split("/", 2)
        loader = APPS[out.stack].loaders.get(route_name)
        if loader is None:
            raise LookupError(f"the {APPS[out.stack].label} app has no integration for route {route_name}; "
                              f"it integrates: {', '.join(APPS[out.stack].loaders)}")
        build = self.measurer.builder.get(out.system, framework)
        rec = next(r for r in build.exports(out.format) if r["variant"] == variant and r["ok"])
        artifact = build.entry / rec["main"]
        route = next(r for r in self.measurer.registry.routes_for(out.format, out.stack) if r.name == route_name)
        if route.kind == "converted":
            from ..concepts import Attempt

            artifact = self.measurer._convert(route, artifact, Attempt(route.name, route.kind, variant))
        var = build.variant(variant)
        prep = str(build.entry / var["preprocessing"]) if var["preprocessing"] else None
        return ({"loader": loader, "format": out.format, "artifact": str(artifact), "preprocessing": prep},
                api_scores(var["reference"]))

    def _browser_column(self, run: Running, out: Outcome, api: drive.SystemApi, rows: list[Any],
                        want: np.ndarray) -> dict[str, Any]:
        """The cell in the Browser column: the same artifact the TypeScript cell serves, run in the page
        by the format's browser runtime; graded by the rubric on the TypeScript cell's runtime frictions."""
        res: dict[str, Any] = {"runtime": BROWSER_RUNTIMES.get(out.format)}
        if out.format not in BROWSER_RUNTIMES:
            res.update(measured=False, grade="--", reason=f"no runtime runs {out.format} in a browser (the "
                       "Python bridge needs a server process); browser runtimes: " + ", ".join(BROWSER_RUNTIMES))
            return res
        if out.system not in drive.APIS:
            res.update(measured=False, grade=None, reason="the /browser pages exist for the two reference systems only")
            return res
        page = self.browser.run_in_page(f"{run.base}/browser/{out.system}?format={out.format}",
                                        [api.fill(r) for r in rows], api.read)
        res.update(page)
        if not page.get("measured"):
            res["grade"] = None
            return res
        values = page.get("values") or []
        if "reason" in page or len(values) != len(rows) or any(v is None for v in values):
            res.update(ok=False, grade="--")
            res.setdefault("reason", f"the page answered {values}")
            return res
        cmp = compare([(None, np.asarray([float(v) for v in values]))], [(None, np.asarray(want))],
                      self.measurer.registry.systems[out.system].tolerance())
        frictions = [f for f in out.frictions if f.kind != "bridge"]
        res.update(ok=cmp.ok, detail=cmp.detail, max_abs_error=cmp.max_abs_error,
                   frictions=[f.to_dict() for f in frictions], grade=rubric.grade(cmp.ok, frictions))
        res["reason"] = (f"{page.get('runtime')} in Chromium: {cmp.detail}; frictions of the TypeScript cell's "
                         f"artifact: {', '.join(sorted({f.kind for f in frictions})) or 'none'}")
        return res

    def _ui(self, run: Running, out: Outcome, api: drive.SystemApi, row: Any, api_score: float) -> dict[str, Any]:
        url = f"{run.base}/{out.system}?format={out.format}"
        fill, read = api.fill(row), api.read
        t0 = time.perf_counter()
        ui = self.browser.check(url, fill, read, screenshot=(out.stack, out.system) not in self.shot)
        if ui.get("screenshot"):
            self.shot.add((out.stack, out.system))
        ui["ms"] = (time.perf_counter() - t0) * 1000
        ui["url_path"] = f"/{out.system}?format={out.format}"
        if not ui.get("measured"):
            return ui
        try:
            shown = float(ui.get("value") or "nan")
        except ValueError:
            shown = float("nan")
        ui["api_value"] = api_score
        ui["ok"] = ui.get("done") == "ok" and shown == api_score
        if not ui["ok"] and "reason" not in ui:
            ui["reason"] = f"page showed {ui.get('value')!r} ({ui.get('shown')!r}); the API answered {api_score!r}"
        return ui


def _since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _unique(frictions: list[Friction]) -> list[Friction]:
    seen: dict[str, Friction] = {}
    for f in frictions:
        seen.setdefault(f.kind, f)
    return list(seen.values())


def api_scores(reference: list[dict[str, Any]]) -> list[float]:
    """What the apps answer per row, from the runtime level's reference outputs: the one score of a
    regressor, or a binary classifier's positive-class probability. A model with more outputs than that
    (several classes, several score tensors) is not measured here: its API would answer less than the
    model returns, and a comparison that skips outputs is no comparison (ValueError)."""
    from .. import tensors

    outs = [tensors.decode(t) for t in reference]
    floats = [o for o in outs if o.dtype.kind == "f"]
    labels = [o for o in outs if o.dtype.kind != "f"]
    if len(floats) != 1 or len(labels) > 1:
        raise ValueError(f"the apps answer one score per row; this model returns {len(outs)} outputs "
                         f"({', '.join(o.dtype.name + str(list(o.shape)) for o in outs)})")
    score = floats[0].reshape(len(floats[0]), -1)
    if score.shape[1] == 2 and labels:  # [label, [P(neg), P(pos)]] as skl2onnx and predict_proba answer
        score = score[:, 1:]
    if score.shape[1] != 1:
        raise ValueError(f"the apps answer one score per row; this model returns {score.shape[1]} per row")
    return [float(v) for v in score[:, 0]]
