"""The session's reports: gathers every concurrent item's data from its test
reports (on the pytest-xdist controller too, where the data arrives inside
the reports), then writes the terminal summary, the report files and the
baseline.  Only the controller (or a plain session) writes anything."""

from __future__ import annotations

import os

import pytest

from .. import spec
from . import baseline, document, entry


def new_entry(nodeid: str, data: dict | None) -> dict:
    data = data or {}
    return {
        "nodeid": nodeid, "test": entry.base_id(nodeid),
        "mode": data.get("mode") or entry.mode_of(nodeid),
        "layout": data.get("layout", "?"), "workers": data.get("workers"),
        "iterations": data.get("iterations"), "outcome": "passed", "duration": 0.0,
        "metrics": {}, "budget": [], "baseline": None, "advice": None, "failures": [],
    }


def outcome_of(report, current: str) -> str:
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


def _died_running(report) -> bool:
    """A report pytest-xdist made up for a concurrent item whose worker died."""
    return report.failed and entry.mode_of(report.nodeid) is not None \
        and "crashed while running" in report.longreprtext


def add(entries: dict, report) -> None:
    """Fold one test report into the entry of its item."""
    data = getattr(report, entry.REPORT_ATTR, None)
    if data is None and not (report.nodeid in entries or _died_running(report)):
        return  # not a concurrent item
    item = entries.get(report.nodeid)
    if item is None or report.when == "setup":  # a rerun (pytest-rerunfailures) starts over
        item = entries[report.nodeid] = new_entry(report.nodeid, data)
    if item["outcome"] not in ("failed", "error") or report.when == "call":
        item["outcome"] = outcome_of(report, item["outcome"])
    if data is None:
        if _died_running(report):
            text = report.longreprtext.strip()
            item["failures"].append(entry.failure("crash", text.splitlines()[-1], text))
        return
    if report.when == "call":
        item["duration"] = report.duration
        item["metrics"] = data["metrics"]
        item["budget"] = data["budget"]
        item["measured_in_rounds"] = data["measured_in_rounds"]
    item["failures"].extend(data["failures"])


def advise(tests: list[dict]) -> None:
    """Give each budgeted test the advisor's note, on each of its modes.  Only
    budgeted tests: their rounds are what the advice is drawn from, and a
    budget the measurement broke does not make the measurement wrong."""
    from .. import advisor

    by_test: dict[str, dict[str, dict]] = {}
    for e in tests:
        measured_only = all(f["kind"] == "budget" for f in e["failures"])
        budgeted = any(b["key"] != "regression" for b in e["budget"])  # not compare-fail's
        if e.get("measured_in_rounds") and budgeted and measured_only \
                and e["outcome"] in ("passed", "failed") and "wall" in e["metrics"]:
            by_test.setdefault(e["test"], {})[e["mode"]] = e
    for modes in by_test.values():
        measured = {}
        for mode, e in modes.items():
            value = {key: m["value"] for key, m in e["metrics"].items()}
            memory = value.get("memory")
            measured[mode] = advisor.ModeMeasurement(
                mode=mode, workers=e["workers"], wall=value["wall"], cpu=value.get("cpu", 0.0),
                peak_rss=int(memory) if memory is not None else None,
                speedup=value.get("speedup"))
        text = advisor.advise(measured, spec.usable_cpus())
        for e in modes.values():
            e["advice"] = text


def render(path: str, report: dict) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".json":
        return document.dumps(report)
    if suffix == ".md":
        from . import markdown

        return markdown.render(report)
    from . import html

    return html.render(report)


class Collector:
    """A plugin object registered by plugin.py for the whole session."""

    def __init__(self, config, settings: spec.ReportSettings, stored: dict):
        self.config = config
        self.settings = settings
        self.stored = stored  # the baseline read at configure (empty without one)
        self.entries: dict[str, dict] = {}
        self.report: dict | None = None
        self.written: list[str] = []

    def pytest_runtest_logreport(self, report) -> None:
        if entry.REPORT_ATTR in report.__dict__ or report.outcome == "failed":
            add(self.entries, report)

    def pytest_sessionfinish(self, session) -> None:
        if hasattr(self.config, "workerinput"):
            return  # a pytest-xdist worker: its controller reports
        if not self.entries and not self.settings.reports:
            return  # nothing concurrent ran, and no file to write
        from . import files

        self.report = self.build()
        try:
            self.write(files)
        except (OSError, document.ReportError) as exc:
            self.written.append(f"pytest-concurrency: could not write the reports: {exc}")
            if session.exitstatus == 0:
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def write(self, files) -> None:
        for path in self.settings.reports:
            files.write(path, render(path, self.report))
            self.written.append(f"concurrency report written to {path}")
            if path.lower().endswith(".md"):
                from . import markdown

                markdown.write_step_summary(render(path, self.report))
        if self.settings.save_baseline:
            baseline.save(self.settings.save_baseline, self.report)
            self.written.append(f"concurrency baseline saved to {self.settings.save_baseline}")

    def build(self) -> dict:
        workers = getattr(self.config.option, "numprocesses", None) or 0
        run = document.run_metadata(str(self.config.rootpath), int(workers))
        tests = sorted(self.entries.values(), key=lambda e: e["nodeid"])
        advise(tests)
        if self.settings.baseline:
            baseline.judge(tests, self.stored, run["machine"], self.settings.threshold)
        for e in tests:
            e.pop("measured_in_rounds", None)
        return document.new(run, tests)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.report is None:
            return
        from . import terminal

        verbose = self.config.get_verbosity() > 0
        # the compact table's other columns take about 50 characters
        width = max(terminal.MAX_TEST_WIDTH, self.config.get_terminal_writer().fullwidth - 50)
        lines = terminal.table(self.report["tests"], verbose=verbose, width=width)
        if lines:
            terminalreporter.section("concurrency")
        for line in lines:
            terminalreporter.write_line(line)
        advice = sorted({(e["test"], e["advice"]) for e in self.report["tests"] if e["advice"]})
        if advice:
            terminalreporter.section("concurrency advice")
            for test, text in advice:
                terminalreporter.write_line(f"{test}: {text}")
        for line in self.written:
            terminalreporter.write_line(line)
