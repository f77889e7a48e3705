"""`exportconf merge` and `exportconf diff` on results written by real runs, and the published schema.

Two real runs of a small selection (the number predictor, Python stack): the baseline measures ONNX and
Pickle; the second measures ONNX and Joblib with a conftest ``pytest_exportconf_grade`` hook that
downgrades ONNX (a team's policy changing between two commits), so between them a cell moves down,
one goes missing and one is new.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, clean_env, once_per_session

from pytest_exportconf import resultsfile

SELECT = ("--exportconf-systems=number_predictor", "--exportconf-stacks=python")
DOWNGRADE_HOOK = '''
def pytest_exportconf_grade(outcome):
    if outcome.format == "onnx":
        return "--"
'''
ONNX, PICKLE, JOBLIB = (f"number_predictor/{f}/python" for f in ("onnx", "pickle", "joblib"))


@dataclass
class Runs:
    base: Path  # onnx, pickle
    changed: Path  # onnx (downgraded by the hook), joblib
    dir: Path


def _suite(project: Path, cache: Path, results: str, *args: str) -> None:
    run = subprocess.run([sys.executable, "-m", "pytest", "--exportconf", f"--exportconf-cache-dir={cache}",
                          "-p", "no:cacheprovider", *SELECT, f"--exportconf-results={results}", *args],
                         cwd=project, capture_output=True, text=True, env=clean_env(), timeout=1800)
    assert (project / results).is_file(), run.stdout[-3000:] + run.stderr[-3000:]


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> Runs:
    """The two runs, once per test session (the xdist workers running this module's tests share them)."""
    with once_per_session(tmp_path_factory, "drift") as (d, ready):
        base, changed = d / "base", d / "changed"
        if not ready:
            base.mkdir()
            changed.mkdir()
            _suite(base, shared_cache, "base.json", "--exportconf-formats=onnx,pickle")
            (changed / "conftest.py").write_text(DOWNGRADE_HOOK)
            _suite(changed, shared_cache, "changed.json", "--exportconf-formats=onnx,joblib")
    for p in (base / "base.json", changed / "changed.json"):
        resultsfile.check(json.loads(p.read_text()), str(p))  # what the suite wrote matches the schema
    return Runs(base / "base.json", changed / "changed.json", d)


def grade(results: Path, cell: str) -> str:
    """A grade as measured in a run (never hard-coded: the rubric decides it)."""
    return next(str(c["grade"]) for c in json.loads(results.read_text())["cells"] if c["cell"] == cell)


def cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_exportconf", *map(str, args)], capture_output=True,
                          text=True, env={**clean_env(), **(env or {})}, timeout=120)


def test_diff_fails_on_a_real_downgrade_and_names_why(runs: Runs) -> None:
    run = cli("diff", runs.base, runs.changed)
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    g = grade(runs.base, ONNX)
    assert g != "--"  # so that the hook's -- is a downgrade
    assert f"FAIL downgrade: {ONNX} {g} -> --: " in out
    assert f"grade set by pytest_exportconf_grade hook (rubric said {g} at the " in out
    assert f"missing: {PICKLE} {grade(runs.base, PICKLE)} -> (none): not measured in the new run" in out
    assert f"new: {JOBLIB} (none) -> {grade(runs.changed, JOBLIB)}: joblib (native)" in out
    assert "1 downgrade, 0 upgrade, 1 new, 1 missing" in out


def test_diff_without_downgrade_passes_unless_fail_on_widens(runs: Runs) -> None:
    back = cli("diff", runs.changed, runs.base)  # the other way round: an upgrade, pickle new, joblib missing
    assert back.returncode == 0, back.stdout
    assert f"upgrade: {ONNX} -- -> {grade(runs.base, ONNX)}" in back.stdout
    assert f"missing: {JOBLIB}" in back.stdout
    widened = cli("diff", runs.changed, runs.base, "--fail-on", "missing")
    assert widened.returncode == 1
    assert f"FAIL missing: {JOBLIB}" in widened.stdout
    bad = cli("diff", runs.changed, runs.base, "--fail-on", "missng")
    assert bad.returncode == 2
    assert "unknown --fail-on kind(s) missng; valid kinds: downgrade, upgrade, new, missing, changed" in bad.stderr
    same = cli("diff", runs.base, runs.base, "--markdown", "-")
    assert same.returncode == 0 and "No cell changed." in same.stdout


