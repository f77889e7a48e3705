from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifact cache for every real run in this test session (EXPORTCONF_TEST_CACHE to keep it)."""
    keep = os.environ.get("EXPORTCONF_TEST_CACHE")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        return Path(keep)
    return tmp_path_factory.getbasetemp().parent / "exportconf-test-cache"


@pytest.fixture
def run_subprocess(pytester: pytest.Pytester, shared_cache: Path):  # type: ignore[no-untyped-def]
    """Run ``pytest --exportconf`` in a child process (as a user would), with the shared artifact cache."""

    def run(*args: str) -> pytest.RunResult:
        # the runtime level unless a test asks for the system level (its apps are tested in test_system_level)
        return pytester.runpytest_subprocess("--exportconf", f"--exportconf-cache-dir={shared_cache}",
                                             "-p", "no:cacheprovider", "--exportconf-level=runtime", *args,
                                             timeout=1800)

    return run


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}


@contextlib.contextmanager
def once_per_session(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[tuple[Path, bool]]:
    """A directory ``name`` shared by every pytest-xdist worker of this test session, and whether it is
    already filled. Held under a file lock: the first worker to get there fills it (then
    ``ready`` is written), the others wait for the lock and reuse it. A directory left half-filled by
    a worker that failed is emptied for the next one. Without xdist, it lives in this session's basetemp."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    # under xdist each worker's basetemp is a directory of the session's own; without it, basetemp is that
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    d = shared / f"once-{name}"
    with FileLock(str(shared / f"once-{name}.lock")):
        if (d / ".ready").is_file():
            yield d, True
            return
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        yield d, False
        (d / ".ready").write_text("")


@pytest.fixture(scope="session")
def wheel_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with exportconf installed from its wheel; the heavy dependencies come from this
    environment through a .pth line (which does not run the editable-install hook, so only the
    wheel's copy of exportconf is importable there). Built once per test session, whatever the
    number of xdist workers."""
    with once_per_session(tmp_path_factory, "wheel") as (tmp, ready):
        py = tmp / "venv" / "bin" / "python"
        if ready:
            return py
        dist = tmp / "dist"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
                       check=True, capture_output=True)
        wheel = next(dist.glob("pytest_exportconf-*.whl"))
        subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True)
        site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
        Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        subprocess.run([py, "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True,
                       capture_output=True)
    return py


def results_files(*dirs: Path) -> list[Path]:
    """Every exportconf results file under ``dirs`` (by content: a JSON document naming its schema)."""
    found = []
    for d in dirs:
        for p in d.rglob("*.json") if d.is_dir() else ():
            if "node_modules" in p.parts or ".tox" in p.parts or p.stat().st_size > 50_000_000:
                continue
            try:
                with p.open(encoding="utf-8") as f:
                    head = f.read(200)
            except (OSError, UnicodeDecodeError):
                continue
            if '"schema": "exportconf-results/1"' in head:
                found.append(p)
    return found


@pytest.fixture(autouse=True)
def _results_files_match_the_schema(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every results file a test's runs write is validated against the published JSON Schema."""
    dirs = [request.getfixturevalue(name).path if name == "pytester" else request.getfixturevalue(name)
            for name in ("pytester", "tmp_path") if name in request.fixturenames]
    yield
    from pytest_exportconf.resultsfile import check

    for path in results_files(*dirs):
        check(json.loads(path.read_text()), str(path))


def add_test_stack(pytester: pytest.Pytester, stack: str, module: str, *routes: str) -> None:
    """A conftest registering a stack of its own with routes from ``tests/<module>.py``."""
    adds = "\n".join(f"            registry.add_route({r})" for r in routes)
    pytester.makeconftest(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from {module} import {", ".join(routes)}
        from pytest_exportconf.registry import Stack

        def pytest_exportconf_register(registry):
            registry.add_stack(Stack({stack!r}, {stack.capitalize()!r}, {stack!r}))
{adds}
    """)
