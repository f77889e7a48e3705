from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_exportconf.cache import ArtifactCache


def _build_slowly(root: str, counter: str) -> str:
    def build(tmp: Path) -> dict[str, Any]:
        with open(counter, "a") as f:
            f.write("built\n")
        time.sleep(0.5)  # long enough for the other process to reach the lock
        (tmp / "model.bin").write_bytes(b"x" * 1000)
        return {"files": ["model.bin"]}

    return str(ArtifactCache(Path(root)).get_or_build("sys/fw", {"k": 1}, build))


def test_two_processes_build_once(tmp_path: Path) -> None:
    counter = tmp_path / "count.txt"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        paths = pool.starmap(_build_slowly, [(str(tmp_path / "c"), str(counter))] * 2)
    assert paths[0] == paths[1]
    assert counter.read_text().count("built") == 1
    assert (Path(paths[0]) / "model.bin").stat().st_size == 1000
    assert ArtifactCache.manifest(Path(paths[0]))["key"] == {"k": 1}


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)

    def broken(tmp: Path) -> dict[str, Any]:
        (tmp / "half").write_text("half")
        raise RuntimeError("exporter crashed")

    with pytest.raises(RuntimeError, match="exporter crashed"):
        cache.get_or_build("s/f", {"k": 2}, broken)
    assert not cache.path("s/f", {"k": 2}).exists()
    assert [p.name for p in (tmp_path / "s").iterdir() if not p.name.endswith(".lock")] == []


def test_key_change_means_new_entry(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    a = cache.get_or_build("s/f", {"v": "1"}, lambda tmp: {})
    again = cache.get_or_build("s/f", {"v": "1"}, lambda tmp: pytest.fail("rebuilt a cached entry"))
    b = cache.get_or_build("s/f", {"v": "2"}, lambda tmp: {})
    assert a == again != b


def test_a_lock_never_waits_forever_and_names_its_holder(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import textwrap

    from pytest_exportconf.locks import LockTimeout, locked

    lock = tmp_path / "entry.lock"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pytest_exportconf.locks import locked
        with locked({str(lock)!r}, "build a slow entry"):
            print("held", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeout) as e, locked(lock, "read the entry", timeout=0.5):
            pass
        message = str(e.value)
        assert str(lock) in message and "to read the entry" in message
        assert f"held by pid {holder.pid}" in message and "(build a slow entry)" in message
    finally:
        holder.kill()
        holder.wait()
    with locked(lock, "read the entry", timeout=5):  # a dead holder's lock is free again
        assert (tmp_path / "entry.lock.holder").is_file()
    assert not (tmp_path / "entry.lock.holder").exists()
    assert os.listdir(tmp_path) == ["entry.lock"]
