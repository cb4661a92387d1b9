"""The schema-1 report document: the one data shape every report is made from.

A document is plain JSON-able data::

    {
      "schema": 1,
      "generator": "pytest-concurrency 0.1.0",
      "created": "2026-11-22T09:10:00+00:00",
      "run": {                         # where it ran
        "python": "3.11.7", "implementation": "CPython",
        "platform": "Linux-6.1.0-x86_64-with-glibc2.36", "os": "Linux",
        "arch": "x86_64", "cpu_count": 2, "cpu_affinity": [0, 1], "usable_cpus": 2,
        "git_commit": "3e3dd8f..." or null, "xdist_workers": 0,
        "interrupted": false,          # the session was stopped (Ctrl-C, SIGTERM)
        "gil_disabled_build": false,   # free-threaded CPython (Py_GIL_DISABLED)
        "gil_enabled": true,           # the GIL at the end of the session
        "gil_reenabled_by": [{"module": "ext", "during": "<nodeid>"}],  # imports that
                                       # turned the GIL back on (free-threaded builds)
        "machine": "Linux-x86_64-CPython3.11-2cpu"      # the coarse machine key
      },
      "tests": [                       # one entry per test item (test × mode)
        {
          "nodeid": "tests/test_x.py::test_sum[thread]",
          "test": "tests/test_x.py::test_sum",          # nodeid without the mode
          "mode": "thread", "layout": "4",              # "4" workers, or "2x2" (hybrid)
          "workers": 4, "iterations": 1,
          "outcome": "passed",       # passed failed skipped error xfailed xpassed
                                     # interrupted (set up, never finished)
                                     # serial (passed, run once: see "serial")
          "serial": null or "uses monkeypatch",  # why it ran once, serially
          "exploration": null or {     # explore items: what was explored
            "strategy": "pct", "seed": 3, "workers": 2, "schedules": 10, "budget": 200,
            "complete": false,         # verified: every distinct interleaving was
                                       # explored, nothing unseen, no failure after
            "incomplete": "sampled" or null,   # why not, every reason
            "verdict": "10 schedules explored (...)",   # one line
            "settings": "strategy=pct, seed=3, 2 workers, Python 3.12, sys.monitoring",
            "outcomes": 2, "outcome_counts": {"[[1], [2]]": 9, ...},
            "schedules_per_second": 160.2, "switch_points": "sys.monitoring",
            "python": "3.12",
            "virtual_time": null or 30.0,  # asyncio tasks: the most virtual seconds
                                           # a schedule's clock went (switch_points
                                           # "asyncio awaits")
            "interleaving": null or {  # the failing schedule, its last 200 steps
              "schedule": 9, "kind": "assertion", "worker": 1, "message": "...",
              "total_steps": 28, "steps": [{"worker": 0, "file": "/path/test_x.py",
                "line": 19, "function": "increment", "what": "reads .value",
                "source": "self.value += 1"}, ...]}},
          "duration": 0.12,          # seconds pytest spent on the call
          "metrics": {               # only what was measured
            "wall": {"value": 0.0123, "low": 0.0120, "high": 0.0130, "rounds": 5,
                     "unit": "s", "better": "lower"},
            ...                      # cpu (s), memory (B), throughput (calls/s),
          },                         # speedup (x), efficiency (ratio)
          "budget": [{"key": "wall", "limit": "wall <= 250ms",
                      "verdict": "pass",   # pass fail inconclusive unmeasured
                      "message": "..."}],
          "baseline": null or {"status": "regressed",  # new unchanged regressed improved
                               "metric": "wall", "ratio": 1.31, "baseline": 0.0094,
                               "threshold": 0.1},
          "advice": "CPU-bound: ..." or null,   # per test, repeated on each mode
          "failures": [{"kind": "race",  # race deadlock crash timeout leak budget
                                         # exception
                        "summary": "AssertionError: 1 != 2",   # one line
                        "message": "...",                      # the full text
                        "workers": [0, 1], "iteration": 3 or null,
                        "replay": "token" or null,
                        "replay_command": "pytest '...' --concurrency-replay=..." or null}]
        }
      ]
    }

``metrics`` values are medians over the paired rounds of a budgeted test
(``low``/``high`` its distribution-free interval) or the one run of any other
test (``low == high == value``, ``rounds`` 1).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
import sys
from typing import Any

from . import schema
from .schema import SCHEMA

# metric -> (unit, which direction is better)
METRICS = {
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
OUTCOMES = ("passed", "failed", "skipped", "error", "xfailed", "xpassed", "interrupted",
            "serial")
# Outcomes a reader must look at: an interrupted item did not finish (Ctrl-C,
# SIGTERM, pytest.exit), so it proved nothing.
BAD_OUTCOMES = ("failed", "error", "interrupted")


class ReportError(Exception):
    """A report or baseline file that cannot be used: unreadable, not JSON, or
    not a schema this version understands."""


def all_interleavings(count: int, distinct: str = "distinct ") -> str:
    """``all 4 distinct interleavings``; ``the only distinct interleaving`` for one."""
    return f"the only {distinct}interleaving" if count == 1 else \
        f"all {count} {distinct}interleavings"


def metric(key: str, value: float, low: float | None = None, high: float | None = None,
           rounds: int = 1) -> dict[str, Any]:
    unit, better = METRICS[key]
    return {"value": value, "low": value if low is None else low,
            "high": value if high is None else high, "rounds": rounds,
            "unit": unit, "better": better}


def _git_commit(cwd: str) -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def machine_key(run: dict[str, Any]) -> str:
    """Coarse enough to match the same CI runner kind, fine enough not to compare
    a laptop with a server: OS, architecture, Python, usable CPUs."""
    version = ".".join(run["python"].split(".")[:2])
    return f"{run['os']}-{run['arch']}-{run['implementation']}{version}-{run['usable_cpus']}cpu"


def platform_info() -> dict[str, Any]:
    """Where this runs, without the git commit (cheap)."""
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = list(range(os.cpu_count() or 1))
    run = {
        "python": platform.python_version(),
        "implementation": sys.implementation.name.replace("cpython", "CPython"),
        "platform": platform.platform(),
        "os": platform.system(),
        "arch": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "usable_cpus": len(affinity),
    }
    run["machine"] = machine_key(run)
    return run


def run_metadata(rootdir: str, xdist_workers: int = 0) -> dict[str, Any]:
    run = platform_info()
    run["git_commit"] = _git_commit(rootdir)
    run["xdist_workers"] = xdist_workers
    return run


def new(run: dict[str, Any], tests: list[dict[str, Any]]) -> dict[str, Any]:
    from .. import __version__

    return {
        "schema": SCHEMA,
        "generator": f"pytest-concurrency {__version__}",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "run": run,
        "tests": tests,
    }


def check(data: object, path: str, kind: str = "report") -> dict[str, Any]:
    """``data`` if it is a schema-1 document of ``kind`` whose every field the
    readers rely on has its type (see schema.py), else a ReportError naming the
    file and the first bad field, e.g. ``malformed report: r.json:
    tests[0].metrics.wall.value is not a number``."""
    if not isinstance(data, dict) or "schema" not in data:
        raise ReportError(f"{path}: not a pytest-concurrency {kind} (no \"schema\" field)")
    if data["schema"] != SCHEMA:
        raise ReportError(f"{path}: {kind} schema {_shown(data['schema'])} is not supported "
                          f"(this version reads schema {SCHEMA})")
    field = "tests" if kind == "report" else "machines"
    expected = list if kind == "report" else dict
    if not isinstance(data.get(field), expected):
        raise ReportError(f"{path}: not a pytest-concurrency {kind} "
                          f"(\"{field}\" missing or malformed)")
    found = schema.problem(data, schema.REPORT if kind == "report" else schema.BASELINE)
    if found:
        raise ReportError(f"malformed {kind}: {path}: {found}")
    if kind == "report":
        data.setdefault("run", {})
    return data


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse(text: str, path: str, kind: str = "report") -> dict[str, Any]:
    """A file's ``text`` as a checked document; every problem is one ReportError
    naming the file."""
    try:
        data = schema.parse(text)
    except schema.Unusable as exc:
        raise ReportError(f"{path}: corrupt {kind} ({exc})") from None
    except ValueError as exc:  # json.JSONDecodeError
        raise ReportError(f"{path}: corrupt {kind} (not JSON: {exc})") from None
    return check(data, path, kind)


def load(path: str, kind: str = "report") -> dict[str, Any]:
    """Read and check a schema-1 file; every problem is one ReportError naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReportError(f"{path}: is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read it: {exc}") from None
    return parse(text, path, kind)


def dumps(data: dict[str, Any]) -> str:
    """``data`` as the JSON text of a file; a number that is not finite (JSON has
    no Infinity or NaN, and no reader could use it) is written as null."""
    try:
        return json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n"
    except ValueError:  # every writer means to store finite numbers: a safety net
        return json.dumps(_finite(data), indent=2, sort_keys=False, allow_nan=False) + "\n"


def _finite(value: Any) -> Any:
    """``value`` with every float that is not finite replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def regressions_first(tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries ordered for a reader: what got worse or failed first, then by node id."""
    def rank(entry: dict[str, Any]) -> int:
        baseline = entry.get("baseline") or {}
        if baseline.get("status") == "regressed":
            return 0
        if entry.get("outcome") in BAD_OUTCOMES or any(
                b.get("verdict") == "fail" for b in entry.get("budget", ())):
            return 1
        if any(b.get("verdict") == "inconclusive" for b in entry.get("budget", ())):
            return 2
        return 3
    return sorted(tests, key=lambda e: (rank(e), e["nodeid"]))
