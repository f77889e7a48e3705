from __future__ import annotations

import numpy as np

from pytest_exportconf import tensors
from pytest_exportconf.runner import Runner


def request(route: str) -> dict:  # type: ignore[type-arg]
    return {"op": "run", "route": f"crashing_routes:{route}", "artifact": "/nonexistent",
            "preprocessing": None, "inputs": tensors.encode(np.zeros((1, 3), np.float32)),
            "input_spec": {"name": "x", "dtype": "float32", "shape": [None, 3]}, "repeats": 1}


def test_crash_fails_one_request_and_the_worker_comes_back() -> None:
    runner = Runner(timeout=60)
    try:
        assert runner.call("python", {"op": "ping"})["ok"]
        first_pid = runner.call("python", {"op": "ping"})["pid"]
        crashed = runner.call("python", request("Crash"))
        assert not crashed["ok"] and crashed["crashed"]
        assert "worker died (exit status 3)" in crashed["error"]
        assert "about to die" in crashed["error"]  # the worker's stderr tail comes along
        again = runner.call("python", {"op": "ping"})
        assert again["ok"] and again["pid"] != first_pid
    finally:
        runner.close()


def test_failure_inside_the_worker_is_a_result() -> None:
    runner = Runner(timeout=60)
    try:
        resp = runner.call("python", request("Fails"))
        assert resp == resp | {"ok": False, "error": "ValueError: this runtime cannot read the artifact"}
        pid = runner.call("python", {"op": "ping"})["pid"]
        assert runner.workers["python"].starts == 1, "a failing load must not cost the worker"
        assert pid
    finally:
        runner.close()


def test_timeout_kills_and_restarts() -> None:
    runner = Runner(timeout=3)
    try:
        resp = runner.call("python", request("Hang"))
        assert not resp["ok"] and "timed out after 3 s" in resp["error"]
        assert runner.call("python", {"op": "ping"})["ok"]
        assert runner.workers["python"].starts == 2
    finally:
        runner.close()


def test_unknown_runtime_and_op_are_named() -> None:
    runner = Runner(timeout=30)
    try:
        assert "known: python" in runner.call("node-js", {"op": "ping"})["error"]
        assert "unknown op 'frobnicate'; known: run, ping" in runner.call("python", {"op": "frobnicate"})["error"]
    finally:
        runner.close()


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
