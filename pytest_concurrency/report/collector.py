"""The session's reports: gathers every concurrent item's data from its test
reports (on the pytest-xdist controller too, where the data arrives inside
the reports), then writes the terminal summary, the report files and the
baseline.  Only the controller (or a plain session) writes anything."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Container, Generator, Iterable, Sequence
from types import FrameType

import pytest

from .. import cleanup, gil, spec
from . import baseline, document, entry
from .records import Baseline, Entry, Report
from .settings import ReportSettings

MAX_ADVICE_LINES = 20  # in the terminal; the report files carry all of it


@dataclasses.dataclass
class Facts:
    """What the session knows of an item beyond its report entry."""

    measured_in_rounds: bool = False  # its metrics are medians of paired rounds
    applied: bool = False  # --concurrency-apply made it concurrent: the table may count it
    timeout: float | None = None  # seconds: a run past it is slow, in the table


def new_entry(nodeid: str, data: entry.ItemData | None) -> Entry:
    """A fresh entry.  Its outcome is "interrupted" until a report says how the
    item ended: an item set up and never called (Ctrl-C, SIGTERM, pytest.exit
    during its run) proved nothing and must never read as passed."""
    return {
        "nodeid": nodeid, "test": entry.base_id(nodeid),
        "mode": data["mode"] if data else entry.mode_of(nodeid) or "?",
        "layout": data["layout"] if data else "?",
        "workers": data["workers"] if data else None,
        "iterations": data["iterations"] if data else None,
        "outcome": "interrupted", "serial": data["serial"] if data else None,
        "duration": 0.0, "metrics": {}, "budget": [], "baseline": None, "advice": None,
        "failures": [], "exploration": None,
    }


def facts_of(data: entry.ItemData | None) -> Facts:
    return Facts(applied=data["applied"], timeout=data["timeout"]) if data else Facts()


def outcome_of(report: pytest.TestReport, current: str) -> str:
    """The entry's outcome after ``report``, pytest's way of counting."""
    xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if report.passed:
            return "xpassed" if xfail else "passed"
        if report.skipped:
            return "xfailed" if xfail else "skipped"
        return "failed"
    if report.failed:
        return "error" if report.when in ("setup", "teardown") else "failed"
    if report.skipped:
        return "skipped"
    return current


def _died_running(report: pytest.TestReport) -> bool:
    """A report pytest-xdist made up for a concurrent item whose worker died."""
    return report.failed and entry.mode_of(report.nodeid) is not None \
        and "crashed while running" in report.longreprtext


def add(entries: dict[str, Entry], report: pytest.TestReport,
        facts: dict[str, Facts] | None = None) -> None:
    """Fold one test report into the entry of its item (and its ``facts``)."""
    data: entry.ItemData | None = getattr(report, entry.REPORT_ATTR, None)
    if data is None and not (report.nodeid in entries or _died_running(report)):
        return  # not a concurrent item
    item = entries.get(report.nodeid)
    if item is None or report.when == "setup":  # a rerun (pytest-rerunfailures) starts over
        item = entries[report.nodeid] = new_entry(report.nodeid, data)
        if facts is not None:
            facts[report.nodeid] = facts_of(data)
    if item["outcome"] not in ("failed", "error") or report.when == "call":
        item["outcome"] = outcome_of(report, item["outcome"])
        if item["outcome"] == "passed" and item["serial"]:
            item["outcome"] = "serial"  # it passed, but ran once: never a concurrent pass
    if data is None:
        if _died_running(report):
            text = report.longreprtext.strip()
            item["failures"].append(entry.failure("crash", text.splitlines()[-1], text))
        return
    if report.when == "call":
        item["duration"] = report.duration
        item["metrics"] = data["metrics"]
        item["budget"] = data["budget"]
        if facts is not None:
            facts.setdefault(report.nodeid, Facts()).measured_in_rounds = \
                data["measured_in_rounds"]
        if data["exploration"] is not None:
            item["exploration"] = data["exploration"]
    elif report.failed and data["exploration"] is not None and item["exploration"]:
        item["exploration"] = data["exploration"]  # the teardown failed after it
    item["failures"].extend(data["failures"])


def advise(tests: Sequence[Entry], free_threaded: bool = False,
           in_rounds: Container[str] = ()) -> None:
    """Give each test run in two or more of thread/process/hybrid the advisor's
    note, on each of its modes: from paired rounds where every mode was
    measured in them (budgeted tests), else from the single runs (what their
    CPU/wall ratios show, or "not enough evidence").  A budget the
    measurement broke does not make the measurement wrong."""
    from .. import advisor

    by_test: dict[str, dict[str, Entry]] = {}
    for e in tests:
        measured_only = all(f["kind"] == "budget" for f in e["failures"])
        if e["mode"] in advisor.COST_ORDER and measured_only \
                and e["outcome"] in ("passed", "failed") and "wall" in e["metrics"]:
            by_test.setdefault(e["test"], {})[e["mode"]] = e
    for modes in by_test.values():
        if len(modes) < 2 and not any(_budgeted(e) for e in modes.values()):
            continue
        measured = {}
        for mode, e in modes.items():
            value = {key: m["value"] for key, m in e["metrics"].items()}
            memory = value.get("memory")
            measured[mode] = advisor.ModeMeasurement(
                mode=mode, workers=e["workers"] or 0, wall=value["wall"], cpu=value.get("cpu", 0.0),
                peak_rss=int(memory) if memory is not None else None,
                speedup=value.get("speedup"), availability=value.get("availability"))
        paired = all(e["nodeid"] in in_rounds for e in modes.values())
        how = advisor.advise if paired else advisor.advise_from_runs
        text = how(measured, spec.usable_cpus(), free_threaded=free_threaded)
        for e in modes.values():
            e["advice"] = text


def _budgeted(e: Entry) -> bool:
    """A budget of the test's own (not compare-fail's regression limit)."""
    return any(b["key"] != "regression" for b in e["budget"])


def serial_lines(tests: Sequence[Entry], verbose: bool = False) -> list[str]:
    """How many items ran once, serially, and (with -v) why each did; an explore
    item that did is always named, with why: it explored nothing, so verified
    nothing."""
    serial = [e for e in tests if e.get("serial")]
    if not serial:
        return []
    count = f"{len(serial)} item{'s' if len(serial) != 1 else ''}"
    unexplored = [e for e in serial if e.get("mode") == "explore"]
    lines = [f"{count} ran serially, once, not concurrently: they use thread-unsafe "
             "techniques or async fixtures bound to one event loop"
             + ("" if verbose or len(unexplored) == len(serial) else " (-v lists why)")]
    lines += [f"  {e['nodeid']}: serial: {e['serial']}"
              + ("" if e.get("mode") != "explore" else "; not explored")
              for e in serial if verbose or e.get("mode") == "explore"]
    return lines


def advice_lines(tests: Sequence[Entry], limit: int = MAX_ADVICE_LINES) -> list[str]:
    """``<test>: <advice>`` once per test, at most ``limit`` lines and a last
    one saying how many more the report files hold."""
    advice = sorted({(e["test"], e["advice"]) for e in tests if e.get("advice")})
    lines = [f"{test}: {text}" for test, text in advice[:limit]]
    if len(advice) > limit:
        lines.append(f"... and {len(advice) - limit} more (all of them are in the JSON and "
                     "HTML reports: --concurrency-report)")
    return lines


def render(path: str, report: Report, countable: Container[str] = (),
           overran: Iterable[str] = ()) -> str:
    """The report file ``path`` (its format by suffix); the Markdown table, like
    the terminal's, counts the entries of ``countable`` that need no look."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".json":
        return document.text(report)
    if suffix == ".md":
        from . import markdown

        return markdown.render(report, countable, overran)
    from . import html

    return html.render(report)


