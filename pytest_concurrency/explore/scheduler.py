"""One schedule: N worker threads of which exactly one runs at a time.

The controller (the thread that calls ``Schedule.run``) makes every decision; a worker
reaching a switch point posts an arrival and parks on its own baton lock until granted.
"""
import sys
import traceback

from . import _orig
from .instrument import own_file
from .report import describe_deadlock

PARKED, RUNNING, BLOCKED, DETACHED, DONE = "parked", "running", "blocked", "detached", "done"
CLOCK_TICK = 1e-6  # virtual seconds per scheduling step

_CURRENT = {}  # thread ident -> Worker, for workers of the active schedule


class Abort(BaseException):
    """Raised inside a worker to unwind it when its schedule is stopped."""


def current_worker():
    return _CURRENT.get(_orig.get_ident())


class Wait:
    """Why a worker is blocked on a patched primitive."""

    def __init__(self, ready, resource, what, deadline=None):
        self.ready, self.resource, self.what, self.deadline = ready, resource, what, deadline
        self.site = None


class Worker:
    def __init__(self, schedule, index, actor):
        self.schedule, self.index, self.actor = schedule, index, actor
        self.baton = _orig.allocate_lock()
        self.baton.acquire()
        self.status = PARKED
        self.arrival = None
        self.wait = None
        self.timed_out = False
        self.started = False
        self.ret = None
        self.error = None
        self.held = []  # [(primitive, site)]
        self.ident = None
        self.thread = None

    def __repr__(self):
        return f"worker {self.index}"


def user_site(skip=2):
    """(filename, lineno, funcname) of the nearest frame outside this package."""
    f = sys._getframe(skip)
    schedule = None
    w = current_worker()
    if w is not None:
        schedule = w.schedule
    first = None
    while f is not None:
        fn = f.f_code.co_filename
        if not own_file(fn):
            site = (fn, f.f_lineno, f.f_code.co_name)
            if first is None:
                first = site
            if schedule is None or schedule.is_user(fn):
                return site
        f = f.f_back
    return first or ("?", 0, "?")


