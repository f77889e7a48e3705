from __future__ import annotations

import os
import sys
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
    """Run pytest in a child process (as a user would), with the shared artifact cache."""

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess(f"--exportconf-cache-dir={shared_cache}", "-p", "no:cacheprovider",
                                             *args, timeout=1800)

    return run


def python() -> str:
    return sys.executable
