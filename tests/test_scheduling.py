"""pytest-xdist spreads cells by single test, except that cells whose code-executing format needs the same
producers' sandbox zygotes stay on one worker (pytest_exportconf.scheduling)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

TRACER = '''
import json, os
WORKER = None  # the xdist worker id in a worker (the controller logs every cell too: not recorded)
def pytest_configure(config):
    global WORKER
    WORKER = getattr(config, "workerinput", {}).get("workerid")
def pytest_runtest_logstart(nodeid, location):
    if WORKER:
        with open(os.environ["TRACE_FILE"], "a") as f:
            f.write(json.dumps([WORKER, nodeid.split("[")[-1].rstrip("]")]) + "\\n")
'''


def test_cells_sharing_zygotes_share_a_worker(pytester: pytest.Pytester, run_subprocess, tmp_path: Path,  # type: ignore[no-untyped-def]
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(tracer=TRACER)
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv("TRACE_FILE", str(trace))
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    result = run_subprocess("-p", "tracer", "-n", "2", "--exportconf-stacks=python,javascript",
                            "--exportconf-formats=pickle,joblib,torchscript,onnx")
    assert result.ret == 0, result.stdout.str()[-3000:]
    workers: dict[str, set[str]] = defaultdict(set)
    for line in trace.read_text().splitlines():
        worker, cell = json.loads(line)
        workers[cell.split("-")[1]].add(worker)
    assert len(workers["pickle"] | workers["joblib"]) == 1, workers  # one zygote set for TF, torch, sklearn
    assert len(workers["torchscript"]) == 1, workers  # torch's zygote: one worker
    assert len({w for ws in workers.values() for w in ws}) == 2  # and the rest is still spread
    cells = {f"{c['system']}-{c['format']}-{c['stack']}" for c in
             json.loads((pytester.path / "exportconf-results.json").read_text())["cells"]}
    assert len(cells) == 16
