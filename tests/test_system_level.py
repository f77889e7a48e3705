"""The system level for real: the apps built, started on loopback, driven over HTTP and in Chromium, and
every server reaped (after a normal end, Ctrl-C, and a failed build)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import clean_env

from pytest_exportconf import rubric
from pytest_exportconf.concepts import Friction
from pytest_exportconf.system_level.apps import APPS, BuildFailed, Fix, NodeHttpApp, Tools, WebApp
from pytest_exportconf.system_level.browser import find_chromium
from pytest_exportconf.system_level.servers import TAG_ENV, tagged_processes

SERVERS = ("waitress", "server.mjs", "next", "bridge.py")  # what a started app's processes run


def _servers(tag: str) -> list[int]:
    found = []
    for pid in tagged_processes(tag):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(s in cmd for s in SERVERS):
            found.append(pid)
    return found


def _gone(tag: str, within: float = 15.0) -> list[int]:
    deadline = time.monotonic() + within
    while (left := tagged_processes(tag)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_both_systems_in_the_three_apps(run_subprocess, pytester: pytest.Pytester,  # type: ignore[no-untyped-def]
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    tag = uuid.uuid4().hex
    monkeypatch.setenv(TAG_ENV, tag)
    result = run_subprocess("--exportconf-level=system", "--exportconf-formats=onnx,pickle",
                            "--exportconf-stacks=python,javascript,typescript")
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert not _gone(tag), "a server, worker or browser outlived the run"
    cells = json.loads((pytester.path / "exportconf-results.json").read_text())["cells"]
    assert len(cells) == 12
    chromium, why = find_chromium()
    for c in cells:
        s = c["system_level"]
        assert s["measured"], (c["cell"], s.get("reason"))
        assert s["golden"]["ok"], (c["cell"], s["golden"])
        if c["cell"].startswith("sentiment/"):  # the empty golden review is refused by the API's contract
            assert s["golden"]["refused"] and s["golden"]["rows"] == 7
        assert s["load"]["requests"] == 200 and s["load"]["errors"] == 0, s["load"]
        assert s["bad_requests"] and all(p["ok"] for p in s["bad_requests"]), (c["cell"], s["bad_requests"])
        probes = {p["probe"] for p in s["bad_requests"]}
        assert {"malformed JSON", "missing field", "wrong content type"} <= probes
        if chromium:
            assert s["ui"]["ok"], (c["cell"], {k: v for k, v in s["ui"].items() if k != "screenshot"})
        else:
            assert not s["ui"]["measured"] and s["ui"]["reason"] == why
        system = [Friction(f["kind"], f["detail"]) for f in s["frictions"]]
        runtime = [Friction.from_dict(f) for f in c["frictions"]]
        assert c["system_grade"] == rubric.grade(True, runtime + system)
        bridged = s["integration"]["loader"] == "python-bridge"
        assert bridged == ("bridge" in {f.kind for f in system}), c["cell"]
        if c["stack"] == "typescript":  # the Browser column rides on the Next.js app
            b = s["browser"]
            if c["format"] == "onnx" and chromium:
                assert b["ok"] and "onnxruntime-web" in b["runtime"], b.get("reason")
                assert b["grade"] == rubric.grade(True, [f for f in runtime if f.kind != "bridge"])
            elif c["format"] == "pickle":
                assert b["grade"] == "--" and not b["measured"]
    html = (pytester.path / "exportconf-report.html").read_text()
    assert "System level: each model inside its stack" in html
    if chromium:
        assert html.count("data:image/jpeg;base64,") >= 6  # a page per stack and system


def test_xdist_workers_drive_the_controllers_servers(run_subprocess,  # type: ignore[no-untyped-def]
                                                     pytester: pytest.Pytester,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Under -n 2 the controller starts each app once and both workers drive it; it is gone after the run."""
    tag = uuid.uuid4().hex
    monkeypatch.setenv(TAG_ENV, tag)
    result = run_subprocess("-n", "2", "-v", "--exportconf-level=system", "--exportconf-formats=onnx,savedmodel",
                            "--exportconf-stacks=python")
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert not _gone(tag), "a server outlived the run"
    workers = {line.split("]")[0].strip("[") for line in result.stdout.lines if "test_cell[" in line
               and line.startswith("[gw")}
    assert workers == {"gw0", "gw1"}, result.stdout.str()[-3000:]
    cells = json.loads((pytester.path / "exportconf-results.json").read_text())["cells"]
    assert len(cells) == 4 and all(c["system_level"]["golden"]["ok"] for c in cells)
    assert len({c["system_level"]["server_pid"] for c in cells}) == 1, [c["system_level"] for c in cells]


