"""The report document: the one data shape every report is made from.

A document is plain JSON-able data, typed by the TypedDicts of ``records.py``
(where every field is described) and checked against the JSON Schema built
from them (``schema.py``; shipped as ``pytest_concurrency/schemas/``)::

    {
      "schema": 2,
      "generator": "pytest-concurrency 0.1.0",
      "created": "2026-11-22T09:10:00+00:00",
      "run": {                         # where it ran (records.Run)
        "python": "3.11.7", "implementation": "CPython",
        "platform": "Linux-6.1.0-x86_64-with-glibc2.36", "os": "Linux",
        "arch": "x86_64", "cpu_count": 2, "cpu_affinity": [0, 1], "usable_cpus": 2,
        "git_commit": "3e3dd8f..." or null, "xdist_workers": 0, "interrupted": false,
        "gil_disabled_build": false, "gil_enabled": true, "gil_reenabled_by": [],
        "machine": "Linux-x86_64-CPython3.11-2cpu"      # the coarse machine key
      },
      "tests": [                       # one entry per test item (records.Entry)
        {
          "nodeid": "tests/test_x.py::test_sum[thread]",
          "test": "tests/test_x.py::test_sum",
          "mode": "thread", "layout": "4", "workers": 4, "iterations": 1,
          "outcome": "passed", "serial": null, "duration": 0.12,
          "metrics": {"wall": {"value": 0.0123, "low": 0.0120, "high": 0.0130,
                               "rounds": 5, "unit": "s", "better": "lower"}, ...},
          "budget": [{"key": "wall", "limit": "wall <= 250ms", "verdict": "pass",
                      "message": "..."}],
          "baseline": null or {"status": "regressed", "metric": "wall", "ratio": 1.31,
                               "baseline": 0.0094, "threshold": 0.1},
          "advice": "CPU-bound: ..." or null,
          "failures": [{"kind": "race", "summary": "...", "message": "...",
                        "workers": [0, 1], "iteration": 3 or null,
                        "replay": "token" or null, "replay_command": "..." or null}],
          "exploration": null or {"strategy": "pct", "seed": 3, ...,
                                  "interleaving": null or {"steps": [...], ...}}
        }
      ]
    }

``metrics`` values are medians over the paired rounds of a budgeted test
(``low``/``high`` its distribution-free interval) or the one run of any other
test (``low == high == value``, ``rounds`` 1).

Every file is checked against its schema when it is read (:func:`load`,
:func:`parse`: one ReportError naming the file and the first bad field) and
before it is written (:func:`text`): a document this version would write and
not read back is a bug, refused with :data:`SCHEMA_BUG` in its message.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict, cast, overload

from . import schema
from .records import METRICS, Baseline, Entry, Metric, Report, Run
from .schema import SCHEMA

if TYPE_CHECKING:
    from ..gil import GilState

__all__ = ["METRICS", "SCHEMA"]  # METRICS lives in records.py, beside the fields
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
           rounds: int = 1) -> Metric:
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


def machine_key(run: Platform) -> str:
    """Coarse enough to match the same CI runner kind, fine enough not to compare
    a laptop with a server: OS, architecture, Python, usable CPUs."""
    version = ".".join(run["python"].split(".")[:2])
    return f"{run['os']}-{run['arch']}-{run['implementation']}{version}-{run['usable_cpus']}cpu"


class Platform(TypedDict):
    """Where this runs: the fields of a report's ``run`` that platform_info() knows."""

    python: str
    implementation: str
    platform: str
    os: str
    arch: str
    cpu_count: int | None
    cpu_affinity: list[int]
    usable_cpus: int
    machine: str


def platform_info() -> Platform:
    """Where this runs, without the git commit (cheap)."""
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = list(range(os.cpu_count() or 1))
    run: Platform = {
        "python": platform.python_version(),
        "implementation": sys.implementation.name.replace("cpython", "CPython"),
        "platform": platform.platform(),
        "os": platform.system(),
        "arch": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "usable_cpus": len(affinity),
        "machine": "",
    }
    run["machine"] = machine_key(run)
    return run


def run_metadata(rootdir: str, xdist_workers: int, interrupted: bool,
                 gil: GilState) -> Run:
    """A report's ``run``: where the session ran, and how it ended."""
    where = platform_info()
    return {
        "python": where["python"], "implementation": where["implementation"],
        "platform": where["platform"], "os": where["os"], "arch": where["arch"],
        "cpu_count": where["cpu_count"], "cpu_affinity": where["cpu_affinity"],
        "usable_cpus": where["usable_cpus"], "git_commit": _git_commit(rootdir),
        "xdist_workers": xdist_workers, "interrupted": interrupted,
        "gil_disabled_build": gil["gil_disabled_build"], "gil_enabled": gil["gil_enabled"],
        "gil_reenabled_by": gil["gil_reenabled_by"], "machine": where["machine"],
    }


def new(run: Run, tests: list[Entry]) -> Report:
    from .. import __version__

    return {
        "schema": SCHEMA,
        "generator": f"pytest-concurrency {__version__}",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "run": run,
        "tests": tests,
    }


