"""Untrusted artifacts: the corpus through the real plugin, the sandbox, the cache's verification."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import corpus
import numpy as np
import pytest

from pytest_exportconf import __version__, sandbox, tensors, zygote
from pytest_exportconf.cache import ArtifactCache, UnsafeName, check_name

SECRET = "hunter2-exportconf"
ORPHAN_TAG = "exportconf-corpus-orphan"
PROBE = "sandbox_probe:Probe"


def _orphans(tag: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if tag in line and "ps -eo" not in line]


def _project(pytester: pytest.Pytester, cases: list[corpus.Case], golden: Path, src: Path) -> None:
    systems = "".join(
        f'\n[[tool.exportconf.systems]]\nname = "{c.name}"\nartifacts = {{{c.format} = "{src / c.file}"}}\n'
        f'golden = "{golden}"\n' for c in cases)
    pytester.makepyprojecttoml("[tool.exportconf]\n" + systems)


def _cells(pytester: pytest.Pytester) -> dict[str, dict]:
    data = json.loads((pytester.path / "exportconf-results.json").read_text())
    return {c["system"]: c for c in data["cells"]}


def _text(cell: dict) -> str:
    """Everything the report says about a cell: verdict, refusals, errors."""
    parts = [cell["verdict"], cell["reason"]]
    for p in cell["producers"]:
        parts += [p["export_error"], *p["refused"], *p["integrity"]]
        parts += [a["error"] for a in p["attempts"]]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[corpus.Case], Path, Path, Path]:
    pytest.importorskip("sklearn")
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    root = tmp_path_factory.mktemp("corpus")
    cases, golden = corpus.generate(root / "artifacts", root / "markers")
    return cases, golden, root / "artifacts", root / "markers"


def _run(pytester: pytest.Pytester, tmp_path: Path, *args: str, stacks: str = "python",
         cache: Path | None = None) -> pytest.RunResult:
    """``pytest --exportconf`` on the project's own systems only (no built-in system is trained)."""
    import tomllib

    table = tomllib.loads((pytester.path / "pyproject.toml").read_text())["tool"]["exportconf"]
    names = ",".join(s["name"] for s in table["systems"])
    return pytester.runpytest_subprocess("--exportconf", f"--exportconf-stacks={stacks}", "-p", "no:cacheprovider",
                                         f"--exportconf-systems={names}",
                                         f"--exportconf-cache-dir={cache or tmp_path / 'cache'}",
                                         "--exportconf-repeats=1",
                                         "--exportconf-timeout=120", *args, timeout=1200)


