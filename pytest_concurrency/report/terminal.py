"""Plain-text rendering of a report document for a terminal.

One aligned row per entry (test × mode), what regressed or failed first; a
compact table by default, and a verbose one with every measurement and the
advisor's note (or an explore item's verdict) on an indented line under its
row.  Whatever was not measured or recorded prints as ``-``.  Explore items
show schedules explored per second as their throughput: the calls per second
of one traced schedule say nothing.

A whole suite run under ``--concurrency-apply`` would be thousands of rows:
the compact table shows the items it made concurrent only when they need a
look (:func:`needs_a_look`) and counts the rest in one line.

:func:`progress` shows a long exploration's progress while it runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Container, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .. import compat, stats
from ..budget import format_value
from . import document

if TYPE_CHECKING:
    import pytest

    from .records import BaselineVerdict, BudgetVerdict, Entry, Exploration, Report

MISSING = "-"
MAX_TEST_WIDTH = 60  # compact tables cut longer node ids from the left
INDENT = "    "  # continuation lines: advice, replay commands

COMPACT = ("test", "outcome", "wall", "speedup", "budget", "baseline")
VERBOSE = ("test", "outcome", "workers", "iterations", "wall", "cpu", "memory",
           "throughput", "speedup", "budget", "baseline")
_NUMERIC = frozenset(("workers", "iterations", *document.METRICS))
_VERDICT_ORDER = {"fail": 0, "inconclusive": 1, "unmeasured": 2}
# Slow: a run's wall time this many times the median item's, at least this share of
# all the items' wall time together (so that a suite of equals has none), and at least
# SLOW_MIN seconds (a busy machine makes a trivial test take a hundred times as long
# now and then: that is no news about the test)
SLOW_FACTOR = 10
SLOW_SHARE = 0.01
SLOW_MIN = 1.0
UNREMARKABLE = ("passed", "skipped", "xfailed")


def slow(tests: Sequence[Entry]) -> set[str]:
    """The node ids of the entries whose wall time stands out from the rest: at
    least SLOW_FACTOR times the median entry's, SLOW_SHARE of the total and
    SLOW_MIN seconds."""
    walls = {e["nodeid"]: wall["value"] for e in tests
             if (wall := (e.get("metrics") or {}).get("wall")) is not None
             and e.get("mode") != "explore"}
    if len(walls) < 2:
        return set()
    typical = stats.median(list(walls.values()))
    total = sum(walls.values())
    return {nodeid for nodeid, wall in walls.items()
            if wall >= max(SLOW_FACTOR * typical, SLOW_SHARE * total, SLOW_MIN)}


def needs_a_look(entry: Entry, slow_ids: Container[str] = ()) -> bool:
    """Whether an entry is worth a row of its own in a whole suite's table: it did
    not simply pass (failed, error, interrupted, serial, xpassed), reported a
    failure, has a budget, regressed against its baseline, explored, or is slow."""
    return bool(entry.get("outcome") not in UNREMARKABLE or entry.get("failures")
                or entry.get("budget") or entry.get("mode") == "explore"
                or document.regressed(entry)
                or entry["nodeid"] in slow_ids)


def rows_and_rest(tests: Sequence[Entry], countable: Container[str] = (),
                  overran: Iterable[str] = ()) -> tuple[list[Entry], list[Entry]]:
    """The entries a table of a whole suite gives a row (in their order), and those
    it counts in one line (:func:`rest_line`): the entries whose node id is in
    ``countable`` (those ``--concurrency-apply`` made concurrent) and that need
    no look (:func:`needs_a_look`; ``overran``, the node ids of runs that went on
    past their timeout, count as slow).  The terminal table and the Markdown
    report both follow it."""
    if not countable:
        return list(tests), []
    slow_ids = slow(tests) | set(overran)
    rest = [e for e in tests if e["nodeid"] in countable and not needs_a_look(e, slow_ids)]
    counted = {id(e) for e in rest}
    return [e for e in tests if id(e) not in counted], rest


def rest_line(rest: Sequence[Entry], after_rows: bool) -> str:
    """``... and 298 more items with nothing to look at: 290 passed, 8 skipped (-v
    lists them)``: the entries a whole suite's table counts instead of showing."""
    items = f"{len(rest):,} {'more ' if after_rows else ''}item{'s' if len(rest) != 1 else ''}"
    return (f"{'... and ' if after_rows else ''}{items} with nothing to look at: "
            f"{outcome_counts(rest)} (-v lists them)")


def outcome_counts(tests: Sequence[Entry]) -> str:
    """``5 passed, 5 failed, 1 skipped``: pytest's outcomes first, in its order."""
    counts: dict[str, int] = {}
    for entry in tests:
        outcome = entry.get("outcome") or "unknown"
        counts[outcome] = counts.get(outcome, 0) + 1
    order = [*document.OUTCOMES, *sorted(set(counts) - set(document.OUTCOMES))]
    return ", ".join(f"{counts[o]:,} {o}" for o in order if o in counts)


