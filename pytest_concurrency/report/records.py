"""The records of a report and a baseline file, as TypedDicts: the one place
their fields are named, typed and described.

The files are plain JSON, and so are these records: what an item's data is
while it runs (``entry.py``), what rides in its TestReports to pytest-xdist's
controller, what the collector builds and every renderer reads, and what
``show``/``compare``/``merge`` read back are the same dicts, typed, never
converted.  (pytest's own reports are classes with ``_to_json``/``_from_json``
because they carry behaviour and objects that are not JSON; pytest-xdist
sends plain dicts.  These records carry nothing but JSON, and a file of
another version keeps the fields this one does not know, which a class would
drop.)

``schema.py`` builds the JSON Schemas of the files from these classes (the
description of each field is the string in its ``Annotated``; ``Keys`` marks
an object whose keys are data; ``Minimum`` a lower bound), and the schemas
ship in ``pytest_concurrency/schemas/``: a field added here is in the
published schema, and a test fails until the shipped file has it too.

This module has no ``from __future__ import annotations``: the annotations
are read at run time (``typing.get_type_hints``) to build the schemas.
"""

import dataclasses
from typing import Annotated, Literal, NotRequired, TypedDict


@dataclasses.dataclass(frozen=True)
class Keys:
    """In ``Annotated``: a mapping whose keys are data (machine keys, outcomes),
    described by ``what``; its paths in messages read ``machines['key']``."""

    what: str


@dataclasses.dataclass(frozen=True)
class Minimum:
    """In ``Annotated``: the smallest value a number may have."""

    value: float


Better = Literal["lower", "higher"]

# Every metric a report may hold: name -> (unit, which direction is better).
METRICS: dict[str, tuple[str, Better]] = {
    "wall": ("s", "lower"),
    "cpu": ("s", "lower"),
    "memory": ("B", "lower"),
    "throughput": ("calls/s", "higher"),
    "speedup": ("x", "higher"),
    "efficiency": ("ratio", "higher"),
    # the share of one CPU a thread got during a budgeted test's rounds (what a busy
    # machine makes of the CPU time it cannot see waiting: rounds.unexplained)
    "availability": ("ratio", "higher"),
}


class Metric(TypedDict):
    """One measured metric: a median with its interval, or a single run."""

    value: Annotated[float, Minimum(0), "the median of the rounds, or the one run's value"]
    low: Annotated[float, Minimum(0), "the low end of the median's distribution-free "
                                      "interval (the value itself for a single run)"]
    high: Annotated[float, Minimum(0), "the high end of that interval (the value itself "
                                       "for a single run)"]
    rounds: Annotated[int, Minimum(0), "paired rounds measured; 1 for a single run"]
    unit: Annotated[str, "s, B, calls/s, x or ratio"]
    better: Annotated[Better, "which direction is an improvement"]


Metrics = Annotated[dict[str, Metric], "what was measured, by name (only what was): "
                                       + ", ".join(f"{name} ({unit})"
                                                   for name, (unit, _) in METRICS.items())]


class BudgetVerdict(TypedDict):
    """One limit of a ``concurrency_budget`` (or ``--concurrency-compare-fail``), judged."""

    key: Annotated[str, "the limit's metric: wall, cpu, memory, throughput, speedup, "
                        "efficiency or regression"]
    limit: Annotated[str, "the limit as written, e.g. 'wall <= 250ms'"]
    verdict: Annotated[str, "pass, fail, inconclusive (the interval straddles the limit) "
                            "or unmeasured"]
    message: Annotated[str, "what was measured against the limit, in one sentence"]


class BaselineVerdict(TypedDict):
    """A metric compared with the baseline's median for the same test, mode and layout."""

    status: Annotated[str, "new (no baseline entry), unchanged, regressed or improved"]
    metric: Annotated[str, "the metric compared (wall)"]
    ratio: Annotated[float | None, "current median / baseline median; null when there is "
                                   "no baseline or the ratio is too large for a float"]
    baseline: Annotated[float | None, "the baseline's median; null when there is none"]
    threshold: Annotated[float | None, "the fraction beyond which a change counts (0.1: "
                                       "10%)"]


