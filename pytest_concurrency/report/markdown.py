"""The report as GitHub-flavoured Markdown, for a CI job summary.

``render`` turns a schema-1 document (see ``document.py``) into a heading, one
summary line, a "Needs attention" section (regressions first, then failures
and budget verdicts that are not a clear pass, each failure with its replay
command) and a collapsed table of every entry, where an explore item's Advice
is what its exploration found and its Throughput schedules explored per
second.  Of a whole suite run under ``--concurrency-apply`` the table, like
the terminal's, shows what needs a look and counts the rest in one line
(``terminal.rows_and_rest``; the JSON report keeps every entry).
``write_step_summary`` appends it to ``$GITHUB_STEP_SUMMARY`` when GitHub
Actions provides one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from ..budget import format_value
from .document import BAD_OUTCOMES, OUTCOMES, regressed, regressions_first, verdicts
from .terminal import exploration_text, rest_line, rows_and_rest, schedules_rate

if TYPE_CHECKING:
    from .records import Entry, Failure, Report

MISSING = "\u2013"
# Markdown punctuation that formats or splits a table cell, and HTML-significant characters.
_ESCAPES = str.maketrans({"\\": "\\\\", "`": "\\`", "*": "\\*", "_": "\\_", "|": "\\|",
                          "<": "&lt;", ">": "&gt;", "&": "&amp;"})
_ATTENTION = ("Test", "Mode", "Outcome", "Wall", "vs baseline", "Budget")
_ALL = ("Test", "Mode", "Layout", "Outcome", "Wall", "CPU", "Memory", "Throughput",
        "Speedup", "Budget", "Baseline", "Advice")


INTERRUPTED = ("**The session was interrupted** (Ctrl-C, SIGTERM or pytest.exit): entries "
               "marked *interrupted* never finished and proved nothing.")


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _text(value: object) -> str:
    """Plain text that renders as itself, in a table cell or anywhere else."""
    if value is None or value == "":
        return MISSING
    return _one_line(value).translate(_ESCAPES)


def _backticks(text: str) -> int:
    """The longest run of backticks in ``text``, which a code fence must outnumber."""
    return max(map(len, re.findall("`+", text)), default=0)


def _code(value: object, cell: bool = True) -> str:
    """A code span around ``value``, with '|' escaped if it goes in a table cell."""
    text = _one_line(value)
    if cell:
        text = text.replace("|", "\\|")
    fence = "`" * (_backticks(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _needs_attention(entry: Entry) -> bool:
    return (regressed(entry) or entry.get("outcome") in BAD_OUTCOMES
            or verdicts(entry, "fail") > 0 or verdicts(entry, "inconclusive") > 0)


def _summary(document: Report) -> str:
    tests = document["tests"]
    outcomes = [entry.get("outcome") for entry in tests]
    counts = [f"{outcomes.count(outcome)} {outcome}" for outcome in OUTCOMES
              if outcome in ("passed", "failed") or outcome in outcomes]
    judged = [f"{sum(map(regressed, tests))} regressed vs baseline",
              _plural(sum(verdicts(e, "fail") for e in tests), "budget failure")]
    inconclusive = sum(verdicts(e, "inconclusive") for e in tests)
    if inconclusive:
        judged.append(_plural(inconclusive, "inconclusive budget"))
    entries = "entry" if len(tests) == 1 else "entries"
    line = (f"**{len(tests)} test \u00d7 mode {entries}:** {', '.join(counts)}; "
            f"{', '.join(judged)}")
    run = document.get("run") or {}
    if run.get("python"):
        line += f" \u00b7 Python {_text(run['python'])} ({_text(run.get('implementation'))})"
    if run.get("machine"):
        line += f" \u00b7 {_code(run['machine'], cell=False)}"
    commit = run.get("git_commit")
    if commit:
        line += f" \u00b7 commit {_code(commit[:7], cell=False)}"
    if run.get("gil_disabled_build"):
        line += " \u00b7 free-threaded, GIL " + (
            "re-enabled at run time" if run.get("gil_reenabled_by") else
            "disabled" if not run.get("gil_enabled", True) else "enabled")
    return line


def _metric(entry: Entry, key: str) -> str:
    if key == "throughput" and (rate := schedules_rate(entry, MISSING)) is not None:
        return rate
    measured = (entry.get("metrics") or {}).get(key)
    if not measured or measured.get("value") is None:
        return MISSING
    return format_value(key, measured["value"])


def _baseline(entry: Entry) -> str:
    baseline = entry.get("baseline")
    if not baseline:
        return MISSING
    ratio = baseline.get("ratio")
    if ratio is None:
        return _text(baseline.get("status"))
    change = f"{(ratio - 1) * 100:+.0f}%"
    return f"{_text(baseline.get('status'))}: {_text(baseline.get('metric'))} {change}"


def _budget(entry: Entry) -> str:
    verdicts = [f"{_code(b.get('limit'))} {_text(b.get('verdict'))}"
                for b in entry.get("budget") or ()]
    return ", ".join(verdicts) or MISSING


def _table(header: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _attention_row(entry: Entry) -> list[str]:
    return [_code(entry["nodeid"]), _text(entry.get("mode")), _text(entry.get("outcome")),
            _metric(entry, "wall"), _baseline(entry), _budget(entry)]


def _full_row(entry: Entry) -> list[str]:
    return [_code(entry["nodeid"]), _text(entry.get("mode")), _text(entry.get("layout")),
            _text(entry.get("outcome")), _metric(entry, "wall"), _metric(entry, "cpu"),
            _metric(entry, "memory"), _metric(entry, "throughput"),
            _metric(entry, "speedup"), _budget(entry), _baseline(entry), _advice(entry)]


def _advice(entry: Entry) -> str:
    """The advisor's note; for an explore item, what its exploration found."""
    explored = exploration_text(entry.get("exploration"))
    if entry.get("advice") or explored is None:
        return _text(entry.get("advice"))
    return f"explore: {_text(explored)}"


