"""pytest hooks: options, markers, one item per mode, and the lazy registration of
the rest.

Hooks stay thin; the logic lives in options.py (the option table), spec.py (what
to run), items.py (running concurrent items), running.py and runners/ (running
a body), outcomes.py (what failed), leaks.py, rounds.py (budgets) and report/
(what the session measured and found).
"""

from __future__ import annotations

import pytest

from . import compat, options, originals, spec  # noqa: F401 - originals: saved now
from .fixtures import barrier, concurrency, worker
from .report import settings as report_settings
from .spec import INVALID, SPEC, SPEC_ARG

# Everything that runs, watches or reports concurrent work (psutil,
# multiprocessing, the runners, the report writers, the item hooks in items.py,
# unittest support in testcase.py) is imported, and its hooks registered, only
# once collection finds a concurrent item: a suite of ordinary tests pays next
# to nothing for the plugin. Such imports stay inside the functions that need
# them, and the stash keys the eager modules share live in eager modules
# (spec.py, report/settings.py), so a module imported afresh (as pytester's
# inline runs do, restoring sys.modules after each) never meets another
# generation's keys.

__all__ = ["barrier", "concurrency", "worker"]  # fixtures, found by pytest here

MARKER_HELP = (
    "concurrency(modes=('thread',), workers=None, processes=None, threads=None, "
    "iterations=1, timeout=None, start_method=None, schedules=None, strategy=None, "
    "seed=None, instrument=(), leaks=None, fixtures=None, lock_order=None): run the test "
    "body concurrently, "
    "one test item per mode (thread, process, hybrid, explore). See pytest-concurrency's "
    "manual."
)
THREAD_UNSAFE_HELP = (
    "thread_unsafe(reason=None): run this test once, serially, in thread, hybrid and "
    "explore mode (pytest-run-parallel's marker, honoured by pytest-concurrency)."
)
BUDGET_HELP = (
    "concurrency_budget(wall=, cpu=, memory=, speedup=, efficiency=, throughput=, "
    "regression=): performance limits for a concurrent test."
)
_FOUND = pytest.StashKey[bool]()  # collection parametrized some test by mode


def _argparse(help_text: str) -> str:
    """Help text as argparse wants it: it %-formats help, so a literal % is %%."""
    return help_text.replace("%", "%%")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("concurrency", "run test bodies concurrently (pytest-concurrency)")
    for option in options.OPTIONS:
        text = _argparse(option.help)
        if option.kind == "flag":
            group.addoption(option.flag, dest=option.dest, action="store_true",
                            default=False, help=text)
            parser.addini(option.ini, option.help, type="bool", default=False)
        elif option.kind == "switch":
            group.addoption(option.flag, dest=option.dest, choices=("on", "off"),
                            default=None, help=text)
            parser.addini(option.ini, option.help, type="bool", default=True)
        elif option.kind == "paths":
            group.addoption(option.flag, dest=option.dest, action="append", default=None,
                            metavar=option.metavar, help=text)
            parser.addini(option.ini, option.help, type="paths", default=None)
        else:
            group.addoption(option.flag, dest=option.dest, default=None,
                            metavar=option.metavar, help=text)
            parser.addini(option.ini, option.help, default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.addinivalue_line("markers", BUDGET_HELP)
    config.addinivalue_line("markers", THREAD_UNSAFE_HELP)
    try:
        config.stash[spec.SETTINGS] = spec.read_settings(config)
        reports = report_settings.configure(config)
    except options.OptionError as exc:
        raise pytest.UsageError(f"pytest-concurrency: {exc}") from None
    from . import gil

    gil.watch(config)  # a free-threaded build: which import re-enables the GIL, if any
    controller = config.getoption("dist", "no") != "no" and not hasattr(config, "workerinput")
    if controller or reports.reports:  # xdist's controller: its workers collect, it reports
        from . import items

        items.use_collector(config)


def pytest_report_header(config: pytest.Config) -> str | None:
    from . import gil

    return gil.header()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from . import ending

    # a thread a test left stuck must not keep the process from ending
    ending.session_finished(int(session.exitstatus))


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.pluginmanager.has_plugin(report_settings.COLLECTOR):
        from . import items

        items.release(config)


_MARKERS = frozenset(("concurrency", "concurrency_budget"))
_MARKED_PARENTS = pytest.StashKey[dict[str, bool]]()  # parent node id -> carries our markers


def _marked(definition: pytest.Function, config: pytest.Config) -> bool:
    """Whether the function or a parent (class, module) carries one of our markers;
    parents are looked at once each, since every ordinary test asks."""
    for mark in definition.own_markers:
        if mark.name in _MARKERS:
            return True
    parent = definition.parent
    assert parent is not None  # a function's module or class
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
        assert definition.parent is not None  # a function's module or class
        key = (definition.parent.nodeid, definition.originalname)
        metafunc.config.stash.setdefault(INVALID, {})[key] = str(exc)
        return
    if specs:
        metafunc.config.stash[_FOUND] = True
        metafunc.fixturenames.append(SPEC_ARG)
        metafunc.parametrize(SPEC_ARG, specs, ids=[s.mode for s in specs])


def _mark_serial(items: list[pytest.Item], settings: spec.Settings) -> None:
    """Record, for each concurrent whole-body item that cannot run concurrently in
    its mode, why (it then runs once, serially, and is reported as such)."""
    from . import unsafe
    from .items import SERIAL

    for item in items:
        run_spec = item.stash.get(SPEC, None)
        if run_spec is None or "concurrency" in getattr(item, "fixturenames", ()):
            continue  # not concurrent, or a scenario test: it runs its workers itself
        shared = run_spec.fixtures == "shared" or (
            run_spec.mode in ("process", "hybrid") and run_spec.start_method != "fork")
        reason = unsafe.serial_reason(item, run_spec.mode, settings.detect_unsafe, shared)
        if reason:
            item.stash[SERIAL] = reason


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    settings = config.stash[spec.SETTINGS]
    invalid = config.stash.setdefault(INVALID, {})
    testcases = False
    if any(type(item) is compat.TestCaseFunction for item in items):
        from . import testcase

        items[:] = testcase.expand(items, settings, invalid)
        testcases = any(isinstance(item, testcase.ConcurrentTestCaseFunction)
                        for item in items)
    found = config.stash.get(_FOUND, False)
    if found:  # each item keeps its spec in its stash, the one place spec_of() reads
        for item in items:
            callspec = getattr(item, "callspec", None)
            if callspec is not None and SPEC_ARG in callspec.params:
                item.stash[SPEC] = callspec.params[SPEC_ARG]
    if found or testcases:
        _mark_serial(items, settings)
    if invalid or found or testcases:
        from . import items as item_hooks

        item_hooks.use_item_hooks(config)