class Failure(TypedDict):
    """One distinct failure of an item (failures alike across workers are one)."""

    kind: Annotated[str, "race, deadlock, crash, timeout, leak, budget or exception"]
    summary: Annotated[str, "one line"]
    message: Annotated[str, "the full text (its middle cut when very long)"]
    workers: Annotated[list[int], "the indexes of the workers that failed this way"]
    iteration: Annotated[int | None, "the iteration it first happened in, if known"]
    replay: Annotated[str | None, "explore: the token that replays the failing schedule"]
    replay_command: Annotated[str | None, "the command that replays it"]


class Step(TypedDict):
    """One step of a schedule: a worker at a line, doing something."""

    worker: Annotated[int, "the worker (or the task or thread it started) that ran it"]
    file: Annotated[str, "the source file"]
    line: Annotated[int, "the line number"]
    function: Annotated[str, "the function"]
    what: Annotated[str | None, "what it did there: 'reads .value', 'acquires lock', ..."]
    source: Annotated[str, "the source line, stripped"]


class Interleaving(TypedDict):
    """The failing (or first rejected) schedule of an exploration."""

    schedule: Annotated[int, "its index among the schedules explored"]
    kind: Annotated[str, "how it failed: assertion, exception, deadlock, rejected "
                         "outcome, ..."]
    worker: Annotated[int | None, "the worker that failed; null for a deadlock or a "
                                  "rejected outcome"]
    message: Annotated[str, "what failed, in one line"]
    total_steps: Annotated[int, "steps in the whole schedule"]
    steps: Annotated[list[Step], "its last steps (at most 200), in order"]


class Exploration(TypedDict):
    """What an explore item explored."""

    strategy: Annotated[str | None, "pct, random, dfs or dpor"]
    seed: Annotated[int | None, "the seed the strategy ran with"]
    workers: Annotated[int | None, "the workers (threads or tasks) scheduled"]
    schedules: Annotated[int | None, "schedules explored"]
    budget: Annotated[int | None, "schedules allowed (the marker's schedules=)"]
    complete: Annotated[bool | None, "verified: every distinct interleaving was explored, "
                                     "nothing unseen, and the test did not fail after it"]
    distinct: Annotated[int | None, "distinct interleavings run to their end"]
    incomplete: Annotated[str | None, "why the search is not complete, every reason; null "
                                      "when it is"]
    verdict: Annotated[str | None, "the exploration's verdict, in one line"]
    settings: Annotated[str | None, "how it ran: 'strategy=pct, seed=3, 2 workers, Python "
                                    "3.12, sys.monitoring'"]
    outcomes: Annotated[int | None, "distinct outcomes observed"]
    outcome_counts: Annotated[dict[str, int], Keys("an outcome's repr"),
                              "schedules per outcome (the first 20 outcomes)"]
    schedules_per_second: Annotated[float | None, "schedules explored per second"]
    switch_points: Annotated[str | None, "how the workers were switched: sys.monitoring, "
                                         "sys.settrace, or asyncio awaits"]
    python: Annotated[str | None, "the Python version it ran on (major.minor)"]
    virtual_time: Annotated[float | None, "asyncio tasks: the most virtual seconds a "
                                          "schedule's clock went"]
    interleaving: Annotated[Interleaving | None, "the failing schedule, if one failed"]