def test_a_dead_controller_app_fails_its_cells_with_the_reason(tmp_path: Path) -> None:
    """A worker waiting on the controller's app: a failed start is its reason, a missing directory is said."""
    from pytest_exportconf.system_level.host import HostedApps

    (tmp_path / "python.json").write_text(json.dumps({"stack": "python", "failed": "BuildFailed: npm ci failed"}))
    with pytest.raises(RuntimeError, match="npm ci failed"):
        HostedApps(tmp_path).ready("python")
    with pytest.raises(RuntimeError, match="the controller ended"):
        HostedApps(tmp_path / "gone").ready("javascript")
    with pytest.raises(RuntimeError, match="apps: python, javascript, typescript"):
        HostedApps(tmp_path).ready("rust")


@pytest.mark.parametrize("workers", ["0", "2"])  # the servers are the pytest process's, or the controller's
def test_ctrl_c_reaps_every_server(pytester: pytest.Pytester, shared_cache: Path, workers: str) -> None:
    tag = uuid.uuid4().hex
    env = clean_env() | {TAG_ENV: tag}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--exportconf", f"--exportconf-cache-dir={shared_cache}", "-n", workers,
         "-p", "no:cacheprovider", "--exportconf-level=system", "--exportconf-systems=number_predictor",
         "--exportconf-formats=onnx,pickle,joblib", "--exportconf-stacks=python,javascript"],
        cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        # Ctrl-C as in a terminal, whatever this process inherited (a test session's worker may ignore it)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 600
        while not _servers(tag):
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:] if proc.stdout else ""
            assert time.monotonic() < deadline, "no server started"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=120)[0].decode()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "KeyboardInterrupt" in out, out[-3000:]
    assert not _gone(tag), f"processes outlived Ctrl-C: {tagged_processes(tag)}\n{out[-2000:]}"


def test_a_failed_build_is_cleaned_up_and_said(tmp_path: Path) -> None:
    """npm ci refusing a lockfile that does not match package.json: the app is not up, with the reason,
    and nothing half-built is left for the next run to mistake for a build."""
    if shutil.which("node") is None:
        pytest.skip("no node on PATH")
    source = tmp_path / "broken"
    shutil.copytree(NodeHttpApp.source, source, ignore=shutil.ignore_patterns("node_modules"))
    pkg = json.loads((source / "package.json").read_text())
    pkg["dependencies"]["left-pad"] = "1.3.0"  # not in the lockfile: npm ci must refuse
    (source / "package.json").write_text(json.dumps(pkg))
    broken = type("Broken", (NodeHttpApp,), {"source": source})
    app = broken(tools=Tools(log=lambda msg: None))
    with pytest.raises(BuildFailed, match="npm ci failed"):
        app.build(tmp_path / "cache")
    assert not [p for p in (tmp_path / "cache" / "webapps").iterdir() if p.suffix != ".lock"]
    assert set(APPS) == {"python", "javascript", "typescript"}


def test_a_fix_is_recorded_only_when_the_plain_build_failed(tmp_path: Path) -> None:
    """The build ladder with a real build command: it fails, as a bundler does, until the config file
    exists; the fix becomes a framework-config friction carrying the lines and the error."""
    build = [sys.executable, "-c", "import os, sys\nif not os.path.exists('app.config'):\n"
             "    print('Error: Module parse failed: Unexpected character'); sys.exit(1)"]
    fix = Fix("framework-config", "app.config", "externals = ['native-addon']\n")
    app_cls = type("App", (WebApp,), {"stack": "x", "label": "x", "source": tmp_path, "loaders": {},
                                       "fixes": (fix,), "needs_node": False, "argv": lambda self, b, p: []})
    app = app_cls(tools=Tools(log=lambda msg: None))
    (tmp_path / "plain").mkdir()
    info = app.build_with_fixes(tmp_path / "plain", build, "the build")
    (friction,) = info["frictions"]
    assert friction["kind"] == "framework-config" and rubric.severity("framework-config") == "minor"
    assert "externals = ['native-addon']" in friction["detail"]
    assert "Module parse failed" in friction["evidence"]
    (tmp_path / "fine").mkdir()
    (tmp_path / "fine" / "app.config").write_text("")
    assert app.build_with_fixes(tmp_path / "fine", build, "the build")["frictions"] == []
