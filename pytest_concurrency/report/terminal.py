"""Plain-text rendering of a report document for a terminal.

One aligned row per entry (test × mode), what regressed or failed first; a
compact table by default, and a verbose one with every measurement and the
advisor's note on an indented line under its row.  Whatever was not
measured or recorded prints as ``-``.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any

from ..budget import format_value
from . import document

MISSING = "-"
MAX_TEST_WIDTH = 60  # compact tables cut longer node ids from the left
INDENT = "    "  # continuation lines: advice, replay commands

COMPACT = ("test", "outcome", "wall", "speedup", "budget", "baseline")
VERBOSE = ("test", "outcome", "workers", "iterations", "wall", "cpu", "memory",
           "throughput", "speedup", "budget", "baseline")
_NUMERIC = frozenset(("workers", "iterations", *document.METRICS))
_VERDICT_ORDER = {"fail": 0, "inconclusive": 1, "unmeasured": 2}


def table(tests: list[dict[str, Any]], verbose: bool = False,
          width: int = MAX_TEST_WIDTH) -> list[str]:
    """The lines of a table of ``tests`` (document entries), regressions first;
    no lines at all when there are no entries.  A compact table cuts node ids
    to ``width`` characters and leaves out columns with nothing in them (no
    test had a budget, a baseline or a speedup)."""
    if not tests:
        return []
    columns: tuple[str, ...] = VERBOSE if verbose else COMPACT
    entries = document.regressions_first(tests)
    rows = [[_cell(entry, column, verbose, width) for column in columns] for entry in entries]
    if not verbose:
        keep = [i for i, column in enumerate(columns)
                if column in ("test", "outcome", "wall") or any(r[i] != MISSING for r in rows)]
        columns = tuple(columns[i] for i in keep)
        rows = [[r[i] for i in keep] for r in rows]
    right = {i for i, column in enumerate(columns) if column in _NUMERIC}
    aligned_lines = aligned([columns, *rows], right)
    lines = [aligned_lines[0]]
    for entry, line in zip(entries, aligned_lines[1:], strict=True):
        lines.append(line)
        if verbose and entry.get("advice"):
            lines.append(f"{INDENT}advice: {' '.join(str(entry['advice']).split())}")
    return lines


def failures(tests: list[dict[str, Any]]) -> list[str]:
    """``<nodeid>: <kind>: <summary>`` per failure, each followed by an indented
    ``replay: <command>`` line when the failure can be replayed."""
    lines = []
    for entry in document.regressions_first(tests):
        for failure in entry.get("failures") or ():
            kind = failure.get("kind") or MISSING
            summary = _one_line(failure.get("summary") or MISSING)
            lines.append(f"{entry['nodeid']}: {kind}: {summary}")
            if failure.get("replay_command"):
                lines.append(f"{INDENT}replay: {failure['replay_command']}")
    return lines


def run_line(data: dict[str, Any]) -> str:
    """Where a document's run happened: Python, machine key, git commit, when."""
    run = data.get("run") or {}
    python = " ".join(str(run[k]) for k in ("implementation", "python") if run.get(k))
    commit = run.get("git_commit")
    parts = [python or f"python {MISSING}", f"machine {run.get('machine') or MISSING}",
             f"commit {commit[:12] if commit else MISSING}",
             f"created {data.get('created') or MISSING}"]
    if run.get("merged_from"):
        parts.append(f"merged from {len(run['merged_from'])} reports")
    return ", ".join(parts)


def totals(tests: list[dict[str, Any]]) -> str:
    """``12 entries: 5 passed, 5 failed, 1 skipped; 1 regressed``."""
    counts: dict[str, int] = {}
    for entry in tests:
        outcome = entry.get("outcome") or "unknown"
        counts[outcome] = counts.get(outcome, 0) + 1
    order = [*document.OUTCOMES, *sorted(set(counts) - set(document.OUTCOMES))]
    text = f"{len(tests)} {'entry' if len(tests) == 1 else 'entries'}"
    outcomes = ", ".join(f"{counts[o]} {o}" for o in order if o in counts)
    if outcomes:
        text += f": {outcomes}"
    regressed = sum((e.get("baseline") or {}).get("status") == "regressed" for e in tests)
    if regressed:
        text += f"; {regressed} regressed"
    return text


def aligned(rows: Sequence[Sequence[str]], right: Container[int] = ()) -> list[str]:
    """``rows`` of cells as lines with aligned columns two spaces apart; columns
    whose index is in ``right`` are right-aligned (numbers)."""
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    return ["  ".join(cell.rjust(width) if i in right else cell.ljust(width)
                      for i, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in rows]


def change(ratio: float | None) -> str:
    """A ratio new/old as a signed percentage: ``+31%``, ``-19%``; ``=`` when it
    rounds to no change, ``-`` when unknown."""
    if ratio is None:
        return MISSING
    percent = round((ratio - 1) * 100)
    return "=" if percent == 0 else f"{percent:+d}%"


def budget_text(checks: list[dict[str, Any]] | None) -> str:
    """``pass`` when every limit passed, else what did not: ``FAIL memory``,
    ``inconclusive wall``; ``-`` without a budget."""
    if not checks:
        return MISSING
    unmet = sorted((c for c in checks if c.get("verdict") != "pass"),
                   key=lambda c: _VERDICT_ORDER.get(c.get("verdict", ""), 3))
    notes = [f"{'FAIL' if c.get('verdict') == 'fail' else c.get('verdict') or MISSING} "
             f"{c.get('key') or MISSING}" for c in unmet]
    return ", ".join(notes) or "pass"


def baseline_text(baseline: dict[str, Any] | None) -> str:
    """``+31% regressed``, ``-19% improved``, ``+2%`` or ``=`` (unchanged), ``new``;
    ``-`` without a baseline.  A metric other than wall is named."""
    if not baseline:
        return MISSING
    status = baseline.get("status") or MISSING
    if status == "new" or baseline.get("ratio") is None:
        return status
    words = [change(baseline["ratio"])]
    if baseline.get("metric", "wall") != "wall":
        words.append(baseline["metric"])
    if status != "unchanged":
        words.append(status)
    return " ".join(words)


def metric_text(entry: dict[str, Any], key: str) -> str:
    measured = (entry.get("metrics") or {}).get(key)
    if not isinstance(measured, dict) or measured.get("value") is None:
        return MISSING
    return format_value(key, measured["value"])


def _cell(entry: dict[str, Any], column: str, verbose: bool, width: int) -> str:
    if column == "test":
        return entry["nodeid"] if verbose else _shorten(entry["nodeid"], width)
    if column == "workers":
        return _text(entry.get("layout") or entry.get("workers"))
    if column == "budget":
        return budget_text(entry.get("budget"))
    if column == "baseline":
        return baseline_text(entry.get("baseline"))
    if column in document.METRICS:
        return metric_text(entry, column)
    return _text(entry.get(column))


def _shorten(text: str, width: int) -> str:
    """``text`` cut from the left to ``width`` characters, marked with ``…``:
    the end of a node id (file, test, parameters) is what tells tests apart."""
    return text if len(text) <= width else "\u2026" + text[len(text) - width + 1:]


def _text(value: object) -> str:
    return MISSING if value is None or value == "" else str(value)


def _one_line(text: str) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else MISSING