class Entry(TypedDict):
    """One test item: a test in one mode."""

    nodeid: Annotated[str, "pytest's node id, with the mode: 'tests/test_x.py::t[thread]'"]
    test: Annotated[str, "the node id without the mode: 'tests/test_x.py::t'"]
    mode: Annotated[str, "thread, process, hybrid or explore"]
    layout: Annotated[str, "the workers: '4', or processes x threads ('2x2') in hybrid mode"]
    workers: Annotated[int | None, "the workers"]
    iterations: Annotated[int | None, "times each worker ran the body"]
    outcome: Annotated[str, "passed, failed, skipped, error, xfailed, xpassed, interrupted "
                            "(set up, never finished: it proved nothing) or serial (it "
                            "passed, run once, serially: see serial)"]
    serial: Annotated[str | None, "why it ran once, serially: 'uses monkeypatch'; null when "
                                  "it ran concurrently"]
    duration: Annotated[float, "seconds pytest spent on the call"]
    metrics: Metrics
    budget: Annotated[list[BudgetVerdict], "the budget's limits, judged"]
    baseline: Annotated[BaselineVerdict | None, "compared with the baseline "
                                                "(--concurrency-baseline); null without one"]
    advice: Annotated[str | None, "the advisor's note on which mode suits the test, the same "
                                  "on each of its modes"]
    failures: Annotated[list[Failure], "every distinct failure"]
    exploration: Annotated[Exploration | None, "explore items: what was explored"]


class GilEvent(TypedDict):
    """An import that turned the GIL back on, on a free-threaded build."""

    module: Annotated[str, "the module imported"]
    during: Annotated[str, "the node id of the test (or the phase) it happened in"]


class Source(TypedDict):
    """A report a merged report was made from."""

    created: Annotated[str | None, "when it was written"]
    machine: Annotated[str | None, "its machine key"]
    git_commit: Annotated[str | None, "its git commit"]


class Run(TypedDict):
    """Where and how the session ran."""

    python: Annotated[str, "the Python version: '3.11.7'"]
    implementation: Annotated[str, "CPython, PyPy, ..."]
    platform: Annotated[str, "platform.platform()"]
    os: Annotated[str, "Linux, Darwin, Windows"]
    arch: Annotated[str, "x86_64, arm64, ..."]
    cpu_count: Annotated[int | None, "the machine's CPUs"]
    cpu_affinity: Annotated[list[int], "the CPUs the session may run on"]
    usable_cpus: Annotated[int, "how many CPUs that is"]
    git_commit: Annotated[str | None, "the commit checked out in the root directory"]
    xdist_workers: Annotated[int, "pytest-xdist's workers (0 without it)"]
    interrupted: Annotated[bool, "the session was stopped (Ctrl-C, SIGTERM, pytest.exit)"]
    gil_disabled_build: Annotated[bool, "a free-threaded CPython (Py_GIL_DISABLED)"]
    gil_enabled: Annotated[bool, "the GIL at the end of the session"]
    gil_reenabled_by: Annotated[list[GilEvent], "imports that turned the GIL back on"]
    machine: Annotated[str, "the coarse machine key baselines are kept under: OS, "
                            "architecture, Python minor version, usable CPUs"]
    merged_from: NotRequired[Annotated[list[Source], "merged reports only: the reports it "
                                                     "was made from, in order"]]


class Report(TypedDict):
    """A report file (``--concurrency-report PATH.json``)."""

    schema: Annotated[int, "the version of this shape"]
    generator: Annotated[str, "'pytest-concurrency' and its version"]
    created: Annotated[str, "when it was written (ISO 8601, UTC)"]
    run: Run
    tests: Annotated[list[Entry], "one entry per test item (test x mode)"]


class Stored(TypedDict):
    """A baseline's entry: what one test, mode and layout measured when it was saved."""

    metrics: Metrics
    saved: NotRequired[Annotated[str | None, "when it was saved (ISO 8601, UTC)"]]
    git_commit: NotRequired[Annotated[str | None, "the git commit it was saved at"]]


MachineEntries = Annotated[dict[str, Stored], Keys("'<test>|<mode>|<layout>'"),
                           "the entries saved on one kind of machine"]


class Baseline(TypedDict):
    """A baseline file (``--concurrency-baseline``)."""

    schema: Annotated[int, "the version of this shape"]
    kind: NotRequired[Annotated[Literal["baseline"], "always 'baseline'"]]
    machines: Annotated[dict[str, MachineEntries], Keys("a machine key, as run.machine in a "
                                                        "report"),
                        "the entries saved on each kind of machine"]
