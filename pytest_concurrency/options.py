"""Every command-line option and ini value of the plugin, in one table.

The plugin registers them from :data:`OPTIONS` (``--concurrency-<name>`` and
``concurrency_<name>``), ``spec.py`` and ``report/settings.py`` read them by
name, and the manual's options reference is printed from the same table, so
the three cannot drift apart.  Marker arguments beat the command line, which
beats the ini file, which beats the defaults.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest


@dataclasses.dataclass(frozen=True)
class Option:
    """One option: ``--concurrency-<name>`` on the command line, ``concurrency_<name>``
    in the ini file."""

    name: str  # with underscores, as in the ini file
    help: str
    kind: str = "value"  # value | flag (store_true, bool ini) | switch (on|off, bool ini)
    #                      | paths (repeatable, paths ini)
    default: str = ""  # what applies when it is not given, as the manual shows it
    marker: str = ""  # the concurrency marker argument that beats it, if any
    metavar: str = ""

    @property
    def flag(self) -> str:
        return "--concurrency-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "concurrency_" + self.name

    @property
    def dest(self) -> str:
        return "concurrency_" + self.name


OPTIONS: tuple[Option, ...] = (
    Option("workers", "default worker count: an integer or 'auto' (usable CPUs)",
           default="4 (explore: 2)", marker="workers", metavar="N"),
    Option("iterations", "default number of times each worker runs the body", default="1",
           marker="iterations", metavar="N"),
    Option("timeout", "default seconds for a whole concurrent run; 'inf' (or anything "
           "above 1000000) means 1000000 s, no practical timeout", default="60",
           marker="timeout", metavar="SECONDS"),
    Option("start_method", "process start method: fork, forkserver or spawn",
           default="fork on Linux, spawn elsewhere", marker="start_method",
           metavar="METHOD"),
    Option("schedules", "explore: default number of interleavings to try", default="200",
           marker="schedules", metavar="N"),
    Option("strategy", "explore: default strategy (pct, random, dfs, dpor)", default="pct",
           marker="strategy", metavar="NAME"),
    Option("seed", "seed for explore schedules and start jitter",
           default="random, printed on failure", marker="seed", metavar="N"),
    Option("leaks", "what to do with threads/processes left behind: fail, warn, ignore",
           default="fail", marker="leaks", metavar="POLICY"),
    Option("apply", "comma-separated modes: treat every unmarked test as marked with them",
           marker="modes", metavar="MODES"),
    Option("replay", "explore: run exactly the schedule of this replay token",
           metavar="TOKEN"),
    Option("reproduce", "thread mode: when a whole-body test fails, run its body again under "
           "explore (a few strategies, at most 200 schedules each and 10 s in all) and, when a "
           "schedule raises the same exception at the same line, print the "
           "--concurrency-replay command that reproduces it on the same item",
           kind="flag", default="off"),
    Option("fixtures", "shared (one set of function-scoped fixtures for all workers) or "
           "per-worker (fresh ones for every call of the body: each worker, each iteration)",
           default="shared for marked tests, per-worker under --concurrency-apply",
           marker="fixtures", metavar="MODE"),
    Option("timeout_cap", "how long a run still making progress at its timeout may go on: "
           "off (fail there, as too slow), seconds, or a multiple of the timeout like 10x",
           default="10x under --concurrency-apply, off for marked tests",
           metavar="CAP"),
    Option("detect_unsafe", "on or off: run tests that use thread-unsafe techniques "
           "(capfd, monkeypatch, recwarn, mock.patch, warnings.catch_warnings, pytest.warns) "
           "or carry @pytest.mark.thread_unsafe once, serially, in thread, hybrid and explore "
           "mode; off runs them concurrently anyway (the marker still counts)",
           kind="switch", default="on"),
    Option("strict", "fail, instead of warning, when a budget verdict stays inconclusive or "
           "a wall-clock limit is exceeded by no more than a busy machine explains",
           kind="flag", default="off"),
    Option("report", "write a report of concurrent runs; the format comes from the suffix: "
           ".json, .md, .html (repeatable)", kind="paths", metavar="PATH"),
    Option("baseline", "baseline file to compare with (default: concurrency-baseline.json in "
           "the rootdir, when saving or with --concurrency-compare-fail)",
           default="concurrency-baseline.json in the rootdir", metavar="PATH"),
    Option("save_baseline", "save this run's passing measurements into the baseline file",
           kind="flag", default="off"),
    Option("compare_fail", "fail a test whose wall time is worse than its baseline beyond "
           "this threshold, e.g. median:10%", metavar="THRESHOLD"),
    Option("junit", "add key metrics to JUnit XML as user_properties (concurrency.*)",
           kind="flag", default="off"),
    Option("step_summary", "on or off: append the Markdown summary to $GITHUB_STEP_SUMMARY "
           "when it is set and concurrent items ran", kind="switch", default="on"),
)

BY_NAME = {option.name: option for option in OPTIONS}


class OptionError(ValueError):
    """A command-line or ini value that cannot be used; the message names it."""


def value(config: pytest.Config, name: str) -> str | None:
    """The command-line value of option ``name`` if given, else its ini value, else None."""
    given = config.getoption(BY_NAME[name].dest, None)
    if given in (None, ""):
        given = config.getini(BY_NAME[name].ini) or None
    return given


def flag(config: pytest.Config, name: str) -> bool:
    """A boolean option: the command-line flag (or on/off), else the ini value."""
    option = BY_NAME[name]
    given = config.getoption(option.dest, False)
    if given in ("on", "off"):
        return given == "on"
    if given:
        return True
    try:
        return bool(config.getini(option.ini))
    except Exception as exc:  # noqa: BLE001 - pytest's "invalid truth value 'maybe'"
        raise OptionError(f"{option.ini} in the ini file: {exc}; expected true or "
                          "false") from None


def check_flags(config: pytest.Config) -> None:
    """OptionError naming the first on/off ini value that is neither, read now
    (some flags are read only when they are needed, such as ``reproduce`` after a
    failure: a bad value there would fail a test instead of the session)."""
    for option in OPTIONS:
        if option.kind in ("flag", "switch"):
            flag(config, option.name)


def paths(config: pytest.Config, name: str) -> list[str]:
    """Absolute paths: from the command line (relative to where pytest was
    invoked), else from the ini file (relative to it)."""
    option = BY_NAME[name]
    given = config.getoption(option.dest, None)
    if given:
        base = str(config.invocation_params.dir)
        given = [given] if isinstance(given, str) else given
    else:
        given = config.getini(option.ini) or []
        given = given.split() if isinstance(given, str) else given
        base = str(config.inipath.parent) if config.inipath else str(config.rootpath)
    return [os.path.normpath(os.path.join(base, os.path.expanduser(p))) for p in given]


def replay_command(nodeid: str, token: str) -> str:
    """The command that replays one explore schedule of the item ``nodeid``."""
    return f"pytest '{nodeid}' {BY_NAME['replay'].flag}={token}"