def _failure(entry: Entry, failure: Failure) -> list[str]:
    lines = [f"- {_code(entry['nodeid'], cell=False)} **{_text(failure.get('kind'))}**: "
             f"{_text(failure.get('summary'))}"]
    command = failure.get("replay_command")
    if command:
        fence = "`" * max(3, _backticks(command) + 1)
        lines += [f"  {fence}sh", f"  {_one_line(command)}", f"  {fence}"]
    return lines


def _attention(tests: Sequence[Entry]) -> list[str]:
    entries = [e for e in regressions_first(tests) if _needs_attention(e)]
    if not entries:
        return ["Nothing regressed or failed."]
    lines = ["### Needs attention", ""]
    lines += _table(_ATTENTION, [_attention_row(e) for e in entries])
    failures = [line for e in entries for f in e.get("failures") or () for line in _failure(e, f)]
    return lines + ([""] + failures if failures else [])


def render(document: Report, countable: Container[str] = (),
           overran: Iterable[str] = ()) -> str:
    """The Markdown job summary of a report document; the entries whose node id
    is in ``countable`` get a row in the table only when they need a look (see
    ``terminal.rows_and_rest``, and ``overran`` there)."""
    tests = document.get("tests") or []
    if not tests:
        return "## pytest-concurrency\n\nNo concurrency tests ran.\n"
    lines = ["## pytest-concurrency", "", _summary(document), ""]
    if (document.get("run") or {}).get("interrupted"):
        lines += [INTERRUPTED, ""]
    lines += _attention(tests)
    serial = [e for e in tests if e.get("serial")]
    if serial:
        lines += ["", "### Ran serially", "",
                  "Once each, not concurrently, so they proved nothing about concurrency:", ""]
        lines += [f"- {_code(e['nodeid'], cell=False)}: {_text(e['serial'])}" for e in serial]
    rows, rest = rows_and_rest(tests, countable, overran)
    if rows:
        title = "The 1 entry" if len(tests) == 1 else f"All {len(tests)} entries"
        if rest:
            title = f"Entries that need a look ({len(rows):,} of {len(tests):,})"
        lines += ["", f"<details><summary>{title}</summary>", ""]
        lines += _table(_ALL, [_full_row(e) for e in rows])
        lines += ["", "</details>"]
    if rest:
        lines += ["", _text(rest_line(rest, after_rows=bool(rows)))]
    return "\n".join(lines) + "\n"


def write_step_summary(text: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Append ``text`` to ``$GITHUB_STEP_SUMMARY`` if it is set; whether it was."""
    path = environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as f:
        if f.tell():
            f.write("\n")
        f.write(text if text.endswith("\n") else text + "\n")
    return True
