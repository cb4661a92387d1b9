"""Comparing two report documents entry by entry: the ``compare`` command.

Entries are matched by ``compare.key`` (test, mode, layout) and one metric of
each pair is judged with ``compare.judge``.  Entries only in the old report
are "removed", only in the new one "new"; a pair whose new entry did not
measure the metric is "unmeasured".  explore entries are left out: a traced
run's time is no benchmark.
"""

from __future__ import annotations

from typing import Any

from ..budget import format_value
from . import compare, terminal

STATUSES = ("regressed", "improved", "unchanged", "unmeasured", "new", "removed")


def diff(old: dict[str, Any], new: dict[str, Any], threshold: float,
         metric: str = "wall") -> list[dict[str, Any]]:
    """One row per entry of either document, regressions first.  A row is
    ``{"key", "test", "mode", "layout", "metric", "old", "new", "ratio",
    "status"}`` with ``old``/``new`` the metric's values (None if absent)."""
    old_entries = {compare.key(e): e for e in old["tests"] if e["mode"] in compare.MODES}
    new_entries = {compare.key(e): e for e in new["tests"] if e["mode"] in compare.MODES}
    rows = [row(old_entries.get(k), entry, threshold, metric) for k, entry in new_entries.items()]
    rows += [row(entry, None, threshold, metric)
             for k, entry in old_entries.items() if k not in new_entries]
    return sorted(rows, key=lambda r: (STATUSES.index(r["status"]), r["key"]))


def row(old: dict[str, Any] | None, new: dict[str, Any] | None, threshold: float,
        metric: str = "wall") -> dict[str, Any]:
    """The comparison of one pair of entries (either may be None, not both)."""
    entry = new if new is not None else old
    assert entry is not None, "row() needs an old or a new entry"
    old_metric, new_metric = _metric(old, metric), _metric(new, metric)
    result = {"key": compare.key(entry), "test": entry["test"], "mode": entry["mode"],
              "layout": entry["layout"], "metric": metric,
              "old": old_metric and old_metric["value"], "new": new_metric and new_metric["value"],
              "ratio": None}
    if new is None:
        result["status"] = "removed"
    elif old is not None and new_metric is None:
        result["status"] = "unmeasured"
    else:
        verdict = compare.judge(old_metric, new_metric, threshold, metric)
        result.update(status=verdict["status"], ratio=verdict["ratio"])
    return result


def table(rows: list[dict[str, Any]]) -> list[str]:
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


def summary(rows: list[dict[str, Any]], rule: compare.Rule) -> str:
    """``wall, median:10%: 1 regressed, 3 unchanged, 1 new``."""
    metric = rows[0]["metric"] if rows else "wall"
    counts = [f"{sum(r['status'] == s for r in rows)} {s}" for s in STATUSES
              if any(r["status"] == s for r in rows)]
    return f"{metric}, {rule}: {', '.join(counts) or 'no entries'}"


def regressed(rows: list[dict[str, Any]]) -> bool:
    return any(r["status"] == "regressed" for r in rows)


def _metric(entry: dict[str, Any] | None, metric: str) -> dict[str, Any] | None:
    if entry is None:
        return None
    measured = (entry.get("metrics") or {}).get(metric)
    if not isinstance(measured, dict):
        return None
    numbers = [measured.get(field) for field in ("value", "low", "high")]
    return measured if all(isinstance(n, int | float) for n in numbers) else None


def _value(metric: str, value: float | None) -> str:
    return terminal.MISSING if value is None else format_value(metric, value)
