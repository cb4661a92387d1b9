"""Baselines: what earlier runs measured, per machine kind, to compare with.

A baseline file is JSON::

    {"schema": 1, "kind": "baseline",
     "machines": {"<machine key>": {"<test>|<mode>|<layout>": {
         "metrics": {...as in a report...}, "saved": "<iso time>", "git_commit": ...}}}}

Saving merges this run's passing entries into the file under its lock, so
several sessions (CI shards, pytest-xdist controllers) can save into one file
without losing each other's entries.  Missing entries are "new", never errors.
A test whose run is saved is measured in paired rounds, like a budgeted one,
so that what is stored is a median, not one noisy run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import compare, document
from .schema import BASELINE_SCHEMA

if TYPE_CHECKING:
    from .compare import Measured
    from .records import Baseline, Entry, Metrics, Report, Run


def empty() -> Baseline:
    return {"schema": BASELINE_SCHEMA, "kind": "baseline", "machines": {}}


def load(path: str) -> Baseline:
    """The baseline at ``path``; an empty one if there is no file yet."""
    if not os.path.exists(path):
        return empty()
    return document.load(path, kind="baseline")


def lookup(baseline: Baseline, machine: str, entry: Measured) -> Metrics | None:
    """The stored metrics of the same test, mode and layout on this machine kind."""
    stored = baseline["machines"].get(machine, {}).get(compare.key(entry))
    return stored["metrics"] if stored else None


def judge(tests: Sequence[Entry], baseline: Baseline, machine: str,
          threshold: float) -> None:
    """Give every entry its ``baseline`` verdict (wall time) against ``baseline``."""
    for entry in tests:
        if entry["mode"] not in compare.MODES:
            continue
        old = lookup(baseline, machine, entry)
        entry["baseline"] = compare.judge(old.get("wall") if old else None,
                                          entry["metrics"].get("wall"), threshold)


def merged(text: str | None, path: str, run: Run, created: str,
           tests: Sequence[Entry]) -> str:
    """The baseline file's new text: ``text`` with this run's passing entries."""
    data = empty() if text is None else document.parse(text, path, "baseline")
    machine = data["machines"].setdefault(run["machine"], {})
    for entry in tests:
        if entry["outcome"] == "passed" and entry["metrics"] and \
                entry["mode"] in compare.MODES:
            machine[compare.key(entry)] = {"metrics": entry["metrics"], "saved": created,
                                           "git_commit": run.get("git_commit")}
    return document.text(data, "baseline")


def save(path: str, report: Report) -> None:
    from . import files

    files.update(path, lambda text: merged(text, path, report["run"], report["created"],
                                           report["tests"]))
