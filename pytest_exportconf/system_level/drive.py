"""Driving a running app over HTTP: the golden inputs, a bounded load, and the bad-request probes."""

from __future__ import annotations

import http.client
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .servers import request


@dataclass(frozen=True)
class SystemApi:
    """What the apps' JSON API takes and answers for one system (the same in every app)."""

    field: str  # "numbers" | "features" (a list of ``count`` numbers) or "review" | "text" (a string)
    answer: str  # the response field carrying the model's score
    count: int = 3

    @property
    def numeric(self) -> bool:
        return self.field in ("numbers", "features")

    def body(self, row: Any) -> dict[str, Any]:
        return {self.field: [float(v) for v in np.asarray(row).reshape(-1)] if self.numeric else str(row)}

    def entry(self, row: Any, title: str) -> dict[str, Any]:
        """What a generic page needs in models.json: the input's kind and an example row to pre-fill."""
        if self.numeric:
            return {"input": {"kind": "numbers", "count": self.count}, "example": self.body(row)[self.field],
                    "title": title}
        return {"input": {"kind": "text"}, "example": str(row), "title": title}

    def fill(self, row: Any) -> dict[str, str]:
        """The page's fields for one row (CSS selector -> value)."""
        if self.numeric:
            prefix = "n" if self.field == "numbers" else "x"
            return {f"#{prefix}{i + 1}": repr(float(v)) for i, v in enumerate(np.asarray(row).reshape(-1))}
        return {"#review" if self.field == "review" else "#text": str(row)}

    @property
    def read(self) -> str:
        return "probability" if self.field == "review" else "value"

    def rejects(self, row: Any) -> str | None:
        """Why the API refuses this golden row by its contract (a 4xx is then the right answer)."""
        if not self.numeric and not str(row).strip():
            return "an empty text is a bad request (400)"
        return None

    def probes(self) -> list[tuple[str, bytes, str]]:
        """(probe, raw body, content type): each must get a 4xx JSON error, and the server live on."""
        f = self.field
        good = json.dumps({f: list(range(1, self.count + 1))} if self.numeric else {f: "a good film"}).encode()
        common = [("malformed JSON", good[:-3], "application/json"),
                  ("missing field", b'{"other": 1}', "application/json"),
                  ("wrong content type", good, "text/plain")]
        if self.numeric:
            wrong = list(range(1, self.count)) or [1, 2]
            bad: list[Any] = [1] * self.count
            bad[min(1, self.count - 1)] = "two"
            return [*common, ("wrong feature count", json.dumps({f: wrong}).encode(), "application/json"),
                    ("non-numeric value", json.dumps({f: bad}).encode(), "application/json")]
        return [*common, ("empty text", json.dumps({f: ""}).encode(), "application/json"),
                ("100 kB review", json.dumps({f: "great film " * 9310}).encode(), "application/json"),
                ("non-string review", json.dumps({f: 42}).encode(), "application/json")]


APIS: dict[str, SystemApi] = {
    "number_predictor": SystemApi("numbers", "prediction"),
    "sentiment": SystemApi("review", "probability"),
}


def api_for(system: str, inputs: Any) -> SystemApi | None:
    """The built-in systems' own APIs; any other system with one input of k numbers per row, or one text
    per row, gets the generic one (``features`` or ``text`` in, ``score`` out). None: no API fits."""
    if system in APIS:
        return APIS[system]
    x = np.asarray(inputs)
    if x.ndim == 1 and (x.dtype == object or x.dtype.kind in "US"):
        return SystemApi("text", "score")
    if x.ndim == 2 and x.dtype.kind in "fiu":
        return SystemApi("features", "score", count=int(x.shape[1]))
    return None


def golden(base: str, path: str, api: SystemApi, inputs: np.ndarray) -> dict[str, Any]:
    """One request per golden row; returns the scores (None where refused), statuses and timings."""
    scores: list[float | None] = []
    statuses, errors, times = [], [], []
    for row in inputs:
        status, body, ms = request(base, path, api.body(row))
        statuses.append(status)
        times.append(ms)
        reason = api.rejects(row)
        if reason:
            scores.append(None)
            if not (400 <= status < 500 and isinstance(body, dict) and "error" in body):
                errors.append(f"row {len(scores) - 1}: {reason}, but the app answered {status}")
        elif status == 200 and isinstance(body, dict) and isinstance(body.get(api.answer), int | float):
            scores.append(float(body[api.answer]))
        else:
            scores.append(None)
            errors.append(f"row {len(scores) - 1}: status {status}: {str(body)[:300]}")
    return {"scores": scores, "statuses": statuses, "errors": errors, "first_ms": times[0] if times else None,
            "ms": times}


def load(host: str, port: int, path: str, body: dict[str, Any], requests: int = 200,
         concurrency: int = 8) -> dict[str, Any]:
    """``requests`` POSTs at ``concurrency`` over keep-alive connections: p50/p95 latency and errors."""
    payload = json.dumps(body).encode()
    per = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]

    def worker(n: int) -> tuple[list[float], list[str]]:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        times, errs = [], []
        for _ in range(n):
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, payload, {"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    errs.append(f"status {r.status}")
            except (OSError, http.client.HTTPException) as e:
                errs.append(f"{type(e).__name__}: {e}")
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
            times.append((time.perf_counter() - t0) * 1000)
        conn.close()
        return times, errs

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(worker, per))
    wall = time.perf_counter() - t0
    times = sorted(t for ts, _ in results for t in ts)
    errors = [e for _, es in results for e in es]
    q = statistics.quantiles(times, n=20) if len(times) >= 2 else times * 19
    return {"requests": requests, "concurrency": concurrency, "p50_ms": statistics.median(times),
            "p95_ms": q[18], "errors": len(errors), "first_errors": sorted(set(errors))[:3],
            "throughput_rps": requests / wall if wall else None}


def bad_requests(base: str, path: str, api: SystemApi, good_row: Any, good_score: float,
                 close: Any) -> list[dict[str, Any]]:
    """Each probe must be answered 4xx with a JSON ``error``, and the next good request still correctly
    (``close(score) -> bool``)."""
    out = []
    for name, raw, ctype in api.probes():
        row: dict[str, Any] = {"probe": name}
        try:
            status, body, _ = request(base, path, raw=raw, content_type=ctype, timeout=30)
            row.update(status=status, error=(body or {}).get("error") if isinstance(body, dict) else None)
        except OSError as e:
            row.update(status=None, error=None, crash=f"{type(e).__name__}: {e}")
        try:
            s2, b2, _ = request(base, path, api.body(good_row), timeout=30)
            row["next_ok"] = s2 == 200 and isinstance(b2, dict) and close(float(b2.get(api.answer, "nan")))
        except OSError:
            row["next_ok"] = False
        code = row.get("status")
        row["ok"] = (isinstance(code, int) and 400 <= code < 500 and bool(row.get("error"))
                     and bool(row["next_ok"]))
        out.append(row)
    return out