_HERE = os.path.dirname(os.path.abspath(__file__))


def _recording(frame: FrameType | None) -> bool:
    """Whether ``frame`` (where a signal interrupted the session) is in this
    package's code: the reports' data may be half updated there."""
    while frame is not None:
        if os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _HERE:
            return True
        frame = frame.f_back
    return False


class Collector:
    """A plugin object registered by plugin.py for the whole session."""

    def __init__(self, config: pytest.Config, settings: ReportSettings,
                 stored: Baseline) -> None:
        self.config = config
        self.settings = settings
        self.stored = stored  # the baseline read at configure (empty without one)
        self.entries: dict[str, Entry] = {}
        self.facts: dict[str, Facts] = {}  # what the table needs beyond the entries
        self.report: Report | None = None
        self.written: list[str] = []  # what was written, for the terminal summary
        self.problems: list[str] = []  # what could not be, one line each
        self.applied: set[str] = set()  # node ids --concurrency-apply made concurrent
        self.overran: set[str] = set()  # node ids whose runs took longer than their timeout
        self.unfinished: dict[str, None] = {}  # items started and not finished, in order
        self.controller = config.getoption("dist", "no") != "no" \
            and not hasattr(config, "workerinput")  # pytest-xdist's: workers run the items
        self.session: pytest.Session | None = None
        cleanup.write_reports_with(self.forced_stop)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.unfinished[nodeid] = None

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.unfinished.pop(nodeid, None)
        if not self.controller:  # an interruption (if any) was caught: the session goes on
            cleanup.went_on()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if entry.REPORT_ATTR in report.__dict__ or report.outcome == "failed":
            add(self.entries, report, self.facts)

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self) -> None:
        cleanup.interrupted("KeyboardInterrupt")  # raised by a fixture, or pytest.exit()

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        """The reports are written after every other plugin's session finish (the
        last teardown of an interrupted session among them), and whether those
        fail or not (pytest's JUnit writer, say), before the terminal summary."""
        try:
            return (yield)
        finally:
            self.finish(session)

    def forced_stop(self, frame: FrameType | None) -> str:
        """A signal forced the stop (the handler calls this, then ends the
        session): write the reports now, unless it interrupted the recording of
        a result (not safely, then).  What became of them, in words."""
        if hasattr(self.config, "workerinput"):
            return "its controller writes the reports"
        if self.session is None or _recording(frame):
            return ("the reports were not written (the stop came while a result was being "
                    "recorded)")
        self.session.exitstatus = pytest.ExitCode.INTERRUPTED
        self.finish(self.session)
        for line in self.problems:
            cleanup.echo(f"{line}\n")
        files = [line.rpartition(" to ")[2] for line in self.written]
        if files:
            return f"the reports were written ({', '.join(files)})"
        return "no report file was asked for"

    def finish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput"):
            return  # a pytest-xdist worker: its controller reports
        with cleanup.writing_reports():  # a forcing signal now ends the session at once
            self._finish(session)

    def _finish(self, session: pytest.Session) -> None:
        interrupted = session.exitstatus == pytest.ExitCode.INTERRUPTED \
            or cleanup.stopping() is not None
        if interrupted:
            self._interrupted(session)
        if not self.entries and not self.settings.reports:
            return  # nothing concurrent ran, and no file to write
        if not self._attempt("build the concurrency report",
                             lambda: setattr(self, "report", self.build(interrupted))):
            self.report = None
        else:
            self.write()
        if self.problems and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR

    def _interrupted(self, session: pytest.Session) -> None:
        """The items the interruption caught (in their setup, call or teardown) are
        ``interrupted``, whatever an earlier phase said, unless one failed."""
        items = {item.nodeid: item for item in session.items} if self.unfinished else {}
        for nodeid in self.unfinished:
            item = items.get(nodeid)
            if item is not None:
                concurrent = spec.spec_of(item) is not None
                data = item.stash.get(entry.DATA, None)
            else:  # pytest-xdist's controller: the items are the workers'
                concurrent = nodeid in self.entries or entry.mode_of(nodeid) is not None
                data = None
            if not concurrent:
                continue
            if nodeid not in self.entries:
                self.facts[nodeid] = facts_of(data)
            found = self.entries.setdefault(nodeid, new_entry(nodeid, data))
            if found["outcome"] not in ("failed", "error"):
                found["outcome"] = "interrupted"
        self.unfinished.clear()

    def _attempt(self, what: str, action: Callable[[], object]) -> bool:
        """Run ``action``; a failure is one line at the end of the session, never a
        traceback that would cost the other reports (or JUnit's)."""
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - one writer's failure is one line
            reason = str(exc) if isinstance(exc, (OSError, document.ReportError)) \
                else f"{type(exc).__name__}: {exc}"
            self.problems.append(f"pytest-concurrency: could not {what}: {reason}")
            return False
        return True

    def write(self) -> None:
        """Every report file, the step summary and the baseline, each on its own."""
        report = self.report
        if report is None:  # not built: nothing to write
            return
        # what the terminal table counts instead of showing, the Markdown counts too
        countable = () if self.config.get_verbosity() > 0 else self.applied
        for path in self.settings.reports:
            from . import files

            def write_file(path: str = path) -> None:
                files.write(path, render(path, report, countable, self.overran))

            if self._attempt(f"write {path}", write_file):
                self.written.append(f"concurrency report written to {path}")
        if self.settings.step_summary and self.entries:
            from . import markdown

            self._attempt("append to $GITHUB_STEP_SUMMARY",
                          lambda: markdown.write_step_summary(
                              markdown.render(report, countable, self.overran)))
        if self.settings.save_baseline:
            target = self.settings.save_baseline
            if self._attempt(f"save the baseline {target}",
                             lambda: baseline.save(target, report)):
                self.written.append(f"concurrency baseline saved to {target}")

    def build(self, interrupted: bool = False) -> Report:
        workers = getattr(self.config.option, "numprocesses", None) or 0
        run = document.run_metadata(str(self.config.rootpath), int(workers), interrupted,
                                    gil.state(self.config))
        tests = sorted(self.entries.values(), key=lambda e: e["nodeid"])
        advise(tests, free_threaded=run["gil_disabled_build"] and not run["gil_enabled"],
               in_rounds={nodeid for nodeid, facts in self.facts.items()
                          if facts.measured_in_rounds})
        if self.settings.baseline:
            baseline.judge(tests, self.stored, run["machine"], self.settings.threshold)
        for e in tests:
            facts = self.facts.get(e["nodeid"], Facts())
            if facts.applied:
                self.applied.add(e["nodeid"])
            wall = e["metrics"].get("wall")
            if facts.timeout is not None and wall is not None and wall["value"] > facts.timeout:
                self.overran.add(e["nodeid"])  # went on past its timeout, making progress
        return document.new(run, tests)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        for line in self.problems:
            terminalreporter.write_line(line, red=True)
        if self.report is None:
            return
        from . import terminal

        verbose = self.config.get_verbosity() > 0
        # the compact table's other columns take about 50 characters
        width = max(terminal.MAX_TEST_WIDTH, self.config.get_terminal_writer().fullwidth - 50)
        lines = terminal.table(self.report["tests"], verbose=verbose, width=width,
                               countable=self.applied, overran=self.overran)
        if lines:
            terminalreporter.section("concurrency")
        for line in lines:
            terminalreporter.write_line(line)
        if self.report["run"].get("interrupted") and any(
                e["outcome"] == "interrupted" for e in self.report["tests"]):
            terminalreporter.write_line("the session was interrupted: items marked "
                                        "'interrupted' never finished and proved nothing")
        for line in serial_lines(self.report["tests"], verbose):
            terminalreporter.write_line(line)
        if self.report["run"].get("gil_reenabled_by"):
            terminalreporter.write_line(gil.describe(self.report["run"]["gil_reenabled_by"]),
                                        yellow=True)
        advice = advice_lines(self.report["tests"])
        if advice:
            terminalreporter.section("concurrency advice")
            for line in advice:
                terminalreporter.write_line(line)
        for line in self.written:
            terminalreporter.write_line(line)
