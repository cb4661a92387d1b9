"""pytest hooks: options, markers, one item per mode, running the body, reports.

Hooks stay thin; the logic lives in spec.py (what to run), running.py and
runners/ (running it), outcomes.py (what failed), leaks.py, rounds.py
(budgets) and report/ (what the session measured and found).
"""

from __future__ import annotations

import inspect
import warnings

import pytest

from . import spec, testcase
from .fixtures import barrier, concurrency, worker
from .spec import SPEC_ARG, spec_of, tb_style

# Everything that runs, watches or reports concurrent work (psutil,
# multiprocessing, the runners, the report writers) is imported, and its hooks
# registered, only once collection finds a concurrent item: a suite of ordinary
# tests pays next to nothing for the plugin.

__all__ = ["barrier", "concurrency", "worker"]  # fixtures, found by pytest here

_INVALID = pytest.StashKey[dict]()  # (parent nodeid, function name) -> problem
_LEAKS = pytest.StashKey[tuple]()  # (leaks.Snapshot, active watchdog.subreaper())
_BASELINE = pytest.StashKey[dict]()  # the baseline read at configure
_MACHINE = pytest.StashKey[str]()  # this machine's baseline key, worked out once

MARKER_HELP = (
    "concurrency(modes=('thread',), workers=None, processes=None, threads=None, "
    "iterations=1, timeout=None, start_method=None, schedules=None, strategy=None, "
    "seed=None, instrument=(), leaks=None): run the test body concurrently, one test "
    "item per mode (thread, process, hybrid, explore). See pytest-concurrency's README."
)
BUDGET_HELP = (
    "concurrency_budget(wall=, cpu=, memory=, speedup=, efficiency=, throughput=, "
    "regression=): performance limits for a concurrent test."
)


