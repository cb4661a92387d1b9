"""What one test item tells the reports, as plain data that rides in its
TestReports (pytest-xdist serializes report attributes), so only the
controller needs to see it: the layout, what was measured, the budget's
verdicts and every failure with its kind (:class:`ItemData`, made of the
records of ``records.py``)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, TypedDict

import pytest

from .. import spec, texts
from ..options import replay_command
from . import document

if TYPE_CHECKING:
    from ..budget import Verdict
    from ..metrics import Measurement
    from ..stats import Estimate
    from .records import BudgetVerdict, Exploration, Failure, Metric


class ItemData(TypedDict):
    """An item's data while it runs, and what its TestReports carry
    (:data:`REPORT_ATTR`): the fields of its report entry that the item knows,
    and three the collector keeps for the session (``measured_in_rounds``,
    ``applied``, ``timeout``: see collector.Facts)."""

    mode: str
    layout: str
    workers: int
    iterations: int
    metrics: dict[str, Metric]
    budget: list[BudgetVerdict]
    failures: list[Failure]  # a report's: those of its phase
    serial: str | None  # why it runs once, serially
    exploration: Exploration | None
    measured_in_rounds: bool  # metrics are medians of paired rounds
    applied: bool  # --concurrency-apply made it concurrent, not a marker
    timeout: float  # seconds, for the whole run


@dataclasses.dataclass
class Runs:
    """What the single runs of a test that calls ``concurrency.run`` often add up to."""

    wall: float = 0.0
    cpu: float = 0.0
    calls: int = 0
    peak_rss: int | None = None


REPORT_ATTR = "concurrency"  # TestReport attribute holding an item's data
DATA = pytest.StashKey[ItemData]()  # the item's data while it runs
RUNS = pytest.StashKey[Runs]()  # its single runs so far
LIVE = pytest.StashKey[str]()  # with -s: the exploration's section, printed after the call


def base_id(nodeid: str) -> str:
    """The test's node id without its mode: 'test_x.py::t[thread-1]' -> 'test_x.py::t[1]'."""
    head, bracket, params = nodeid.partition("[")
    if not bracket:
        return nodeid
    first, _, rest = params[:-1].partition("-")
    if first not in spec.MODES:
        return nodeid
    return f"{head}[{rest}]" if rest else head


def mode_of(nodeid: str) -> str | None:
    """The mode in a concurrent item's node id, None for any other item."""
    _, bracket, params = nodeid.partition("[")
    first = params[:-1].partition("-")[0] if bracket else ""
    return first if first in spec.MODES else None


def start(item: pytest.Item, run_spec: spec.RunSpec,
          serial: str | None = None, applied: bool = False) -> ItemData:
    """Fresh data for ``item`` (a rerun starts over), kept in its stash until its
    reports are made.  ``serial``: why it runs once, serially, instead;
    ``applied``: --concurrency-apply made it concurrent, not a marker."""
    data: ItemData = {
        "mode": run_spec.mode, "layout": run_spec.layout, "workers": run_spec.workers,
        "iterations": run_spec.iterations, "metrics": {}, "budget": [],
        "failures": [], "serial": serial, "exploration": None,
        "measured_in_rounds": False, "applied": applied, "timeout": run_spec.timeout,
    }
    item.stash[DATA] = data
    if RUNS in item.stash:
        del item.stash[RUNS]
    if LIVE in item.stash:
        del item.stash[LIVE]
    return data


def add_exploration(item: pytest.Item, exploration: Exploration) -> None:
    """What an explore run explored (the last one, if a test explores several times)."""
    data = item.stash.get(DATA, None)
    if data is not None:
        data["exploration"] = exploration


def show_verdict_later(item: pytest.Item, text: str) -> None:
    """With ``-s``: the exploration's section is printed once the test's call is over
    (:func:`for_report`), when its verdict is final."""
    if DATA in item.stash:
        item.stash[LIVE] = text


