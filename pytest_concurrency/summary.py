"""Measurements travel in test reports (so they survive pytest-xdist) and end in
the terminal summary as one piece of advice per test."""

from __future__ import annotations

from . import advisor, spec

REPORT_ATTR = "concurrency"  # TestReport attribute; xdist serializes it with the report


def report_data(run_spec, measured) -> dict:
    """Plain data for a report: medians of what a budgeted test's rounds measured."""
    data = {"mode": run_spec.mode, "workers": run_spec.workers}
    for key, estimate in measured.items():
        data[key] = estimate.median
    return data


def base_id(nodeid: str) -> str:
    """The test's node id without its mode: 'test_x.py::t[thread-1]' -> 'test_x.py::t[1]'."""
    head, bracket, params = nodeid.partition("[")
    if not bracket:
        return nodeid
    first, _, rest = params[:-1].partition("-")
    if first not in spec.MODES:
        return nodeid
    return f"{head}[{rest}]" if rest else head


class Collector:
    """A plugin object: gathers report data per test (base id) and mode, and
    writes the advice in the terminal summary."""

    def __init__(self):
        self.by_test: dict[str, dict[str, dict]] = {}

    def pytest_runtest_logreport(self, report) -> None:
        data = getattr(report, REPORT_ATTR, None)
        if data and report.when == "call":
            self.add(report.nodeid, data)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        advice = self.advice()
        if advice:
            terminalreporter.section("concurrency advice")
            for test, text in advice:
                terminalreporter.write_line(f"{test}: {text}")

    def add(self, nodeid: str, data: dict) -> None:
        self.by_test.setdefault(base_id(nodeid), {})[data["mode"]] = data

    def advice(self) -> list[tuple[str, str]]:
        lines = []
        for test, modes in sorted(self.by_test.items()):
            measured = {
                mode: advisor.ModeMeasurement(
                    mode=mode, workers=d["workers"], wall=d["wall"], cpu=d["cpu"],
                    peak_rss=int(d["memory"]) if d.get("memory") is not None else None,
                    speedup=d.get("speedup"))
                for mode, d in modes.items()
            }
            text = advisor.advise(measured, spec.usable_cpus())
            if text:
                lines.append((test, text))
        return lines