REPORT_OPTIONS = (  # name, ini type, help
    ("report", "paths", "write a report of concurrent runs; the format comes from the suffix: "
     ".json, .md (also appended to $GITHUB_STEP_SUMMARY), .html (repeatable)"),
    ("baseline", "string", f"baseline file to compare with (default: {spec.DEFAULT_BASELINE} "
     "in the rootdir, when saving or with --concurrency-compare-fail)"),
    ("save_baseline", "bool", "save this run's passing measurements into the baseline file"),
    ("compare_fail", "string", "fail a test whose wall time is worse than its baseline beyond "
     "this threshold, e.g. median:10%"),
    ("junit", "bool", "add key metrics to JUnit XML as user_properties (concurrency.*)"),
    ("step_summary", "switch", "on (default) or off: append the Markdown summary to "
     "$GITHUB_STEP_SUMMARY when it is set and concurrent items ran"),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("concurrency", "run test bodies concurrently (pytest-concurrency)")
    for name, help_text in spec.OPTIONS.items():
        group.addoption(f"--concurrency-{name.replace('_', '-')}", dest=f"concurrency_{name}",
                        default=None, metavar=name.upper(), help=_argparse(help_text))
        parser.addini(f"concurrency_{name}", help_text, default="")
    strict = ("fail, instead of warning, when a budget verdict stays inconclusive or a "
              "wall-clock budget is exceeded under pytest-xdist")
    group.addoption("--concurrency-strict", dest="concurrency_strict", action="store_true",
                    default=False, help=_argparse(strict))
    parser.addini("concurrency_strict", strict, type="bool", default=False)
    for name, kind, help_text in REPORT_OPTIONS:
        flag = kind == "bool"
        option = f"--concurrency-{name.replace('_', '-')}"
        if kind == "switch":  # on|off on the command line, a boolean in the ini file
            group.addoption(option, dest=f"concurrency_{name}", choices=("on", "off"),
                            default=None, help=_argparse(help_text))
            parser.addini(f"concurrency_{name}", help_text, type="bool", default=True)
            continue
        group.addoption(option, dest=f"concurrency_{name}",
                        action="append" if kind == "paths" else "store_true" if flag else "store",
                        default=False if flag else None,
                        **({} if flag else {"metavar": name.split("_")[-1].upper()}),
                        help=_argparse(help_text))
        parser.addini(f"concurrency_{name}", help_text, type=kind if kind != "string" else None,
                      default=False if flag else None)


def _argparse(help_text: str) -> str:
    """Help text as argparse wants it: it %-formats help, so a literal % is %%."""
    return help_text.replace("%", "%%")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.addinivalue_line("markers", BUDGET_HELP)
    try:
        config.stash[spec.SETTINGS] = spec.read_settings(config)
        reports = config.stash[spec.REPORTS] = spec.read_report_settings(config)
    except spec.SpecError as exc:
        raise pytest.UsageError(f"pytest-concurrency: {exc}") from None
    if reports.baseline or reports.save_baseline:  # a bad file stops the session now
        from .report import baseline, document

        try:
            stored = baseline.load(reports.baseline or reports.save_baseline)
        except document.ReportError as exc:
            raise pytest.UsageError(f"pytest-concurrency: {exc}") from None
        if reports.baseline:
            config.stash[_BASELINE] = stored
            config.stash[_MACHINE] = document.platform_info()["machine"]
    controller = config.getoption("dist", "no") != "no" and not hasattr(config, "workerinput")
    if controller or reports.reports:  # xdist's controller: its workers collect, it reports
        use_collector(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.pluginmanager.has_plugin(COLLECTOR):
        from . import cleanup

        cleanup.release_sigterm()


def use_collector(config: pytest.Config) -> None:
    """Register the report collector (once); from then on SIGTERM stops the
    session cleanly, like Ctrl-C, so that nothing is left running and the
    reports are written."""
    if not config.pluginmanager.has_plugin(COLLECTOR):
        from . import cleanup
        from .report import baseline, collector

        cleanup.catch_sigterm()

        stored = config.stash.get(_BASELINE, None) or baseline.empty()
        config.pluginmanager.register(
            collector.Collector(config, config.stash[spec.REPORTS], stored), COLLECTOR)


_MARKERS = frozenset(("concurrency", "concurrency_budget"))
_MARKED_PARENTS = pytest.StashKey[dict]()  # parent node id -> a parent carries our markers


def _marked(definition, config) -> bool:
    """Whether the function or a parent (class, module) carries one of our markers;
    parents are looked at once each, since every ordinary test asks."""
    for mark in definition.own_markers:
        if mark.name in _MARKERS:
            return True
    parent = definition.parent
    known = config.stash.setdefault(_MARKED_PARENTS, {})
    found = known.get(parent.nodeid)
    if found is None:
        found = known[parent.nodeid] = any(
            parent.get_closest_marker(name) is not None for name in _MARKERS)
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    settings = metafunc.config.stash[spec.SETTINGS]
    definition = metafunc.definition
    if not settings.apply and not _marked(definition, metafunc.config):
        return  # the common case, kept cheap: an ordinary test
    try:
        specs = spec.specs_for(definition.iter_markers("concurrency"), settings,
                               definition.iter_markers("concurrency_budget"))
    except spec.SpecError as exc:
        # Reported when this test is set up, so the module's other tests still run.
        key = (definition.parent.nodeid, definition.originalname)
        metafunc.config.stash.setdefault(_INVALID, {})[key] = str(exc)
        return
    if specs:
        metafunc.fixturenames.append(SPEC_ARG)
        metafunc.parametrize(SPEC_ARG, specs, ids=[s.mode for s in specs])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    settings = config.stash[spec.SETTINGS]
    invalid = config.stash.setdefault(_INVALID, {})
    items[:] = testcase.expand(items, settings, invalid)
    if invalid or any(spec_of(item) is not None for item in items):
        use_item_hooks(config)


def use_item_hooks(config: pytest.Config) -> None:
    """Register the hooks that run concurrent items (once): only sessions that
    have some pay for them on every test."""
    if not config.pluginmanager.has_plugin(ITEM_HOOKS):
        config.pluginmanager.register(ConcurrentItems(), ITEM_HOOKS)
    use_collector(config)


ITEM_HOOKS = "concurrency-items"
COLLECTOR = "concurrency-report"


class ConcurrentItems:
    """Setting up, running, tearing down and reporting concurrent items."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        invalid = item.config.stash.get(_INVALID, None)
        if invalid:
            problem = invalid.get((item.parent.nodeid, getattr(item, "originalname", "")))
            if problem:
                pytest.fail(f"@pytest.mark.concurrency on {item.name}: {problem}", pytrace=False)
        run_spec = spec_of(item)
        if run_spec is None:
            return
        from .report import entry

        entry.start(item, run_spec)
        if run_spec.leaks != "ignore":
            from . import leaks, watchdog

            item.stash[_LEAKS] = (leaks.snapshot(), watchdog.subreaper())
            item.stash[_LEAKS][1].__enter__()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem):
        from . import watchdog

        # What workers leave behind (tasks on an event loop they shared, a held
        # lock, a thread a finalizer joins) must not hang the session: a teardown
        # stuck past the timeout is interrupted and fails, saying where it was.
        run_spec = spec_of(item)
        seconds = (run_spec or item.config.stash[spec.SETTINGS]).timeout
        with watchdog.main_thread_guard(seconds, seconds * spec.TIMEOUT_CAP_FACTOR,
                                        f"the teardown of {item.nodeid}"):
            result = yield
        watch = item.stash.get(_LEAKS, None)
        if watch is not None:
            from . import leaks

            del item.stash[_LEAKS]
            before, reaper = watch
            try:
                found = leaks.find(before)
            finally:
                reaper.__exit__(None, None, None)
            if found:
                policy = spec_of(item).leaks
                message = leaks.describe(found, policy)
                leaks.kill(found)
                if policy == "fail":
                    from .report import entry

                    entry.leak(item, message)
                    pytest.fail(message, pytrace=False)
                warnings.warn(pytest.PytestWarning(message), stacklevel=1)
        return result

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function):
        run_spec = spec_of(pyfuncitem)
        if run_spec is None or "concurrency" in pyfuncitem.fixturenames:
            return None  # not concurrent, or a scenario test that drives the workers itself
        if inspect.iscoroutinefunction(pyfuncitem.obj):
            pytest.fail("pytest-concurrency cannot run async test functions concurrently",
                        pytrace=False)
        from . import rounds
        from .report import entry
        from .running import fresh_funcargs, run_target

        funcargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        limits, stored = _limits(pyfuncitem, run_spec)
        saving = pyfuncitem.config.stash[spec.REPORTS].save_baseline is not None
        if (limits or saving) and run_spec.mode != "explore":  # explore's tracing is no benchmark
            def record(measured, verdicts):
                entry.add_estimates(pyfuncitem, measured, verdicts)

            rounds.run(run_spec, pyfuncitem, pyfuncitem.obj, funcargs, limits,
                       run_spec.strict, record, baseline=stored)
            return True
        refresh = (lambda: fresh_funcargs(pyfuncitem)) if run_spec.mode == "explore" else None
        run_target(run_spec, pyfuncitem, pyfuncitem.obj, (), funcargs, arg_kind="fixture",
                   refresh=refresh)
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        from .report import entry

        if entry.DATA in item.stash:  # a concurrent item
            data = entry.for_report(item, report, call.excinfo)
            setattr(report, entry.REPORT_ATTR, data)
            if call.when == "call" and item.config.stash[spec.REPORTS].junit:
                item.user_properties.extend(entry.properties(data))  # junitxml reads teardown's
        if call.excinfo is None:
            return report
        from . import outcomes

        if isinstance(call.excinfo.value, outcomes.WorkerFailures):
            style = tb_style(item.config)
            if style not in ("no", "native"):
                report.longrepr = outcomes.longrepr(call.excinfo.value, style, item.location)
        return report


def _limits(item, run_spec) -> tuple[tuple, dict | None]:
    """The item's budget, with ``--concurrency-compare-fail`` as a regression limit
    when the baseline has this test; and its baseline wall time, if any."""
    reports = item.config.stash[spec.REPORTS]
    if reports.baseline is None:
        return run_spec.budget, None
    from . import budget
    from .report import baseline, entry

    stored = baseline.lookup(item.config.stash[_BASELINE], item.config.stash[_MACHINE], {
        "test": entry.base_id(item.nodeid), "mode": run_spec.mode, "layout": run_spec.layout})
    stored = stored and stored.get("wall")
    limits = run_spec.budget
    if stored and reports.compare_fail is not None \
            and not any(limit.key == "regression" for limit in limits):
        limits += budget.parse({"regression": reports.compare_fail})
    return limits, stored