def add_run(item: pytest.Item, measurement: Measurement) -> None:
    """Count one run's measurement (a test may call ``concurrency.run`` often)."""
    data = item.stash.get(DATA, None)
    if data is None or data["measured_in_rounds"]:
        return
    runs = item.stash.setdefault(RUNS, Runs())
    runs.wall += measurement.wall
    runs.cpu += measurement.cpu
    runs.calls += measurement.calls
    if measurement.peak_rss is not None:
        runs.peak_rss = max(runs.peak_rss or 0, measurement.peak_rss)
    wall = runs.wall
    metrics = {"wall": document.metric("wall", wall), "cpu": document.metric("cpu", runs.cpu),
               "throughput": document.metric("throughput",
                                             runs.calls / wall if wall > 0 else 0.0)}
    if runs.peak_rss is not None:
        metrics["memory"] = document.metric("memory", runs.peak_rss)
    data["metrics"] = metrics


def add_estimates(item: pytest.Item, measured: Mapping[str, Estimate],
                  verdicts: Iterable[Verdict]) -> None:
    """What a budgeted test's rounds measured (medians and intervals) and decided."""
    data = item.stash[DATA]
    data["measured_in_rounds"] = True
    if RUNS in item.stash:
        del item.stash[RUNS]
    data["metrics"] = {
        key: document.metric(key, e.median, e.low, e.high, e.n)
        for key, e in measured.items() if key in document.METRICS
    }
    data["budget"] = [
        {"key": v.limit.key, "limit": str(v.limit), "verdict": v.status, "message": v.message}
        for v in verdicts
    ]


def failure(kind: str, summary: str, message: str, workers: Iterable[int] = (),
            iteration: int | None = None, replay: str | None = None,
            nodeid: str = "") -> Failure:
    return {"kind": kind, "summary": summary, "message": message, "workers": list(workers),
            "iteration": iteration, "replay": replay,
            "replay_command": replay_command(nodeid, replay) if replay else None}


def failed_after(exploration: Exploration, exc: BaseException) -> Exploration:
    """An exploration whose test then failed, as the reports say it: not complete,
    its verdict the failure - for outcomes ``expect``/``forbid`` rejected, with
    the schedule of the first rejected outcome as its failing interleaving."""
    from ..results import rejection_of

    if exploration.get("interleaving") or not isinstance(exploration.get("verdict"), str):
        return exploration  # the exploration's own failure says it already
    new = exploration.copy()
    run = exploration.get("schedules") or 0
    rejection = rejection_of(exc)
    if rejection is not None:
        what = (f"the test rejected outcome {texts.short_repr(rejection.outcome)} "
                f"({rejection.rejected} of "
                f"{run} schedule{'s' if run != 1 else ''})")
        first = rejection.first
        if first is not None:
            new["interleaving"] = {
                "schedule": first.index, "kind": "rejected outcome", "worker": None,
                "message": what, "total_steps": first.total_steps, "steps": first.steps}
    else:
        from ..standins import summary

        what = f"the test failed after it: {summary(exc)}"
    searched = f"{run} schedule{'s' if run != 1 else ''} explored"
    if exploration.get("complete"):
        count = exploration.get("distinct") or run
        searched = f"every interleaving explored ({count} distinct)"
    settings = exploration.get("settings")
    new["complete"] = False
    new["incomplete"] = what
    new["verdict"] = f"{searched}; {what}" + (f" ({settings})" if settings else "")
    return new


def _replace_section(report: pytest.TestReport, title: str, text: str) -> None:
    """Put ``text`` in the call's ``title`` section of ``report`` (add_report_section's)."""
    name = f"Captured {title} call"
    report.sections[:] = [(key, text if key == name else content)
                          for key, content in report.sections]