def table(tests: Sequence[Entry], verbose: bool = False,
          width: int = MAX_TEST_WIDTH, countable: Container[str] = (),
          overran: Iterable[str] = ()) -> list[str]:
    """The lines of a table of ``tests`` (document entries), regressions first;
    no lines at all when there are no entries.  A compact table cuts node ids
    to ``width`` characters and leaves out columns with nothing in them (no
    test had a budget, a baseline or a speedup).  It shows the entries whose
    node id is in ``countable`` (those ``--concurrency-apply`` made concurrent)
    only when they need a look (:func:`needs_a_look`; ``overran``, the node ids
    of runs that went on past their timeout, count as slow), and counts the
    others in a last line."""
    if not tests:
        return []
    rest: list[Entry] = []
    if not verbose:
        tests, rest = rows_and_rest(tests, countable, overran)
        if not tests:
            return [rest_line(rest, after_rows=False)]
    lines = _rows(tests, verbose, width)
    if rest:
        lines.append(rest_line(rest, after_rows=True))
    return lines


def _rows(tests: Sequence[Entry], verbose: bool, width: int) -> list[str]:
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
        exploration = entry.get("exploration") if verbose else None
        if exploration and exploration.get("verdict"):
            lines.append(f"{INDENT}explore: {verdict_line(exploration)}")
    return lines


def verdict_line(exploration: Exploration) -> str:
    """The exploration's verdict line, saying too when the search was bounded."""
    text = " ".join(str(exploration.get("verdict") or MISSING).split())
    interleaving = exploration.get("interleaving")
    if isinstance(interleaving, dict):
        text += f"; schedule {interleaving.get('schedule')} failed"
    elif not exploration.get("complete") and "bounded" not in text and \
            "complete" not in text:
        text += "; bounded: not every interleaving was explored"
    return text


def exploration_text(exploration: Exploration | None) -> str | None:
    """An exploration in a few words, for a table cell: ``bounded: 200 of 200
    schedules, 1 distinct outcome (pct, seed 0)``; None for other items."""
    if not exploration:
        return None
    run, allowed = exploration.get("schedules"), exploration.get("budget")
    interleaving = exploration.get("interleaving")
    if interleaving:
        head = f"schedule {interleaving.get('schedule')} failed, {run} of {allowed} run"
    elif exploration.get("complete"):
        count = exploration.get("distinct") or run
        count = count if isinstance(count, int) else 0
        head = f"verified: {document.all_interleavings(count, '')} explored"
    else:
        head = f"bounded: {run} of {allowed} schedules"
    count = exploration.get("outcomes")
    if isinstance(count, int) and not interleaving:
        head += f", {count} distinct outcome{'' if count == 1 else 's'}"
    return f"{head} ({exploration.get('strategy')}, seed {exploration.get('seed')})"


def schedules_rate(entry: Entry, missing: str = MISSING) -> str | None:
    """An explore item's throughput, schedules explored per second (``160 sched/s``),
    ``missing`` if unknown; None for other items, whose throughput is body calls/s."""
    exploration = entry.get("exploration")
    if not isinstance(exploration, dict):
        return None
    rate = exploration.get("schedules_per_second")
    if not isinstance(rate, (int, float)) or isinstance(rate, bool):
        return missing
    return format_value("throughput", rate).removesuffix("/s") + " sched/s"


def failures(tests: Sequence[Entry]) -> list[str]:
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


def run_line(data: Report) -> str:
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


