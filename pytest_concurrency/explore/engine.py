"""``explore()``: run actors under many schedules until one fails."""
import dataclasses
import functools
import inspect
import os
import sys
import time
import traceback

from . import token as _token
from .instrument import GRANULARITIES, USE_MONITORING, CodeTable, UserCode, own_file
from .primitives import Patcher
from .report import render_interleaving
from .scheduler import Schedule
from .strategies import STRATEGIES, Replay, make
from .tracing import Monitoring, make_settrace


class ReplayDiverged(Exception):
    """Replaying a token did not follow the recorded schedule."""


@dataclasses.dataclass
class Finding:
    kind: str  # "exception" | "deadlock" | "assertion"
    worker: int | None
    exception: BaseException | None
    traceback: str
    schedule: int
    token: str
    strategy: str
    seed: int
    granularity: str
    message: str
    interleaving: str
    steps: list
    report: str = ""

    def __str__(self):
        return self.report


@dataclasses.dataclass
class ExploreResult:
    failure: Finding | None
    schedules_run: int
    exhausted: bool
    stats: dict


def _source_dir(obj):
    obj = getattr(obj, "func", obj)
    obj = getattr(obj, "__func__", obj)
    code = getattr(obj, "__code__", None)
    if code is not None:
        return os.path.dirname(os.path.abspath(code.co_filename))
    try:
        return os.path.dirname(os.path.abspath(inspect.getfile(obj)))
    except TypeError:
        return None


def _format_exc(exc):
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    te.stack = traceback.StackSummary.from_list(
        [f for f in te.stack if not own_file(f.filename)])
    return "".join(te.format())


class Engine:
    """Configuration and instrumentation shared by the schedules of one explore()."""

    def __init__(self, setup, actors, granularity, roots, instrument, step_timeout,
                 hang_timeout):
        self.setup = setup
        self.actors = list(actors)
        self.is_user = UserCode(roots, instrument)
        self.table = CodeTable(granularity)
        self.step_timeout = step_timeout
        self.patience = max(1.0, 20 * step_timeout)
        self.hang_timeout = hang_timeout
        self.join_timeout = 2.0
        self.false_detaches = 0
        self._patcher = Patcher()
        self.settrace = None
        self._monitor = None

    def false_detach(self):
        self.false_detaches += 1
        self.step_timeout = min(self.step_timeout * 2, 0.5)

    def patch(self):
        self._patcher.patch()

    def unpatch(self):
        self._patcher.unpatch()

    def start(self):
        if USE_MONITORING:
            self._monitor = Monitoring(self.is_user, self.table)
            self._monitor.start()
        else:
            self.settrace = make_settrace(self.is_user, self.table)

    def stop(self):
        if self._monitor is not None:
            self._monitor.stop()


