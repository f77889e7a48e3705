"""A route that reports what a load can see and do inside the sandbox (importable by the worker).

Its "artifact" is a JSON file of what to try: ``write`` (a path outside), ``spawn`` (a tag for a setsid
grandchild), ``hang`` (sleep instead of returning), ``leave`` (files in its own and its parent's directory),
``peek`` (the parent zygote's memory, the open pipes, what earlier children left).
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import time

import numpy as np

from pytest_exportconf.registry import Loaded, LoadRequest, PythonRoute

SECRET_VAR = "EXPORTCONF_TEST_SECRET"


class _Loaded(Loaded):
    def __init__(self, notes: list[str]) -> None:
        self.notes, self.frictions = notes, []

    def predict(self, inputs: np.ndarray) -> list[np.ndarray]:
        return [np.zeros(len(inputs))]


class Probe(PythonRoute):
    name, kind, format, stack = "probe", "unofficial", "pickle", "probe"

    def load(self, req: LoadRequest) -> Loaded:
        what = json.loads(req.artifact.read_text())
        facts: dict[str, object] = {"env": sorted(os.environ), "secret": os.environ.get(SECRET_VAR),
                                    "cwd": os.getcwd(), "home": os.environ.get("HOME"),
                                    "rlimit_as": resource.getrlimit(resource.RLIMIT_AS)[0]}
        if what.get("write"):
            try:
                with open(what["write"], "w") as f:
                    f.write("escaped")
                facts["write"] = "written"
            except OSError as e:
                facts["write"] = str(e)
        try:
            socket.create_connection(("1.1.1.1", 80), timeout=3).close()
            facts["network"] = "connected"
        except OSError as e:
            facts["network"] = f"blocked: {e}"
        if what.get("leave"):
            for d in (os.getcwd(), os.path.dirname(os.getcwd())):
                with open(os.path.join(d, f"left-{what['leave']}"), "w") as f:
                    f.write("left behind")
        if what.get("peek"):
            try:
                with open(f"/proc/{os.getppid()}/mem", "rb") as f:
                    facts["parent_mem"] = f"readable ({len(f.read(1))})"
            except OSError as e:
                facts["parent_mem"] = str(e)
            fds = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                   if os.path.exists(f"/proc/self/fd/{fd}")]
            facts["pipes"] = sum(t.startswith("pipe:") for t in fds)
            facts["siblings"] = sorted(os.listdir(os.path.dirname(os.getcwd())))
        if what.get("spawn"):
            subprocess.Popen(["setsid", "sh", "-c", f"sleep 300 # {what['spawn']}"], start_new_session=True)
        if what.get("hang"):
            time.sleep(3600)
        return _Loaded([json.dumps(facts)])
