"""Routes that misbehave on purpose, for the worker and plugin tests (importable by the worker)."""

from __future__ import annotations

import os
import time

from pytest_exportconf.registry import Loaded, LoadRequest, PythonRoute


class Crash(PythonRoute):
    name, kind, format, stack = "crash", "unofficial", "onnx", "crashy"

    def load(self, req: LoadRequest) -> Loaded:
        print("about to die", flush=True)  # goes to the worker's log, not the protocol channel
        os._exit(3)


class Hang(PythonRoute):
    name, kind, format, stack = "hang", "unofficial", "onnx", "crashy"

    def load(self, req: LoadRequest) -> Loaded:
        time.sleep(3600)
        raise AssertionError("unreachable")


class Fails(PythonRoute):
    name, kind, format, stack = "fails", "unofficial", "onnx", "crashy"

    def load(self, req: LoadRequest) -> Loaded:
        raise ValueError("this runtime cannot read the artifact")