def explore(setup, actors, check=None, *, schedules=200, strategy="pct", seed=0,
            granularity="access", instrument=(), roots=None, replay=None,
            step_timeout=0.02, hang_timeout=5.0, preemption_bound=2, depth=3,
            report_steps=20, observe=None):
    """Run ``actors`` (one per worker thread) on ``setup()`` state under up to
    ``schedules`` seeded interleavings; stop at the first failing one.

    ``observe(state, returns, token)``, if given, is called after every schedule
    that did not fail, with a function that returns that schedule's replay token.

    Returns an :class:`ExploreResult`; raises :class:`ReplayDiverged` when ``replay``
    (a token from a previous failure) cannot be followed.
    """
    actors = list(actors)
    if not actors:
        raise ValueError("explore: at least one actor is needed")
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if isinstance(instrument, str):
        instrument = (instrument,)
    recorded = None
    if replay is not None:
        recorded = _token.decode(replay)
        if recorded["workers"] != len(actors):
            raise ReplayDiverged(f"replay token is for {recorded['workers']} workers, "
                                 f"this run has {len(actors)}")
        strategy, seed = recorded["strategy"], recorded["seed"]
        granularity = recorded["granularity"]
    if roots is None:
        roots = {d for d in map(_source_dir, [setup, check, *actors]) if d}
    engine = Engine(setup, actors, granularity, tuple(roots), tuple(instrument),
                    step_timeout, hang_timeout)
    if recorded is not None:
        strat = Replay(recorded["choices"])
        indices = [recorded["index"]]
    else:
        strat = make(strategy, seed, preemption_bound=preemption_bound, depth=depth)
        indices = range(schedules)
    stats = {"steps_total": 0, "steps_max": 0, "detaches": 0, "abandoned_threads": 0}
    started = time.perf_counter()
    failure, run = None, 0
    engine.start()
    try:
        for index in indices:
            strat.begin(index, len(actors))
            sch = Schedule(engine, strat)
            sch.run()
            run += 1
            strat.end(sch.steps)
            stats["steps_total"] += sch.steps
            stats["steps_max"] = max(stats["steps_max"], sch.steps)
            stats["detaches"] += sch.detaches
            stats["abandoned_threads"] += len(sch.abandoned)
            if sch.divergence:
                raise ReplayDiverged(_diverged_text(sch.divergence, recorded))
            if recorded is not None and strat.pos < len(recorded["choices"]) and \
                    not (sch.error_worker or sch.deadlock):
                raise ReplayDiverged(
                    f"replay diverged at step {sch.steps}: the run finished but the "
                    f"recording has {len(recorded['choices']) - strat.pos} more steps")
            failure = _evaluate(sch, check, index, strategy, seed, granularity,
                                report_steps)
            if failure is None and observe is not None:
                observe(sch.state, [x.ret for x in sch.workers],
                        functools.partial(_token.encode, strategy, seed, index,
                                          granularity, len(actors), sch.choices))
            if failure is not None or strat.exhausted:
                break
    finally:
        engine.stop()
    stats.update(elapsed=time.perf_counter() - started, step_timeout=engine.step_timeout,
                 false_detaches=engine.false_detaches,
                 python=f"{sys.version_info[0]}.{sys.version_info[1]}",
                 switch_points="sys.monitoring" if USE_MONITORING else "sys.settrace")
    if hasattr(strat, "k"):
        stats["pct_k"] = strat.k
    return ExploreResult(failure, run, bool(strat.exhausted and failure is None), stats)


def _diverged_text(text, recorded):
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if recorded is not None and recorded["python"] != here:
        text += f" (token recorded on Python {recorded['python']}, this is {here})"
    return text


def _is_assertion(exc):
    """AssertionError, or pytest.fail()'s exception (recognised without importing pytest)."""
    if isinstance(exc, AssertionError):
        return True
    mro = type(exc).__mro__
    return mro[0].__name__ == "Failed" and any(
        c.__name__ == "OutcomeException" and c.__module__.startswith("_pytest") for c in mro)


def _evaluate(sch, check, index, strategy, seed, granularity, report_steps):
    w = sch.error_worker
    kind = exc = worker = None
    tb = ""
    if w is not None:
        exc, worker, tb = w.error, w.index, _format_exc(w.error)
        kind = "assertion" if _is_assertion(exc) else "exception"
        message = f"worker {w.index} raised {type(exc).__name__}: {exc}"
    elif sch.deadlock:
        kind, message = "deadlock", sch.deadlock
    elif check is not None:
        returns = [x.ret for x in sch.workers]
        try:
            check(sch.state, returns)
        except BaseException as e:  # noqa: BLE001 - a failing check is a finding
            if not isinstance(e, Exception) and not _is_assertion(e):
                raise  # KeyboardInterrupt, SystemExit, pytest.skip ...
            kind = "assertion" if _is_assertion(e) else "exception"
            exc, tb = e, _format_exc(e)
            message = f"check failed: {type(e).__name__}: {e}"
    if kind is None:
        return None
    tok = _token.encode(strategy, seed, index, granularity, len(sch.engine.actors),
                        sch.choices)
    table = render_interleaving(sch.trace, len(sch.workers), limit=report_steps)
    report = "\n".join([
        f"explore found {'an' if kind[0] in 'ae' else 'a'} {kind} in schedule {index} "
        f"(strategy={strategy}, seed={seed}, granularity={granularity}, "
        f"{len(sch.workers)} workers, {sch.steps} steps)",
        message, "", "interleaving:", table, "",
        *( [tb.rstrip(), ""] if tb else []),
        f"replay token: {tok}",
    ])
    return Finding(kind, worker, exc, tb, index, tok, strategy, seed, granularity, message,
                   table, list(sch.trace), report)
