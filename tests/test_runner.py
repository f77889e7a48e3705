from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from pytest_exportconf import tensors
from pytest_exportconf.runner import Runner


def request(route: str) -> dict[str, Any]:
    return {"op": "run", "route": f"crashing_routes:{route}", "artifact": "/nonexistent",
            "preprocessing": None, "inputs": tensors.encode(np.zeros((1, 3), np.float32)),
            "input_spec": {"name": "x", "dtype": "float32", "shape": [None, 3]}, "repeats": 1}


@pytest.fixture
def runner(request: pytest.FixtureRequest) -> Iterator[Runner]:
    marker = request.node.get_closest_marker("timeout_s")
    r = Runner(timeout=marker.args[0] if marker else 60)
    yield r
    r.close()


def test_crash_fails_one_request_and_the_worker_comes_back(runner: Runner) -> None:
    first_pid = runner.call("python", {"op": "ping"})["pid"]
    crashed = runner.call("python", request("Crash"))
    assert not crashed["ok"] and crashed["crashed"]
    assert "worker died (exit status 3)" in crashed["error"]
    assert "about to die" in crashed["error"]  # the worker's stderr tail comes along
    again = runner.call("python", {"op": "ping"})
    assert again["ok"] and again["pid"] != first_pid


def test_failure_inside_the_worker_is_a_result(runner: Runner) -> None:
    resp = runner.call("python", request("Fails"))
    assert resp == resp | {"ok": False, "error": "ValueError: this runtime cannot read the artifact"}
    assert runner.call("python", {"op": "ping"})["ok"]
    assert runner.workers["python"].starts == 1, "a failing load must not cost the worker"


@pytest.mark.timeout_s(3)
def test_timeout_kills_and_restarts(runner: Runner) -> None:
    resp = runner.call("python", request("Hang"))
    assert not resp["ok"] and "timed out after 3 s" in resp["error"]
    runner.timeout = 60  # the restart itself may be slow on a loaded machine
    assert runner.call("python", {"op": "ping"})["ok"]
    assert runner.workers["python"].starts == 2


def test_unknown_runtime_and_op_are_named(runner: Runner) -> None:
    assert "known: python" in runner.call("node-js", {"op": "ping"})["error"]
    assert "unknown op 'frobnicate'; known: run, scan, ping" in runner.call("python", {"op": "frobnicate"})["error"]


def test_a_worker_that_cannot_start_fails_its_requests_with_the_reason() -> None:
    def no_such_runtime() -> list[str]:
        raise RuntimeError("no Node.js found: tried --exportconf-node, PATH")

    runner = Runner(timeout=30, runtimes={"node-js": no_such_runtime})
    try:
        resp = runner.call("node-js", {"op": "ping"})
        assert not resp["ok"] and "could not start the node-js worker: no Node.js found" in resp["error"]
        assert runner.call("python", {"op": "ping"})["ok"]
    finally:
        runner.close()


FAKE_WORKER = r"""
import json, os, sys, time
for line in sys.stdin:
    req = json.loads(line)
    if req.get("op") == "shutdown":
        break
    reply = json.dumps({"id": req["id"], "ok": True, "pid": os.getpid()}) + "\n"
    if MODE == "partial":      # half a line, then nothing: the runner must not block on it
        sys.stdout.write(reply[:7]); sys.stdout.flush(); time.sleep(3600)
    elif MODE == "together":   # stray output and the response in one write, then silence
        sys.stdout.write("stray\n" + reply); sys.stdout.flush()
    elif MODE == "bytes":      # the response in pieces, with pauses
        for i in range(0, len(reply), 5):
            sys.stdout.write(reply[i:i + 5]); sys.stdout.flush(); time.sleep(0.01)
"""


@pytest.mark.parametrize("mode", ["together", "bytes"])
def test_a_response_already_read_is_never_mistaken_for_a_timeout(mode: str) -> None:
    import sys

    r = Runner(timeout=20, runtimes={"fake": lambda: [sys.executable, "-c", f"MODE = {mode!r}\n{FAKE_WORKER}"]})
    try:
        for _ in range(3):
            resp = r.call("fake", {"op": "ping"})
            assert resp["ok"], resp
        assert r.workers["fake"].starts == 1
    finally:
        r.close()


def test_a_partial_line_does_not_block_past_the_timeout() -> None:
    import sys
    import threading

    r = Runner(timeout=2, runtimes={"fake": lambda: [sys.executable, "-c", f"MODE = 'partial'\n{FAKE_WORKER}"]})
    result: dict[str, Any] = {}
    t = threading.Thread(target=lambda: result.update(r.call("fake", {"op": "ping"})))
    t.start()
    t.join(60)
    try:
        assert not t.is_alive(), "the runner blocked on a partial line"
        assert not result["ok"] and "timed out after 2 s" in result["error"]
    finally:
        r.close()


def test_worker_logs_are_removed() -> None:
    r = Runner(timeout=60)
    r.call("python", {"op": "ping"})
    first = r.workers["python"].log_path
    proc = r.workers["python"]._proc
    assert proc is not None
    proc.kill()
    proc.wait()
    assert r.call("python", {"op": "ping"})["ok"]  # a restart: the first log goes
    assert r.workers["python"].starts == 2
    second = r.workers["python"].log_path
    assert first is not None and second is not None and not first.exists() and second.exists()
    r.close()
    assert not second.exists()