def failures_of(exc: BaseException, nodeid: str, data: ItemData) -> list[Failure]:
    """The failures an exception stands for, each with its kind."""
    from .. import outcomes
    from ..results import rejection_of

    rejection = rejection_of(exc)
    if rejection is not None and data.get("exploration") is not None:
        schedule = rejection.first
        where = f"; first in schedule {schedule.index}" if schedule is not None else ""
        count = rejection.rejected
        return [failure("race", f"rejected outcome {texts.short_repr(rejection.outcome)} "
                                f"({count} round{'s' if count != 1 else ''}{where})",
                        texts.middle(texts.safe_str(exc)),
                        replay=schedule.token if schedule is not None else None, nodeid=nodeid)]

    if isinstance(exc, outcomes.WorkerFailures):
        found = []
        for group in exc.groups:
            first = group.first
            workers = sorted({w for member in group.members for w in member.workers})
            found.append(failure(first.kind, first.summary, first.text, workers,
                                 first.iteration, first.replay, nodeid))
        return found
    text = texts.middle(texts.safe_str(exc).strip())
    summary = texts.one_line(text) if text else type(exc).__name__
    budget = data.get("budget", [])
    if any(v["verdict"] in ("fail", "inconclusive") for v in budget) \
            and text.startswith("concurrency budget"):
        # the verdict that failed the test, before one that only stayed inconclusive
        unmet = sorted((v for v in budget if v["verdict"] != "pass"),
                       key=lambda v: v["verdict"] != "fail")
        return [failure("budget", unmet[0]["message"] if unmet else summary, text)]
    if not isinstance(exc, pytest.fail.Exception):
        summary = f"{type(exc).__name__}: {summary}"
    return [failure("exception", summary, text)]


def leak(item: pytest.Item, message: str) -> None:
    """A teardown that found threads or processes left running."""
    data = item.stash.get(DATA, None)
    if data is not None:
        message = texts.middle(message)
        data["failures"].append(failure("leak", texts.one_line(message), message))


def for_report(item: pytest.Item, report: pytest.TestReport,
               excinfo: pytest.ExceptionInfo[BaseException] | None) -> ItemData | None:
    """The data a report of ``item`` carries: after its call, everything so far
    plus the call's failures; after setup or teardown, their failures."""
    data = item.stash.get(DATA, None)
    if data is None:
        return None
    out = data.copy()
    if report.when == "call":
        out["failures"] = list(data["failures"])
        if excinfo is not None and report.failed:
            exploration = data["exploration"]
            if exploration is not None:  # the test failed after it: never "verified"
                out["exploration"] = data["exploration"] = after = failed_after(
                    exploration, excinfo.value)
                if after is not exploration:
                    verdict = after["verdict"] or ""
                    _replace_section(report, "explore", verdict)
                    if LIVE in item.stash:
                        item.stash[LIVE] = verdict
            out["failures"] += failures_of(excinfo.value, item.nodeid, data)
        data["failures"] = []
        live = item.stash.get(LIVE, None)
        if live is not None:
            del item.stash[LIVE]
            sys.stdout.write(f"\n--- explore ---\n{live}\n")
    elif report.failed and excinfo is not None:
        out["failures"] = list(data["failures"]) or failures_of(excinfo.value, item.nodeid, data)
        data["failures"] = []
        exploration = data["exploration"]
        if exploration is not None:  # a teardown that failed (a leak): not verified either
            out["exploration"] = data["exploration"] = failed_after(exploration,
                                                                    excinfo.value)
    else:
        out["failures"] = list(data["failures"])
        data["failures"] = []
    return out


def properties(data: ItemData) -> list[tuple[str, object]]:
    """Key metrics as JUnit ``user_properties``: ``concurrency.wall`` etc.; for an
    explore item what was explored: ``concurrency.explore.strategy``, ``.seed``,
    ``.schedules`` (explored), ``.complete`` (true/false), ``.outcomes`` (distinct)."""
    props: list[tuple[str, object]] = [("concurrency.mode", data["mode"]),
                                       ("concurrency.layout", data["layout"])]
    for key, value in data["metrics"].items():
        props.append((f"concurrency.{key}", f"{value['value']:.6g}"))
    exploration = data.get("exploration")
    if exploration:
        props += [("concurrency.explore.strategy", str(exploration.get("strategy"))),
                  ("concurrency.explore.seed", str(exploration.get("seed"))),
                  ("concurrency.explore.schedules", str(exploration.get("schedules"))),
                  ("concurrency.explore.complete",
                   "true" if exploration.get("complete") else "false"),
                  ("concurrency.explore.outcomes", str(exploration.get("outcomes")))]
    for verdict in data["budget"]:
        props.append((f"concurrency.budget.{verdict['key']}", verdict["verdict"]))
    for found in data["failures"]:
        props.append(("concurrency.failure", f"{found['kind']}: {found['summary']}"))
    return props
