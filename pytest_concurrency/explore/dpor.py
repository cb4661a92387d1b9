"""DPOR: one schedule for each class of equivalent interleavings, then stop.

Two interleavings are equivalent - the same Mazurkiewicz trace - when one turns
into the other by swapping adjacent independent steps (``accesses.dependent``);
they end in the same state.  Dynamic partial-order reduction (Flanagan and
Godefroid, POPL 2005) runs one schedule, finds every *race* in it - two
dependent steps of different workers, the first not happening before the
second's worker was there - and adds the second's worker to the choices to try
at the state before the first.  Sleep sets (Godefroid 1996) keep a worker from
being tried again where its step would only repeat an equivalent interleaving.
When no choice is left to try, every class has been run once: the search is
complete, and a run that found nothing has verified the body for these workers.

Blocking follows the primitives: a worker whose lock is held (its step's guard
is false), or that is blocked on a primitive, cannot run; a race with the step
it waited for is not reversible and is not a race.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from .accesses import ALL, Event, Guard, dependent, releasing
from .strategies import Strategy, W

DONE = "done"  # scheduler.DONE (not imported: the scheduler imports the strategies)

Clock = dict[int, int]  # worker index -> how many of its steps happened before
PLAIN, RELEASES, GUARDED = 0, 1, 2  # a step's kind (see Step)


class View(Protocol):
    """What DPOR sees of a worker (``scheduler.Worker``)."""

    @property
    def index(self) -> int: ...

    @property
    def event(self) -> Event: ...

    @property
    def guard(self) -> Guard | None: ...

    @property
    def status(self) -> str: ...

    @property
    def parent(self) -> int | None: ...


class Step(NamedTuple):
    """One visible step of a run."""

    worker: int
    event: Event
    kind: int  # PLAIN; RELEASES (a release, a thread's end); GUARDED (a blocking acquire, a join)


@dataclasses.dataclass(slots=True)
class Node:
    """The state before one visible step of the current path."""

    enabled: tuple[int, ...]  # workers whose next step could run here
    pending: dict[int, Event]  # every live worker's next step
    chosen: int  # the worker this path runs here
    backtrack: set[int]  # workers to run here, found by races
    done: set[int]  # workers already run here
    sleep: set[int]  # workers not to run here: their step was explored from an equivalent state


class DPOR(Strategy):
    """Source of the schedules of a DPOR search (see the module docstring)."""

    name = "dpor"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.path: list[Node] = []
        self.pos = 0
        self.workers: Sequence[View] = ()
        self.trace: list[Step] = []  # this run's visible steps
        self.origin: dict[int, int] = {}  # spawned worker -> trace index of its start
        self.known = 0  # workers seen so far in this run
        self.pruned = False  # this run only repeated explored interleavings: stopped
        self.redundant = 0  # runs stopped that way
        self.nondeterministic = False  # a replayed prefix did not run the same way

    def attach(self, workers: Sequence[object]) -> None:
        self.workers = workers  # type: ignore[assignment]  # scheduler.Worker is a View

    def begin(self, index: int, nworkers: int) -> None:
        self.pos = 0
        self.trace = []
        self.origin = {}
        self.known = 0
        self.pruned = False

    # ---- during a run ------------------------------------------------------
    def choose(self, enabled: Sequence[W], current: W | None, step: int) -> W | None:
        views: Sequence[View] = enabled  # type: ignore[assignment]
        if len(self.workers) > self.known:
            self._spawned()
        runnable = [worker for worker in views if worker.guard is None or worker.guard()]
        if not runnable:
            return enabled[0]  # every step would block: let it (the scheduler sees a deadlock)
        if current is not None and not current.event and current in runnable:  # type: ignore
            return current  # a step that touches nothing shared: no choice to make
        for worker in runnable:
            if not worker.event:
                return worker  # type: ignore[return-value]
        chosen = self._decide(runnable, current)  # type: ignore[arg-type]
        if chosen is None:
            self.pruned = True
            return None
        guard = chosen.guard
        self.trace.append(Step(chosen.index, chosen.event,
                               PLAIN if guard is None else
                               RELEASES if guard is releasing else GUARDED))
        self.pos += 1
        return chosen  # type: ignore[return-value]

    def _spawned(self) -> None:
        """Workers started since the last step: remember which step started each."""
        for worker in self.workers[self.known:]:
            parent = worker.parent
            if parent is not None:
                for index in range(len(self.trace) - 1, -1, -1):
                    if self.trace[index].worker == parent:
                        self.origin[worker.index] = index
                        break
        self.known = len(self.workers)

    def _decide(self, runnable: list[View], current: View | None) -> View | None:
        indices = tuple(worker.index for worker in runnable)
        by_index = {worker.index: worker for worker in runnable}
        if self.pos < len(self.path):
            node = self.path[self.pos]
            chosen = by_index.get(node.chosen)
            if node.enabled == indices and chosen is not None and \
                    node.pending[node.chosen] == chosen.event:
                return chosen
            self.nondeterministic = True  # the same choices led somewhere else
            del self.path[self.pos:]
        sleep = self._sleep()
        awake = [worker for worker in runnable if worker.index not in sleep]
        if not awake:
            return None  # every runnable worker would repeat an explored interleaving
        chosen = current if current is not None and current in awake else awake[0]
        pending = {worker.index: worker.event for worker in self.workers
                   if worker.status != DONE}
        self.path.append(Node(indices, pending, chosen.index, {chosen.index}, {chosen.index},
                              sleep))
        return chosen

    def _sleep(self) -> set[int]:
        """The sleep set of the next node: of the workers asleep or already explored
        at the last one, those whose step is independent of the step taken there."""
        if not self.path or self.pos == 0:
            return set()
        node = self.path[self.pos - 1]
        taken = node.pending[node.chosen]
        return {worker for worker in (node.sleep | node.done) - {node.chosen}
                if not dependent(node.pending[worker], taken)}

    # ---- after a run ---------------------------------------------------------
    def end(self, steps: int) -> None:
        if self.pruned:
            self.redundant += 1
        del self.path[self.pos:]  # nodes a shorter (diverged) run did not reach
        self._races()
        while self.path:
            node = self.path[-1]
            options = sorted(node.backtrack - node.done - node.sleep)
            if options:
                node.chosen = options[0]
                node.done.add(options[0])
                return
            self.path.pop()
        self.exhausted = True

    def _races(self) -> None:
        """For each step, the last earlier step of another worker it races with; add
        its worker (or one that leads to it) to the choices before that step."""
        trace = self.trace
        clocks: dict[int, Clock] = {}  # each worker's clock after its last step
        stamps: list[Clock] = []  # each step's clock
        history: dict[int, list[int]] = {}  # object number -> steps that touched it
        for j, (worker, event, _kind) in enumerate(trace):
            before = clocks.get(worker)
            if before is None:
                origin = self.origin.get(worker)
                before = dict(stamps[origin]) if origin is not None else {}
            candidates = sorted({i for number, _part, _writes in event
                                 for i in history.get(number, ())}, reverse=True)
            stamp = dict(before)
            stamp[worker] = before.get(worker, 0) + 1
            for i in candidates:
                if dependent(trace[i].event, event):
                    for key, value in stamps[i].items():
                        if value > stamp.get(key, 0):
                            stamp[key] = value
            stamps.append(stamp)
            clocks[worker] = stamp
            self._race(j, trace[j], before, candidates, stamps)
            for number, _part, _writes in event:
                history.setdefault(number, []).append(j)

    def _race(self, j: int, step: Step, before: Clock, candidates: list[int],
              stamps: list[Clock]) -> None:
        worker, event = step.worker, step.event
        for i in candidates:
            other, other_event, other_kind = self.trace[i]
            if other == worker or not dependent(other_event, event):
                continue
            if step.kind == GUARDED and other_kind == RELEASES:
                continue  # a release and a step waiting for it are never both runnable
            if stamps[i][other] <= before.get(other, 0):
                if _covers(other_event, event):
                    return  # this write happened before: so did every earlier access
                continue
            node = self.path[i]
            if worker not in node.enabled:
                waiting = node.pending.get(worker)
                if waiting is not None and dependent(waiting, other_event):
                    # It could not run at i: it waited for what step i did (a lock's
                    # release, a put). The two cannot be reversed there.
                    continue
            self._backtrack(i, j, worker, stamps)
            return

    def _backtrack(self, i: int, j: int, worker: int, stamps: list[Clock]) -> None:
        node = self.path[i]
        if worker in node.enabled:
            candidates = {worker}
        else:
            candidates = self._initials(i, j, stamps) & set(node.enabled) or set(node.enabled)
        if candidates & (node.backtrack | node.done):
            return
        node.backtrack.add(min(candidates))

    def _initials(self, i: int, j: int, stamps: list[Clock]) -> set[int]:
        """Workers whose first step after step i, among the steps not ordered after i
        and step j, comes first: running one of them at i starts the reversal."""
        def after(a: int, b: int) -> bool:  # step a happens before step b
            owner = self.trace[a].worker
            return stamps[a][owner] <= stamps[b].get(owner, 0)

        window = [k for k in range(i + 1, j) if not after(i, k)] + [j]
        out: set[int] = set()
        for position, k in enumerate(window):
            if not any(after(earlier, k) for earlier in window[:position]):
                out.add(self.trace[k].worker)
        return out


def _covers(write: Event, event: Event) -> bool:
    """Whether ``write`` writes all of what ``event`` touches (so every earlier access
    to it is ordered before ``write``)."""
    for number, part, _writes in event:
        if not any(other == number and other_writes and (other_part is ALL or
                                                         other_part == part)
                   for other, other_part, other_writes in write):
            return False
    return True