def totals(tests: Sequence[Entry]) -> str:
    """``12 entries: 5 passed, 5 failed, 1 skipped; 1 regressed``."""
    text = f"{len(tests)} {'entry' if len(tests) == 1 else 'entries'}"
    outcomes = outcome_counts(tests)
    if outcomes:
        text += f": {outcomes}"
    regressed = sum(map(document.regressed, tests))
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
    rounds to no change, ``-`` when unknown; a change of a million percent or
    more as the ratio itself (``x2.5e+07``)."""
    if ratio is None:
        return MISSING
    if not abs(ratio - 1) < 10_000:  # NaN and infinities too
        return f"x{ratio:.3g}"
    percent = round((ratio - 1) * 100)
    return "=" if percent == 0 else f"{percent:+d}%"


def budget_text(checks: list[BudgetVerdict] | None) -> str:
    """``pass`` when every limit passed, else what did not: ``FAIL memory``,
    ``inconclusive wall``; ``-`` without a budget."""
    if not checks:
        return MISSING
    unmet = sorted((c for c in checks if c.get("verdict") != "pass"),
                   key=lambda c: _VERDICT_ORDER.get(c.get("verdict", ""), 3))
    notes = [f"{'FAIL' if c.get('verdict') == 'fail' else c.get('verdict') or MISSING} "
             f"{c.get('key') or MISSING}" for c in unmet]
    return ", ".join(notes) or "pass"


def baseline_text(baseline: BaselineVerdict | None) -> str:
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


def metric_text(entry: Entry, key: str) -> str:
    measured = (entry.get("metrics") or {}).get(key)
    if not isinstance(measured, dict) or measured.get("value") is None:
        return MISSING
    return format_value(key, measured["value"])


def _cell(entry: Entry, column: str, verbose: bool, width: int) -> str:
    if column == "test":
        return entry["nodeid"] if verbose else _shorten(entry["nodeid"], width)
    if column == "workers":
        return _text(entry.get("layout") or entry.get("workers"))
    if column == "budget":
        return budget_text(entry.get("budget"))
    if column == "baseline":
        return baseline_text(entry.get("baseline"))
    if column == "throughput" and (rate := schedules_rate(entry)) is not None:
        return rate
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


# -- an exploration's progress, while it runs ----------------------------------------------

PROGRESS_AFTER = 1.0  # seconds: a shorter exploration shows nothing
PROGRESS_EVERY = 0.5  # seconds between updates
_PROGRESS_PLUGIN = "concurrency-progress"


class Progress:
    """``[explore 120/200 schedules, 2 distinct outcomes]`` after pytest's own text
    on the current line (``test_x.py ..`` or the ``-v`` node id), rewritten in
    place at most every PROGRESS_EVERY seconds from PROGRESS_AFTER seconds on,
    and wiped before pytest writes the item's outcome.

    It moves the cursor with backspaces only, never to the start of the line or
    to another one, and writes around pytest's terminal writer (``write_raw``),
    so pytest's line (and its notion of how long the line is) comes out exactly
    as it would have without it.  ``write`` puts raw text on the terminal;
    ``room`` is how many columns the current line has left."""

    def __init__(self, write: Callable[[str], None], room: Callable[[], int],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._write = write
        self._room = room
        self._clock = clock
        self._due = clock() + PROGRESS_AFTER
        self._shown = 0  # columns of progress text on the line now
        self._space: int | None = None  # the room left, once something was shown

    def __call__(self, done: int, allowed: int, outcomes: int) -> None:
        """After each schedule (from the explore loop, in the main thread)."""
        now = self._clock()
        if now < self._due or threading.current_thread() is not threading.main_thread():
            return
        self._due = now + PROGRESS_EVERY
        if self._space is None:
            self._space = self._room()
        plural = "" if outcomes == 1 else "s"
        text = f" [explore {done}/{allowed} schedules, {outcomes} distinct outcome{plural}]"
        if len(text) > self._space:
            text = f" [{done}/{allowed}, {outcomes} outcome{plural}]"
        if len(text) > self._space:
            return  # a line that wrapped could not be rewritten in place
        pad = max(self._shown - len(text), 0)
        self._write("\b" * self._shown + text + " " * pad + "\b" * pad)
        self._shown = len(text)

    def clear(self) -> None:
        """Wipe the progress text, leaving the cursor where pytest left it."""
        if self._shown:
            shown, self._shown = self._shown, 0
            self._write("\b" * shown + " " * shown + "\b" * shown)


def progress(config: pytest.Config) -> Progress | None:
    """A progress display for an exploration about to run, or None where it
    would not be seen or would garble the output: output that is not a
    terminal, a pytest-xdist worker, ``-s`` (the body writes to the terminal
    too) and live logging (which writes during the test)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if (reporter is None or capture is None or hasattr(config, "workerinput")
            or not _isatty(reporter) or config.getoption("capture", "fd") == "no"
            or config.getoption("log_cli_level", None) is not None or _ini(config, "log_cli")):
        return None
    writer = config.get_terminal_writer()

    def write(text: str) -> None:
        with capture.global_and_fixture_disabled():
            compat.write_raw(writer, text)

    def room() -> int:
        return writer.fullwidth - writer.width_of_current_line - 1

    shown = Progress(write, room)
    plugin = config.pluginmanager.get_plugin(_PROGRESS_PLUGIN)
    if plugin is None:
        plugin = _progress_plugin()
        config.pluginmanager.register(plugin, _PROGRESS_PLUGIN)
    plugin.show(shown)
    return shown


def _progress_plugin() -> Any:
    """The plugin that wipes the progress of an item's last exploration before
    pytest reports on the item (or on Ctrl-C); made here, so that the reports'
    command line never imports pytest."""
    import pytest

    class ProgressPlugin:
        def __init__(self) -> None:
            self.active: Progress | None = None

        def show(self, progress: Progress) -> None:
            self.clear()
            self.active = progress

        def clear(self) -> None:
            if self.active is not None:
                self.active.clear()
                self.active = None

        @pytest.hookimpl(tryfirst=True)  # before the terminal reporter writes
        def pytest_runtest_logreport(self) -> None:
            self.clear()

        @pytest.hookimpl(tryfirst=True)
        def pytest_keyboard_interrupt(self) -> None:
            self.clear()

    return ProgressPlugin()


def _isatty(reporter: Any) -> bool:
    """Whether pytest writes to a terminal (``isatty`` is a bool that can be called
    since pytest 8, and is to become a method)."""
    isatty = reporter.isatty
    return bool(isatty() if callable(isatty) else isatty)


def _ini(config: pytest.Config, name: str) -> bool:
    try:
        return bool(config.getini(name))
    except ValueError:  # the plugin that owns it is not loaded
        return False
