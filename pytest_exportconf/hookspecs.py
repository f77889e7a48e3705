"""Hooks of the exportconf plugin. Implement them in a ``conftest.py`` or a plugin of yours.

The built-in systems, frameworks, formats, stacks and routes register through the same
``pytest_exportconf_register`` hook (see ``builtin.py``), so anything built in can be added the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .concepts import Outcome
    from .registry import Registry
    from .setup import Setup


@pytest.hookspec(historic=True)
def pytest_exportconf_register(registry: Registry) -> None:
    """Add systems, frameworks, formats, stacks, routes and worker runtimes to the registry.

    Historic: implementations in conftests that pytest loads later (below the rootdir, while collecting
    the paths given on the command line) are called too, as soon as they are loaded, before the suite
    (collected last) makes its cells.

    **A system** (your own model; ``[tool.exportconf]`` does the same without code)::

        from pytest_exportconf.user import ModelSystem

        def build():
            from sklearn.linear_model import LogisticRegression
            x, y = load_my_data()
            return LogisticRegression().fit(x, y), x[:16]      # model, golden inputs

        def pytest_exportconf_register(registry):
            registry.add_system(ModelSystem(name="churn", framework="sklearn", factory=build,
                                            task="classification"))

    **A format** (an exporter per framework) **and the route that loads it**::

        from pytest_exportconf.registry import ExportResult, Format, PythonRoute

        class KerasFile(Format):
            name, label, study_label, primary_framework = "keras", "Keras (.keras)", "Keras", "tensorflow"
            def exporters(self):
                def export(ex, out):
                    ex.model.save(out / "model.keras")
                    return ExportResult("model.keras", "keras Model.save")
                return {"tensorflow": export}

        class KerasLoad(PythonRoute):
            name, kind, format, stack = "keras.saving", "native", "keras", "python"
            def load(self, req):              # runs in the load worker process
                import keras
                model = keras.saving.load_model(req.artifact, safe_mode=True)
                ...                           # return a Loaded: predict(x) -> list of arrays

        def pytest_exportconf_register(registry):
            registry.add_format(KerasFile())
            registry.add_route(KerasLoad)

    **A stack** (and its runtime: a long-lived worker speaking docs/protocol.md)::

        from pytest_exportconf.registry import Route, Stack

        class OrtJava(Route):
            name, kind, format, stack, runtime = "onnxruntime-java", "native", "onnx", "java", "jvm"

        def pytest_exportconf_register(registry):
            registry.add_stack(Stack("java", "Java", "java"))
            registry.add_runtime("jvm", lambda: ["java", "-jar", "harness.jar"])
            registry.add_route(OrtJava)

    **A route** for an existing format and stack::

        class OrtNoOptimisation(PythonRoute):
            name, kind, format, stack = "onnxruntime-noopt", "native", "onnx", "python"
            def load(self, req): ...

        def pytest_exportconf_register(registry):
            registry.add_route(OrtNoOptimisation)
    """


@pytest.hookspec
def pytest_exportconf_setup(setup: Setup) -> None:
    """Prepare your stacks and routes for the run: provision a runtime, build a tool, register workers.

    Called once per run on the xdist controller (or the only process), before workers start, with
    ``setup.controller`` true: do the work there, then ``setup.provide(key, value)`` what workers need
    (JSON). Each xdist worker is called again with ``setup.controller`` false and reads
    ``setup.received(key)`` instead of preparing again. Report a failure with ``setup.fail(what, error)``:
    the controller prints it once; give the workers the reason too, so that the cells fail with it.
    Not called under ``--collect-only``. The built-in JavaScript/TypeScript stacks use this hook
    (``stacks/node.py``). Example ``conftest.py``::

        import shutil, subprocess

        def pytest_exportconf_setup(setup):
            if "java" not in setup.stacks:
                return
            if setup.controller:
                jar = setup.cache_dir / "harness.jar"
                if not jar.is_file():
                    subprocess.run(["mvn", "-q", "package", f"-DoutputFile={jar}"], check=True)
                setup.provide("java", {"jar": str(jar), "java": shutil.which("java")})
            info = setup.shared("java")  # the controller's, on every worker
            setup.registry.add_runtime("jvm", lambda: [info["java"], "-jar", info["jar"]])
    """


@pytest.hookspec(firstresult=True)
def pytest_exportconf_grade(outcome: Outcome) -> str | None:
    """Return a grade (``++``, ``+``, ``-``, ``--``) to override the rubric for one cell, or None.

    The outcome's reason then says the grade came from this hook. Example ``conftest.py``::

        def pytest_exportconf_grade(outcome):
            if outcome.format == "pickle":
                return "--"  # our policy: never ship pickles
    """