def test_merge_refuses_corrupt_and_unknown_files_and_merges_the_rest(runs: Runs, tmp_path: Path) -> None:
    corrupt = runs.dir / "truncated.json"  # an artifact download cut short
    corrupt.write_text(runs.base.read_text()[:500])
    future = runs.dir / "future.json"
    future.write_text(json.dumps({**json.loads(runs.base.read_text()), "schema": "exportconf-results/2"}))
    broken = runs.dir / "broken.json"  # valid JSON, but a cell without its grade
    doc = json.loads(runs.base.read_text())
    del doc["cells"][0]["grade"]
    broken.write_text(json.dumps(doc))
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    run = cli("merge", runs.base, corrupt, future, broken, runs.changed, "-o", tmp_path / "drift.html",
              "--markdown", summary, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"refused {corrupt}: corrupt (not JSON: " in run.stderr
    assert (f"refused {future}: unknown schema 'exportconf-results/2'; this exportconf reads "
            "exportconf-results/1") in run.stderr
    assert f"refused {broken}: does not match the exportconf-results/1 schema" in run.stderr
    assert "cells[0]: 'grade' is a required property" in run.stderr
    assert "2 runs, 3 cells, 3 change grade" in run.stdout
    g = grade(runs.base, ONNX)
    assert f"{ONNX}: {g} --" in run.stdout

    md = summary.read_text()
    assert md.startswith("earlier step\n### exportconf drift: 3 of 3 cells change grade across 2 runs")  # appended
    row = next(line for line in md.splitlines() if line.startswith(f"| `{ONNX}`"))
    assert f"| `{g}` | **`--`** :warning: grade set by pytest_exportconf_grade hook" in row
    assert "#### Refused files" in md and "truncated.json" in md

    page = (tmp_path / "drift.html").read_text()
    assert "<th class='run'>base" in page and "<th class='run'>changed" in page
    assert "<td class='g g-mm changed'" in page  # the downgraded entry is highlighted
    assert "Refused files" in page


def test_columns_are_labelled_by_the_versions_that_differ(runs: Runs, tmp_path: Path) -> None:
    """Two real runs on one machine differ in no framework version; a third column from the same run
    whose recorded scikit-learn differs (as a tox env pinning it would record) is labelled by it alone."""
    from pytest_exportconf.merge import merge

    doc = json.loads(runs.base.read_text())
    doc["frameworks"]["sklearn"]["scikit-learn"] = "1.5.2"
    other = tmp_path / "skl15.json"
    other.write_text(json.dumps(doc))
    d = merge([runs.base, runs.changed, other])
    labels = dict(d.labels())
    assert labels["skl15"] == ["scikit-learn 1.5.2"]
    assert labels["base"][0].startswith("scikit-learn ") and labels["base"][0] != "scikit-learn 1.5.2"


def test_history_keeps_every_run_and_shows_where_a_grade_moved(runs: Runs, tmp_path: Path) -> None:
    history = tmp_path / "history"
    one, two = tmp_path / "1", tmp_path / "2"
    one.mkdir()
    two.mkdir()
    shutil.copy(runs.base, one / "py.json")  # one env ("py") measured on two days
    shutil.copy(runs.changed, two / "py.json")
    assert cli("merge", "--history", history, one / "py.json").returncode == 0
    run = cli("merge", "--history", history, two / "py.json", "-o", tmp_path / "drift.html", "--markdown", "-")
    assert run.returncode == 0, run.stderr
    kept = sorted(p.name for p in history.iterdir())
    assert len(kept) == 2 and kept[0].startswith("0001-") and kept[1].startswith("0002-")
    g = grade(runs.base, ONNX)
    assert f"history: {ONNX}: run {kept[1]}, py: {g} -> -- (" in run.stdout
    assert "#### History (2 runs kept)" in run.stdout
    assert "grade moved at (history)" in (tmp_path / "drift.html").read_text()
    # the history alone (no new file) reports the latest kept run
    again = cli("merge", "--history", history, "--markdown", "-")
    assert again.returncode == 0 and f"run {kept[1]}, py: {g} -> --" in again.stdout
    assert len(list(history.iterdir())) == 2  # nothing new kept


def test_schema_ships_in_the_package_and_docs_and_allows_added_fields(runs: Runs) -> None:
    packaged = resultsfile.SCHEMA_FILE
    assert json.loads((ROOT / "docs" / "results-schema-1.json").read_text()) == json.loads(packaged.read_text())
    doc = json.loads(runs.base.read_text())
    # fields the plugin adds within version 1 (friction evidence, per-output comparisons, scan verdicts)
    cell = doc["cells"][0]
    cell["frictions"].append({"kind": "input-coercion", "detail": "", "source": "declared", "evidence": "x"})
    cell["verdict"] = {"scanner": "picklescan", "verdict": "clean"}
    cell["producers"][0]["attempts"][0]["outputs"] = [{"name": "y", "max_abs_error": 0.0}]
    assert resultsfile.validation_errors(doc) == []
    cell["frictions"].append({"detail": "no kind"})
    cell["grade"] = "+++"
    errors = resultsfile.validation_errors(doc)
    assert any(e.startswith("cells[0].frictions[") and "'kind' is a required property" in e for e in errors)
    assert any(e.startswith("cells[0].grade: '+++' is not one of") for e in errors)


def test_console_script_from_the_wheel(wheel_python: Path, runs: Runs) -> None:
    exe = wheel_python.parent / "exportconf"
    run = subprocess.run([exe, "diff", runs.base, runs.changed], capture_output=True, text=True, env=clean_env())
    assert run.returncode == 1 and f"FAIL downgrade: {ONNX}" in run.stdout  # the schema travelled in the wheel