def test_corpus_is_refused_with_reasons_and_nothing_runs(
        generated: tuple[list[corpus.Case], Path, Path, Path], pytester: pytest.Pytester, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cases, golden, src, markers = generated
    assert len(cases) >= 20
    monkeypatch.setenv(corpus.SECRET_VAR, SECRET)
    _project(pytester, cases, golden, src)
    result = _run(pytester, tmp_path)
    assert result.ret in (0, 1), result.stdout.str()[-3000:]  # the run completes (failed cells, no crash)
    cells = _cells(pytester)
    missing = [c.name for c in cases if c.name not in cells]
    assert not missing, result.stdout.str()[-3000:]
    wrong = {c.name: _text(cells[c.name])[:300] for c in cases if not re.search(c.reason, _text(cells[c.name]))}
    assert not wrong
    for c in cases:  # refused before any load: nothing of it ran anywhere
        assert cells[c.name]["grade"] == "--"
        assert any(p["refused"] for p in cells[c.name]["producers"]), c.name
        assert not any(p["attempts"] for p in cells[c.name]["producers"]), c.name
    assert sorted(p.name for p in markers.iterdir()) == []
    assert not _orphans(ORPHAN_TAG)
    out = result.stdout.str()
    assert "exportconf: scan: exec/pickle/python: dangerous: builtins.exec" in out
    assert "scan:DANGEROUS" in out
    report = pytester.path / "exportconf-report.html"
    if report.is_file():  # pytest-html installed: the verdict beside the grade there too
        html = report.read_text()
        assert "scan: dangerous: builtins.exec" in html and "refused to load model.pkl" in html


@pytest.mark.skipif(sandbox.confinement()[0] != "bwrap", reason="needs bubblewrap to block writes outside")
def test_trusted_corpus_loads_sandboxed_and_still_nothing_escapes(
        generated: tuple[list[corpus.Case], Path, Path, Path], pytester: pytest.Pytester, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cases, golden, src, markers = generated
    monkeypatch.setenv(corpus.SECRET_VAR, SECRET)
    _project(pytester, cases, golden, src)
    result = _run(pytester, tmp_path, "--exportconf-trust")
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
    cells = _cells(pytester)
    assert set(cells) >= {c.name for c in cases}
    assert sorted(p.name for p in markers.iterdir()) == []  # payloads ran, but could not write outside
    assert "Read-only file system" in _text(cells["exec"])
    assert "Read-only file system" in _text(cells["trojan-model"])
    secret = _text(cells["env-secret"])
    assert "SECRET=absent" in secret and SECRET not in result.stdout.str() + json.dumps(cells)
    trusted = cells["exec"]["producers"][0]["scans"]["plain"]
    assert trusted["trusted"] == "per run (--exportconf-trust)" and trusted["status"] == "dangerous"
    assert cells["exec"]["verdict"] == "dangerous: builtins.exec"
    # a trusted payload that the sandbox let pass never reaches a web app, which would load it unconfined
    loaded = [c for c in cells.values() if c["winner"] and c["verdict"].startswith("dangerous")]
    assert loaded, "the corpus has a trojan that still predicts"
    for c in loaded:
        assert "outside the sandbox" in c["system_level"]["reason"] and c["system_grade"] is None, c["system"]
    assert not _orphans(ORPHAN_TAG)


@pytest.mark.skipif(sandbox.confinement()[0] != "bwrap", reason="needs bubblewrap to block writes outside")
def test_node_bridge_loads_trusted_payloads_in_the_sandbox(
        generated: tuple[list[corpus.Case], Path, Path, Path], pytester: pytest.Pytester, tmp_path: Path,
        shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The JavaScript stack's Python bridge runs each load through the sandbox supervisor: a trusted payload
    runs there, cannot write its marker and does not see the secret."""
    cases, golden, src, markers = generated
    monkeypatch.setenv(corpus.SECRET_VAR, SECRET)
    _project(pytester, [c for c in cases if c.name in ("exec", "env-secret")], golden, src)
    result = _run(pytester, tmp_path, "--exportconf-trust", "--exportconf-formats=pickle", stacks="javascript",
                  cache=shared_cache)
    cells = _cells(pytester)
    bridged = [a for p in cells["exec"]["producers"] for a in p["attempts"] if a["route"] == "python-bridge"]
    if not bridged or "unavailable" in bridged[0]["error"] or "Node" in bridged[0]["error"][:80]:
        pytest.skip(f"no Node.js here: {result.stdout.str()[-500:]}")
    assert "Read-only file system" in bridged[0]["error"], bridged[0]
    assert "SECRET=absent" in _text(cells["env-secret"])
    assert SECRET not in json.dumps(cells)
    assert sorted(p.name for p in markers.iterdir()) == []


def test_trust_per_system_and_bad_trust_value(pytester: pytest.Pytester, tmp_path: Path,
                                             generated: tuple[list[corpus.Case], Path, Path, Path]) -> None:
    cases, golden, src, markers = generated
    case = next(c for c in cases if c.name == "exec")
    pytester.makepyprojecttoml(f'[tool.exportconf]\n[[tool.exportconf.systems]]\nname = "t"\n'
                               f'artifacts = {{pickle = "{src / case.file}"}}\ngolden = "{golden}"\ntrust = "yes"\n')
    result = pytester.runpytest_subprocess("--exportconf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*systems[[]0[]].trust = 'yes': Input should be a valid boolean*"])
    pytester.makepyprojecttoml(f'[tool.exportconf]\n[[tool.exportconf.systems]]\nname = "t"\n'
                               f'artifacts = {{pickle = "{src / case.file}"}}\ngolden = "{golden}"\ntrust = true\n')
    _run(pytester, tmp_path)
    scans = _cells(pytester)["t"]["producers"][0]["scans"]["plain"]
    assert scans["trusted"] == "per system (trust = true)"
    assert not (markers / "exec").exists()


@pytest.mark.parametrize("name", ["../../x", "/abs/x", "a/../../b", ".hidden"])
def test_system_names_escaping_the_cache_are_usage_errors(pytester: pytest.Pytester, name: str) -> None:
    pytester.makepyprojecttoml(f'[tool.exportconf]\n[[tool.exportconf.systems]]\nname = "{name}"\n'
                               'factory = "m:f"\nframework = "sklearn"\n')
    result = pytester.runpytest_subprocess("--exportconf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*system name*not a plain name*"])


def test_conftest_system_with_escaping_name_is_a_usage_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    np_ = pytest.importorskip("numpy")
    np_.savez(tmp_path / "g.npz", inputs=np_.zeros((1, 3), np_.float32), outputs=np_.zeros(1))
    (tmp_path / "m.pkl").write_bytes(b"")
    pytester.makeconftest(f"""
        from pytest_exportconf.user import ArtifactSystem
        def pytest_exportconf_register(registry):
            registry.add_system(ArtifactSystem(name="../../x", artifacts={{"pickle": "{tmp_path / 'm.pkl'}"}},
                                               golden_file="{tmp_path / 'g.npz'}"))
    """)
    result = pytester.runpytest_subprocess("--exportconf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*system name '../../x' is not a plain name*"])  # (via the declaration schema)


def test_check_name() -> None:
    assert check_name("sentiment/tensorflow") == "sentiment/tensorflow"
    for bad in ("", "..", "a/..", "/x", "a\\b", "a//b"):
        with pytest.raises(UnsafeName):
            check_name(bad)


# ---- the cache ------------------------------------------------------------------------------------------

def _entry(cache: ArtifactCache, builds: list[int], on_mismatch: str = "rebuild") -> Path:
    def build(tmp: Path) -> dict:
        builds.append(1)
        (tmp / "model.pkl").write_bytes(b"clean bytes")
        return {}

    return cache.get_or_build("sys/fw", {"k": 1}, build, on_mismatch=on_mismatch)  # type: ignore[arg-type]


def test_cache_records_sha256_and_rebuilds_a_changed_entry(tmp_path: Path) -> None:
    cache, builds = ArtifactCache(tmp_path), []
    entry = _entry(cache, builds)
    assert "model.pkl" in ArtifactCache.manifest(entry)["sha256"]
    assert _entry(cache, builds) == entry and len(builds) == 1
    (entry / "model.pkl").write_bytes(b"poisoned")
    assert _entry(cache, builds) == entry and len(builds) == 2
    assert (entry / "model.pkl").read_bytes() == b"clean bytes"
    assert cache.events and "model.pkl: changed since it was built" in cache.events[0]
    (entry / "extra.py").write_text("import os")
    _entry(cache, builds)
    assert len(builds) == 3 and "extra.py: added after the build" in cache.events[-1]


def test_cache_refuses_a_changed_user_entry(tmp_path: Path) -> None:
    from pytest_exportconf.cache import CacheTampered

    cache, builds = ArtifactCache(tmp_path), []
    entry = _entry(cache, builds, "refuse")
    (entry / "model.pkl").write_bytes(b"poisoned")
    with pytest.raises(CacheTampered, match="model.pkl: changed since it was built.*refused"):
        _entry(cache, builds, "refuse")
    assert len(builds) == 1


def test_cache_clean_removes_stale_things_only(tmp_path: Path) -> None:
    cache, builds = ArtifactCache(tmp_path / "c"), []
    current = _entry(cache, builds)
    old = tmp_path / "c" / "sys" / "old-0123"
    old.mkdir()
    (old / "manifest.json").write_text(json.dumps({"key": {"exportconf": "0.0.1"}, "sha256": {}}))
    stale_tmp = tmp_path / "c" / "sys" / ".fw-abc-xyz12345"
    stale_tmp.mkdir()
    Path(str(stale_tmp.parent / "fw-abc") + ".lock").write_text("")
    half = tmp_path / "c" / "sys" / "half-built"
    half.mkdir()
    Path(str(half) + ".lock").write_text("")
    temp = tmp_path / "temp"
    temp.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (temp / f"exportconf-{dead.pid}-python-x.log").write_text("log")
    (temp / f"exportconf-{os.getpid()}-python-y.log").write_text("live")
    past = time.time() - 60
    for p in temp.iterdir():
        os.utime(p, (past, past))
    removed = cache.clean(__version__, temp_dir=str(temp))
    assert not old.exists() and not half.exists() and not stale_tmp.exists()
    assert current.exists() and (current / "manifest.json").is_file()
    assert not (temp / f"exportconf-{dead.pid}-python-x.log").exists()
    assert (temp / f"exportconf-{os.getpid()}-python-y.log").exists()
    assert len(removed) >= 5


def test_poisoned_cache_entry_is_refused_for_user_artifacts(
        generated: tuple[list[corpus.Case], Path, Path, Path], pytester: pytest.Pytester, tmp_path: Path) -> None:
    cases, golden, src, markers = generated
    clean = tmp_path / "clean.pkl"
    import pickle

    import numpy as np
    from sklearn.linear_model import LinearRegression

    with np.load(golden) as g:
        x, y = g["inputs"], g["outputs"]
    clean.write_bytes(pickle.dumps(LinearRegression().fit(x, y)))
    pytester.makepyprojecttoml(f'[tool.exportconf]\n[[tool.exportconf.systems]]\nname = "victim"\n'
                               f'artifacts = {{pickle = "{clean}"}}\ngolden = "{golden}"\n')
    _run(pytester, tmp_path)
    first = _cells(pytester)["victim"]
    assert first["verdict"] == "clean" and first["grade"] != "--", _text(first)
    cached = next((tmp_path / "cache").glob("victim/prebuilt-*/exports/pickle/plain/clean.pkl"))
    cached.write_bytes((src / "exec" / "model.pkl").read_bytes())
    _run(pytester, tmp_path)
    second = _cells(pytester)["victim"]
    assert second["grade"] == "--"
    assert re.search(r"failed verification: .*clean.pkl: changed since it was built.*refused", _text(second))
    assert not (markers / "exec").exists()


# ---- the sandbox ----------------------------------------------------------------------------------------

def _request(tmp_path: Path, **what: str) -> dict:
    """A run request for the probe route; its artifact is the JSON of what to try."""
    spec = tmp_path / f"probe-{len(list(tmp_path.glob('probe-*')))}.json"
    spec.write_text(json.dumps(what))
    return {"op": "run", "id": 1, "route": PROBE, "artifact": str(spec), "preprocessing": None,
            "inputs": [tensors.encode(np.zeros((1, 1), np.float32))],
            "input_spec": [{"name": "x", "dtype": "float32", "shape": [None, 1]}], "repeats": 1}


def _call_once(request: dict, timeout: float) -> dict:
    """One request in a fresh sandboxed child, with a zygote started and stopped for it."""
    box = zygote.Sandbox(timeout)
    try:
        return box.call(request)
    finally:
        box.close()


def _probe(tmp_path: Path, **what: str) -> dict:
    return _call_once(_request(tmp_path, **what), timeout=60)


def test_sandbox_scrubs_env_blocks_writes_and_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(corpus.SECRET_VAR, SECRET)
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    resp = _probe(tmp_path, write=str(tmp_path / "outside"))
    assert resp["ok"], resp
    facts = json.loads(resp["notes"][0])
    assert facts["secret"] is None and "PYTHONPATH" in facts["env"]
    assert set(facts["env"]) <= {*sandbox.ENV_ALLOW, "PYTHONPATH", "HOME", "TMPDIR", "PYTHONDONTWRITEBYTECODE",
                                 "PWD"}  # PWD: set by bwrap --chdir
    assert facts["cwd"] == facts["home"] and "exportconf-sandbox-" in facts["cwd"]
    assert facts["rlimit_as"] == sandbox.Limits().address_space
    assert not Path(facts["cwd"]).exists()  # the private directory is gone afterwards
    if sandbox.confinement()[0] == "bwrap":
        assert "Read-only file system" in facts["write"] and not (tmp_path / "outside").exists()
    if sandbox.confinement()[0] != "none":
        assert facts["network"].startswith("blocked")


def test_sandbox_timeout_kills_the_whole_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    tag = f"exportconf-probe-{os.getpid()}-timeout"
    seen: list[str] = []

    def watch() -> None:  # the grandchild must have been running, or its absence afterwards proves nothing
        while not done.is_set() and not seen:
            seen.extend(_orphans(tag))
            time.sleep(0.1)

    done = threading.Event()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        resp = _call_once(_request(tmp_path, spawn=tag, hang="1"), timeout=6)
    finally:
        done.set()
        watcher.join()
    assert not resp["ok"] and "timed out" in resp["error"]
    assert seen, "the probe's grandchild never ran before the timeout"
    time.sleep(0.5)
    assert not _orphans(tag)


def test_zygote_children_see_nothing_of_each_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two loads forked from one zygote: the second finds none of the first's files or processes, cannot read
    the zygote's memory and holds no pipe but its own answer's (not the zygote's protocol channel)."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    tag = f"exportconf-probe-{os.getpid()}-zygote"
    box = zygote.Sandbox(60)
    try:
        first = box.call(_request(tmp_path, leave=tag, spawn=tag))
        assert first["ok"], first
        assert not _orphans(tag)  # its setsid grandchild died with it, though the zygote lives on
        second = box.call(_request(tmp_path, peek="1"))
        assert second["ok"], second
    finally:
        box.close()
    facts = [json.loads(r["notes"][0]) for r in (first, second)]
    assert facts[0]["cwd"] != facts[1]["cwd"]
    assert first["sandbox"]["zygote_pid"] == second["sandbox"]["zygote_pid"]  # one zygote, two children
    assert facts[1]["siblings"] == [Path(facts[1]["cwd"]).name]  # nothing left by the first child
    if sandbox.confinement()[0] != "none":
        assert "ermission denied" in facts[1]["parent_mem"] or "not permitted" in facts[1]["parent_mem"]
    assert facts[1]["pipes"] == 1


def test_bridge_supervisors_share_the_pytest_process_zygotes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's broker serves its own sandboxed loads and those of a bridge supervisor (what a Node harness
    spawns) from one zygote per preload set: each framework is imported once per pytest process."""
    from pytest_exportconf.runner import Runner

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    runner = Runner(timeout=60)
    try:
        direct = runner.call("python", _request(tmp_path), sandboxed=True)
        assert direct["ok"], direct
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
        args = json.loads(runner.worker_env["EXPORTCONF_BRIDGE_ARGS"])
        assert "--broker" in args
        proc = subprocess.run([sys.executable, *args], input=json.dumps(_request(tmp_path)) + "\n",
                              capture_output=True, text=True, env=env, timeout=120)
        bridged = json.loads(proc.stdout.splitlines()[-1])
        assert bridged["ok"], (bridged, proc.stderr[-2000:])
    finally:
        runner.close()
    assert direct["sandbox"]["zygote_pid"] == bridged["sandbox"]["zygote_pid"]
    assert direct["sandbox"]["first"] and not bridged["sandbox"]["first"]
    assert json.loads(direct["notes"][0])["cwd"] != json.loads(bridged["notes"][0])["cwd"]


def test_the_broker_survives_a_bad_request_and_clients_reconnect(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A line the broker cannot handle fails alone; a bridge supervisor's kept connection to a broker that
    was restarted is re-made once, so the next load does not fail for it."""
    import socket

    from pytest_exportconf.runner import Runner

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    runner = Runner(timeout=60)
    try:
        assert runner.broker.call({"op": "ping"}, 60)["ok"]
        path = json.loads(runner.worker_env["EXPORTCONF_BRIDGE_ARGS"])[-1]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.connect(path)
            raw.sendall(b"not json\n")
            answer = json.loads(raw.makefile("rb").readline())
        assert not answer["ok"] and "the sandbox broker failed on this request" in answer["error"]
        client = zygote.BrokerClient(path)
        assert client.call(_request(tmp_path), 60)["ok"]
        assert runner.broker._proc is not None
        os.killpg(runner.broker._proc.pid, signal.SIGKILL)  # the broker dies; the runner restarts it
        runner.broker._proc.wait()
        assert runner.broker.call({"op": "ping"}, 60)["ok"]
        resp = client.call(_request(tmp_path), 60)
        assert resp["ok"], resp
        client.close()
    finally:
        runner.close()


def test_sigkill_of_the_caller_leaves_nothing(tmp_path: Path) -> None:
    """A process that runs a sandboxed load is SIGKILLed mid-load: PDEATHSIG and the PID namespace take the
    child and its setsid grandchild along."""
    tag = f"exportconf-probe-{os.getpid()}-sigkill"
    req = _request(tmp_path, spawn=tag, hang="1")
    code = f"""
import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})
from pytest_exportconf import zygote
zygote.Sandbox(300).call({req!r})
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    caller = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 60
    while not _orphans(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _orphans(tag), "the probe never started its grandchild"
    caller.send_signal(signal.SIGKILL)
    caller.wait()
    deadline = time.monotonic() + 10
    while _orphans(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _orphans(tag)


def test_bridge_supervisor_runs_each_request_in_a_fresh_child(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    proc = subprocess.Popen([sys.executable, *sandbox.bridge_args(60)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdin and proc.stdout
    req = _request(tmp_path)
    pids = []
    for i in (1, 2):
        proc.stdin.write(json.dumps({**req, "id": i}) + "\n")
        proc.stdin.flush()
        resp = json.loads(proc.stdout.readline())
        assert resp["ok"] and resp["id"] == i, resp
        pids.append(json.loads(resp["notes"][0])["cwd"])
    proc.stdin.write(json.dumps({"op": "ping", "id": 3}) + "\n")
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline())["ok"]
    proc.stdin.close()
    proc.wait(timeout=30)
    assert pids[0] != pids[1]  # two private directories: two children


def test_sandbox_description_says_what_is_enforced() -> None:
    text = sandbox.describe()
    assert "scrubbed environment" in text and "address space" in text
    kind = sandbox.confinement()[0]
    assert {"bwrap": "read-only file system", "unshare": "NOT blocked", "none": "NOT blocked"}[kind] in text


def test_builtin_exports_scan_clean(shared_cache: Path) -> None:
    """Whatever built-in exports the shared test cache holds are scanned clean (the matrix's grades stay)."""
    from pytest_exportconf.security import Scanner

    records = []
    builtin = ("number_predictor", "sentiment")
    for man in [m for name in builtin for m in shared_cache.glob(f"{name}/*/manifest.json")]:
        m = json.loads(man.read_text())
        for fmt, variants in m.get("exports", {}).items():
            for rec in variants.values():
                if rec.get("ok"):
                    records.append((fmt, man.parent / rec["main"]))
    if not records:
        pytest.skip("no built-in exports in the shared cache yet (run the end-to-end tests first)")
    from pytest_exportconf.runner import Runner

    runner = Runner(timeout=300)
    try:
        scanner = Scanner(runner)
        verdicts = [(p, scanner.verdict(p, fmt in ("pickle", "joblib", "torchscript"))) for fmt, p in records]
        bad = {str(p): v["label"] for p, v in verdicts if v["status"] not in ("clean", "none")}
    finally:
        runner.close()
    assert not bad


def test_worker_logs_do_not_pile_up_across_restarts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_exportconf.runner import Runner

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    runner = Runner(timeout=60)
    req = {**_request(tmp_path), "route": "crashing_routes:Crash"}
    for _ in range(3):
        assert runner.call("python", req)["crashed"]
    logs = list(Path(tempfile.gettempdir()).glob(f"exportconf-{os.getpid()}-python-*.log"))
    assert len(logs) == 1  # the restarted worker's; each crashed one's log went with it
    runner.close()
    assert not list(Path(tempfile.gettempdir()).glob(f"exportconf-{os.getpid()}-python-*.log"))


def test_sigkill_of_pytest_takes_the_long_lived_worker_along(tmp_path: Path) -> None:
    code = f"""
import sys, time; sys.path.insert(0, {str(Path(__file__).parent)!r})
from pytest_exportconf.runner import Runner
Runner(timeout=300).call("python", {{**{_request(tmp_path)!r}, "route": "crashing_routes:Hang"}})
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    caller = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 60
    workers: list[str] = []
    while not workers and time.monotonic() < deadline:
        time.sleep(0.3)
        workers = [ln for ln in _orphans("pytest_exportconf.worker") if ln.split()[0] != str(caller.pid)
                   and _parent(int(ln.split()[0])) == caller.pid]
    assert workers, "the Runner never started its worker"
    caller.send_signal(signal.SIGKILL)
    caller.wait()
    pid = int(workers[0].split()[0])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(") ")[1][:1]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_truncated_cached_export_is_rebuilt_and_said(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """A built-in-style export (a project's factory model) whose cached file is truncated is rebuilt, the
    producer row says why, and the grade is the one a clean cache gives."""
    pytest.importorskip("sklearn")
    pytest.importorskip("skl2onnx")
    pytester.makepyfile(lin_model="""
        import numpy as np
        from sklearn.linear_model import LinearRegression

        def build():
            x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
            return LinearRegression().fit(x, x.sum(axis=1)), x[:4]
    """)
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\npythonpath = ["."]\n[tool.exportconf]\n'
                               '[[tool.exportconf.systems]]\nname = "lin"\nframework = "sklearn"\n'
                               'factory = "lin_model:build"\n')
    args = ("--exportconf-formats=onnx",)
    _run(pytester, tmp_path, *args)
    first = _cells(pytester)["lin"]
    onnx_file = next((tmp_path / "cache").glob("lin/sklearn-*/exports/onnx/*/*.onnx"))
    onnx_file.write_bytes(onnx_file.read_bytes()[:100])
    _run(pytester, tmp_path, *args)
    second = _cells(pytester)["lin"]
    assert second["grade"] == first["grade"] != "--"
    integrity = second["producers"][0]["integrity"]
    assert integrity and "rebuilt" in integrity[0] and ".onnx: changed since it was built" in integrity[0]
    assert len(onnx_file.read_bytes()) > 100


def test_cache_clean_option_reports_what_it_removed(pytester: pytest.Pytester, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    stale = cache / "sys" / ".fw-0123-abcd1234"
    stale.mkdir(parents=True)
    Path(str(cache / "sys" / "fw-0123") + ".lock").write_text("")
    result = pytester.runpytest_subprocess("--exportconf", f"--exportconf-cache-dir={cache}",
                                           "--exportconf-cache-clean", "--exportconf-systems=number_predictor",
                                           "--exportconf-stacks=python",
                                           "-k", "no_cell_matches_this", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*exportconf: cache clean: removed * item(s)*", f"*temporary directory {stale}*"])
    assert not stale.exists()