@overload
def check(data: object, path: str, kind: Literal["report"] = "report") -> Report: ...
@overload
def check(data: object, path: str, kind: Literal["baseline"]) -> Baseline: ...


def check(data: object, path: str, kind: str = "report") -> Report | Baseline:
    """``data`` if it is a document of ``kind`` of a schema this version reads
    (schema.READS), whose every field is as its schema says (a schema 1 report
    brought up to date: schema.upgrade_v1), else a ReportError naming the file
    and the first bad field, e.g. ``malformed report: r.json:
    tests[0].metrics.wall.value is not a number``."""
    if not isinstance(data, dict) or "schema" not in data:
        raise ReportError(f"{path}: not a pytest-concurrency {kind} (no \"schema\" field)")
    version, reads = data["schema"], schema.READS[kind]
    if type(version) is not int or version not in reads:
        raise ReportError(f"{path}: {kind} schema {_shown(version)} is not supported "
                          f"({readable(kind)}"
                          + ("; a newer pytest-concurrency wrote it)"
                             if type(version) is int and version > reads[0] else ")"))
    field = "tests" if kind == "report" else "machines"
    expected = list if kind == "report" else dict
    if not isinstance(data.get(field), expected):
        raise ReportError(f"{path}: not a pytest-concurrency {kind} "
                          f"(\"{field}\" missing or malformed)")
    if kind == "baseline":
        shape = schema.baseline()
    elif version == 1:
        shape = schema.REPORT_V1
    else:
        shape = schema.report()
    found = schema.problem(data, shape)
    if found:
        raise ReportError(f"malformed {kind}: {path}: {found}")
    if kind == "report" and version == 1:
        schema.upgrade_v1(data)
    return cast("Report | Baseline", data)  # its shape was checked just now


def readable(kind: str) -> str:
    """``this version reads schema 2 (and 1)``: the schemas of ``kind`` it reads."""
    newest, *older = schema.READS[kind]
    return f"this version reads schema {newest}" + (
        f" (and {', '.join(map(str, older))})" if older else "")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@overload
def parse(text: str, path: str, kind: Literal["report"] = "report") -> Report: ...
@overload
def parse(text: str, path: str, kind: Literal["baseline"]) -> Baseline: ...


def parse(text: str, path: str, kind: Literal["report", "baseline"] = "report"
          ) -> Report | Baseline:
    """A file's ``text`` as a checked document; every problem is one ReportError
    naming the file."""
    try:
        data = schema.parse(text)
    except schema.Unusable as exc:
        raise ReportError(f"{path}: corrupt {kind} ({exc})") from None
    except ValueError as exc:  # json.JSONDecodeError
        raise ReportError(f"{path}: corrupt {kind} (not JSON: {exc})") from None
    return check(data, path, kind)


@overload
def load(path: str, kind: Literal["report"] = "report") -> Report: ...
@overload
def load(path: str, kind: Literal["baseline"]) -> Baseline: ...


def load(path: str, kind: Literal["report", "baseline"] = "report") -> Report | Baseline:
    """Read and check a file; every problem is one ReportError naming it."""
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


SCHEMA_BUG = "does not match its schema"  # in the message of a document refused at writing


def text(data: Report | Baseline, kind: Literal["report", "baseline"] = "report") -> str:
    """The JSON text of a report (or baseline) file, once it is checked against its
    schema: what this version would not read back is never written."""
    written = dumps(data)
    found = schema.problem(json.loads(written), schema.report() if kind == "report"
                           else schema.baseline())
    if found:
        raise ReportError(f"the {kind} {SCHEMA_BUG} ({found}): a bug in "
                          "pytest-concurrency, please report it")
    return written


def dumps(data: Report | Baseline) -> str:
    """``data`` as the JSON text of a file; a number that is not finite (JSON has
    no Infinity or NaN, and no reader could use it) is written as null."""
    try:
        return json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n"
    except ValueError:  # every writer means to store finite numbers: a safety net
        return json.dumps(_finite(data), indent=2, sort_keys=False, allow_nan=False) + "\n"


def _finite(value: Any) -> Any:  # any JSON value, walked before it is written
    """``value`` with every float that is not finite replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def regressions_first(tests: Sequence[Entry]) -> list[Entry]:
    """Entries ordered for a reader: what got worse or failed first, then by node id."""
    def rank(entry: Entry) -> int:
        if regressed(entry):
            return 0
        if entry.get("outcome") in BAD_OUTCOMES or verdicts(entry, "fail"):
            return 1
        if verdicts(entry, "inconclusive"):
            return 2
        return 3
    return sorted(tests, key=lambda e: (rank(e), e["nodeid"]))


def regressed(entry: Entry) -> bool:
    """Whether the entry is slower than its baseline beyond the threshold."""
    baseline = entry.get("baseline")
    return baseline is not None and baseline.get("status") == "regressed"


def verdicts(entry: Entry, verdict: str) -> int:
    """How many of the entry's budget limits got ``verdict``."""
    return sum(b.get("verdict") == verdict for b in entry.get("budget") or ())
