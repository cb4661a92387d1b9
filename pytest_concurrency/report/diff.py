"""Comparing two report documents entry by entry: the ``compare`` command.

Entries are matched by ``compare.key`` (test, mode, layout) and one metric of
each pair is judged with ``compare.judge``.  Entries only in the old report
are "removed", only in the new one "new"; a pair whose new entry did not
measure the metric is "unmeasured".  explore entries are left out: a traced
run's time is no benchmark.
"""

from __future__ import annotations

from typing import TypedDict

from ..budget import format_value
from . import compare, terminal
from .records import Entry, Metric, Report

STATUSES = ("regressed", "improved", "unchanged", "unmeasured", "new", "removed")


class Row(TypedDict):
    """One pair of entries compared (what ``compare`` prints; never written)."""

    key: str  # compare.key: test, mode and layout
    test: str
    mode: str
    layout: str
    metric: str
    old: float | None  # the metric's value in the old report; None if absent
    new: float | None  # ... in the new one
    ratio: float | None  # new / old
    status: str  # one of STATUSES


def diff(old: Report, new: Report, threshold: float, metric: str = "wall") -> list[Row]:
    """One row per entry of either document, regressions first."""
    old_entries = {compare.key(e): e for e in old["tests"] if e["mode"] in compare.MODES}
    new_entries = {compare.key(e): e for e in new["tests"] if e["mode"] in compare.MODES}
    rows = [row(old_entries.get(k), entry, threshold, metric) for k, entry in new_entries.items()]
    rows += [row(entry, None, threshold, metric)
             for k, entry in old_entries.items() if k not in new_entries]
    return sorted(rows, key=lambda r: (STATUSES.index(r["status"]), r["key"]))


def row(old: Entry | None, new: Entry | None, threshold: float,
        metric: str = "wall") -> Row:
    """The comparison of one pair of entries (either may be None, not both)."""
    entry = new if new is not None else old
    assert entry is not None, "row() needs an old or a new entry"
    old_metric, new_metric = _metric(old, metric), _metric(new, metric)
    result: Row = {"key": compare.key(entry), "test": entry["test"], "mode": entry["mode"],
                   "layout": entry["layout"], "metric": metric,
                   "old": old_metric["value"] if old_metric else None,
                   "new": new_metric["value"] if new_metric else None,
                   "ratio": None, "status": ""}
    if new is None:
        result["status"] = "removed"
    elif old is not None and new_metric is None:
        result["status"] = "unmeasured"
    else:
        verdict = compare.judge(old_metric, new_metric, threshold, metric)
        result["status"], result["ratio"] = verdict["status"], verdict["ratio"]
    return result


def table(rows: list[Row]) -> list[str]:
    """The aligned lines of ``rows`` (from ``diff``): test, mode, layout, old,
    new, change, status."""
    if not rows:
        return []
    metric = rows[0]["metric"]
    header = ["test", "mode", "layout", f"old {metric}", f"new {metric}", "change", "status"]
    cells = [[r["test"], r["mode"], str(r["layout"]), _value(metric, r["old"]),
              _value(metric, r["new"]), terminal.change(r["ratio"]), r["status"]]
             for r in rows]
    return terminal.aligned([header, *cells], right={3, 4, 5})


def summary(rows: list[Row], rule: compare.Rule) -> str:
    """``wall, median:10%: 1 regressed, 3 unchanged, 1 new``."""
    metric = rows[0]["metric"] if rows else "wall"
    counts = [f"{sum(r['status'] == s for r in rows)} {s}" for s in STATUSES
              if any(r["status"] == s for r in rows)]
    return f"{metric}, {rule}: {', '.join(counts) or 'no entries'}"


def regressed(rows: list[Row]) -> bool:
    return any(r["status"] == "regressed" for r in rows)


def _metric(entry: Entry | None, metric: str) -> Metric | None:
    return entry["metrics"].get(metric) if entry is not None else None


def _value(metric: str, value: float | None) -> str:
    return terminal.MISSING if value is None else format_value(metric, value)