class Schedule:
    """Runs the actors once under ``strategy``; fills trace, choices and findings."""

    def __init__(self, engine, strategy):
        self.engine = engine
        self.is_user = engine.is_user
        self.state = None
        self.strategy = strategy
        self.workers = [Worker(self, i, a) for i, a in enumerate(engine.actors)]
        self.trace = []  # (worker index, filename, lineno, funcname, what)
        self.choices = []  # worker index, or -(index+1) for "did not come back in time"
        self.steps = 0
        self.clock = 0.0
        self.current = None
        self.aborting = False
        self.error_worker = None
        self.deadlock = None
        self.divergence = None
        self.detaches = 0
        self.abandoned = []
        self._inbox = []
        self._signal = _orig.allocate_lock()
        self._signal.acquire()
        self._arrivals = 0
        self._detach_mark = -10
        self.mono0 = _orig.monotonic()
        self.wall0 = _orig.wall_time()

    # ---- worker side -------------------------------------------------------------
    def _post(self, w, kind, info):
        w.arrival = (kind, info)
        self._inbox.append(w)
        try:
            self._signal.release()
        except RuntimeError:
            pass

    def _arrive(self, w, kind, info):
        if self.aborting:
            raise Abort()
        self._post(w, kind, info)
        w.baton.acquire()
        if self.aborting:
            raise Abort()

    def point(self, w, filename, lineno, funcname, what=None):
        """A switch point: let the scheduler decide who runs next."""
        self._arrive(w, "point", (filename, lineno, funcname, what))

    def op_point(self, w, what):
        site = user_site(3)
        self._arrive(w, "point", site + (what,))
        return site

    def block(self, w, wait):
        """Park until ``wait.ready()`` (or its virtual deadline); False on timeout."""
        wait.site = wait.site or user_site(3)
        w.timed_out = False
        self._arrive(w, "block", wait)
        return not w.timed_out

    def now(self):
        return self.clock

    def spawn(self, run):
        """A worker starts a thread: it becomes one more worker of this schedule.

        Returns once the new worker has posted its first arrival, so the
        controller sees it before it sees the spawning worker again.
        """
        w = Worker(self, len(self.workers), lambda _state: run())
        w.status = RUNNING
        self.workers.append(w)
        # Not threading.Thread: it would wait for its start on a (patched) Event.
        w.thread = RawThread(self._bootstrap, w)
        while w.arrival is None and w.thread.is_alive():
            _orig.sleep(0)
        return w

    def _bootstrap(self, w):
        w.ident = _orig.get_ident()
        _CURRENT[w.ident] = w
        eng = self.engine
        try:
            self._arrive(w, "point", ("<start>", 0, "<start>", "start"))
            if eng.settrace is not None:
                sys.settrace(eng.settrace)
            try:
                w.ret = w.actor(self.state)
            finally:
                if eng.settrace is not None:
                    sys.settrace(None)
        except Abort:
            pass
        except BaseException as exc:  # noqa: BLE001 - every worker failure is a finding
            if not self.aborting:
                w.error = exc
        finally:
            _CURRENT.pop(w.ident, None)
            self._post(w, "done", None)

    # ---- controller side ---------------------------------------------------------
    def _drain(self):
        while self._inbox:
            w = self._inbox.pop(0)
            kind, info = w.arrival
            self._arrivals += 1
            if w.status == DETACHED:
                if self._arrivals == self._detach_mark + 1 and self.current is not w:
                    self.engine.false_detach()
            if kind == "point":
                w.status = PARKED
            elif kind == "block":
                w.status = BLOCKED
                w.wait = info
                fn, ln, func = info.site
                self.trace.append((w.index, fn, ln, func, "blocks: " + info.what))
            else:
                w.status = DONE
                w.wait = None
                if w.error is not None and self.error_worker is None and not self.aborting:
                    self.error_worker = w
            if self.aborting and kind != "done":
                w.baton.release()

    def _wait_arrival(self, timeout):
        self._drain()
        got = self._signal.acquire(True, timeout)
        self._drain()
        return got

    def _wait_for(self, w, timeout):
        deadline = _orig.monotonic() + timeout
        while True:
            self._drain()
            if w.status != RUNNING:
                return True
            remaining = deadline - _orig.monotonic()
            if remaining <= 0:
                return False
            self._signal.acquire(True, remaining)

    def _enabled(self):
        out = []
        for w in self.workers:
            if w.status == PARKED:
                out.append(w)
            elif w.status == BLOCKED and w.wait.ready():
                out.append(w)
        return out

    def run(self):
        eng = self.engine
        for w in self.workers:
            t = _orig.Thread(target=self._bootstrap, args=(w,), daemon=True,
                             name=f"explore-worker-{w.index}")
            w.thread = t
        eng.patch()
        try:
            self.state = eng.setup()
            for w in self.workers:
                w.status = RUNNING
                w.thread.start()
                if not self._wait_for(w, eng.hang_timeout):
                    raise RuntimeError(f"explore: worker {w.index} did not start")
            self._loop()
        finally:
            self._stop()
            eng.unpatch()

    def _loop(self):
        eng = self.engine
        while True:
            if self.error_worker is not None or self.divergence:
                return
            enabled = self._enabled()
            if all(w.status == DONE for w in self.workers[:len(eng.actors)]):
                return  # threads the actors started and left running are stopped
            if not enabled:
                live = [w for w in self.workers if w.status != DONE]
                timed = [w for w in live if w.status == BLOCKED and w.wait.deadline is not None]
                if timed:
                    first = min(w.wait.deadline for w in timed)
                    self.clock = max(self.clock, first)
                    for w in timed:
                        if w.wait.deadline <= self.clock:
                            w.timed_out = True
                            w.wait.ready = _true
                    continue
                if any(w.status == DETACHED for w in live):
                    if not self._wait_arrival(eng.hang_timeout):
                        self.deadlock = describe_deadlock(self, live)
                        return
                    continue
                self.deadlock = describe_deadlock(self, live)
                return
            choice = self.strategy.choose(enabled, self.current, self.steps)
            if choice is None:  # replay: expected worker not runnable
                if any(w.status == DETACHED for w in self.workers) and \
                        self._wait_arrival(eng.patience):
                    self.strategy.retry()
                    continue
                self.divergence = self.strategy.divergence
                return
            self.steps += 1
            self.clock += CLOCK_TICK
            self.choices.append(choice.index)
            self._record_grant(choice)
            self.current = choice
            choice.status = RUNNING
            choice.wait = None
            choice.baton.release()
            expect_detach = self.strategy.expects_detach()
            timeout = eng.step_timeout if expect_detach is not False else eng.patience
            if not self._wait_for(choice, timeout):
                choice.status = DETACHED
                self.detaches += 1
                self._detach_mark = self._arrivals
                self.choices.append(-(choice.index + 1))
                self.current = None
                if expect_detach is False:
                    self.divergence = (f"replay diverged at step {self.steps}: worker "
                                       f"{choice.index} did not reach a switch point")
                    return
            elif expect_detach:
                self.divergence = (f"replay diverged at step {self.steps}: expected worker "
                                   f"{choice.index} to block outside the scheduler, but it "
                                   f"reached a switch point")
                return

    def _record_grant(self, w):
        """Trace the step ``w`` is about to execute (steps are shown when they run)."""
        kind, info = w.arrival
        if kind == "point" and info[3] != "start":
            self.trace.append((w.index,) + info)
        elif kind == "block":
            self.trace.append((w.index,) + info.site + ("wakes",))

    def _stop(self):
        """Unwind every worker still inside the schedule and join all threads."""
        self.aborting = True
        for w in self.workers:
            if w.status in (PARKED, BLOCKED):
                w.status = RUNNING
                w.baton.release()
        deadline = _orig.monotonic() + self.engine.join_timeout
        for w in self.workers:
            while w.thread.is_alive() and _orig.monotonic() < deadline:
                self._wait_arrival(0.005)
                w.thread.join(0.001)
        self._drain()
        self.abandoned = [w for w in self.workers if w.thread.is_alive()]
        for w in self.abandoned:
            _CURRENT.pop(w.ident, None)

    def worker_stack(self, w):
        """Formatted user frames of a live worker thread (for hang reports)."""
        frame = sys._current_frames().get(w.ident)
        if frame is None:
            return ""
        stack = [fs for fs in traceback.extract_stack(frame) if not own_file(fs.filename)]
        return "".join(traceback.format_list(stack[-6:]))


def _true():
    return True


class RawThread:
    """A thread started with ``_thread``, using only real primitives."""

    def __init__(self, target, *args):
        self._running = _orig.allocate_lock()
        self._running.acquire()

        def main():
            try:
                target(*args)
            finally:
                self._running.release()

        _orig.start_new_thread(main, ())

    def is_alive(self):
        return self._running.locked()

    def join(self, timeout=None):
        if self._running.acquire(True, -1 if timeout is None else timeout):
            self._running.release()
