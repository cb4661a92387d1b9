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

import bisect
import dataclasses
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from .accesses import ALL, EVERYTHING, Event, Guard, dependent, releasing
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
    """The state before one visible step of the current path.  Sets of workers are
    bit masks (bit i: worker i): a path has a node per step, and ints are neither
    allocated per node nor traversed by the garbage collector."""

    enabled: tuple[int, ...]  # workers whose next step could run here
    pending: dict[int, Event]  # every live worker's next step
    chosen: int  # the worker this path runs here
    backtrack: int  # workers to run here, found by races
    done: int  # workers already run here
    sleep: int  # workers not to run here: their step was explored from an equivalent state


def _lowest(mask: int) -> int:
    """The smallest worker in a non-empty mask."""
    return (mask & -mask).bit_length() - 1


def _members(mask: int) -> list[int]:
    return [index for index in range(mask.bit_length()) if mask >> index & 1]


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
        self.last_of: dict[int, int] = {}  # worker -> trace index of its last step
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
        self.last_of = {}
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
        self.last_of[chosen.index] = self.pos
        self.pos += 1
        return chosen  # type: ignore[return-value]

    def _spawned(self) -> None:
        """Workers started since the last step: remember which step started each."""
        for worker in self.workers[self.known:]:
            parent = worker.parent
            if parent is not None and parent in self.last_of:
                self.origin[worker.index] = self.last_of[parent]
        self.known = len(self.workers)

    def _decide(self, runnable: list[View], current: View | None) -> View | None:
        indices = tuple([worker.index for worker in runnable])
        if self.pos < len(self.path):
            node = self.path[self.pos]
            chosen = next((worker for worker in runnable if worker.index == node.chosen), None)
            if node.enabled == indices and chosen is not None and \
                    node.pending[node.chosen] == chosen.event:
                return chosen
            self.nondeterministic = True  # the same choices led somewhere else
            del self.path[self.pos:]
        sleep = self._sleep()
        awake = [worker for worker in runnable if not sleep >> worker.index & 1] if sleep \
            else runnable
        if not awake:
            return None  # every runnable worker would repeat an explored interleaving
        chosen = current if current is not None and current in awake else awake[0]
        pending = {worker.index: worker.event for worker in self.workers
                   if worker.status != DONE}
        bit = 1 << chosen.index
        self.path.append(Node(indices, pending, chosen.index, bit, bit, sleep))
        return chosen

    def _sleep(self) -> int:
        """The sleep set of the next node: of the workers asleep or already explored
        at the last one, those whose step is independent of the step taken there."""
        if not self.path or self.pos == 0:
            return 0
        node = self.path[self.pos - 1]
        others = (node.done | node.sleep) & ~(1 << node.chosen)
        if not others:
            return 0  # only the step taken there was tried: nothing asleep (the usual case)
        taken = node.pending[node.chosen]
        asleep = 0
        for worker in _members(others):
            if not dependent(node.pending[worker], taken):
                asleep |= 1 << worker
        return asleep

    # ---- after a run ---------------------------------------------------------
    def end(self, steps: int) -> None:
        if self.pruned:
            self.redundant += 1
        del self.path[self.pos:]  # nodes a shorter (diverged) run did not reach
        self._races()
        while self.path:
            node = self.path[-1]
            options = node.backtrack & ~node.done & ~node.sleep
            if options:
                node.chosen = _lowest(options)
                node.done |= 1 << node.chosen
                return
            self.path.pop()
        self.exhausted = True

    def _races(self) -> None:
        """For each step, the last earlier step of another worker it races with; add
        its worker (or one that leads to it) to the choices before that step.

        Linear in the steps (FastTrack-style): every step's vector clock is its
        worker's joined with the clocks of the earlier steps it depends on, kept
        joined per object and part (:class:`_History`); its race is found among each
        other worker's latest dependent steps that do not happen before it."""
        trace = self.trace
        stamps: list[Clock] = []  # each step's clock
        clocks: dict[int, Clock] = {}  # each worker's clock after its last step
        steps_of: dict[int, list[int]] = {}  # each worker's steps, in order
        history = _History()
        for j, step in enumerate(trace):
            worker, event, _kind = step
            before = clocks.get(worker)
            if before is None:
                origin = self.origin.get(worker)
                before = dict(stamps[origin]) if origin is not None else {}
            stamp = dict(before)
            stamp[worker] = before.get(worker, 0) + 1
            history.join(stamp, event)
            stamps.append(stamp)
            clocks[worker] = stamp
            i = self._race(j, step, before, history, stamps)
            if i is not None:
                self._backtrack(i, j, worker, stamps, steps_of)
            history.add(j, worker, event, stamp)
            steps_of.setdefault(worker, []).append(j)

    def _race(self, j: int, step: Step, before: Clock, history: _History,
              stamps: list[Clock]) -> int | None:
        """The latest earlier step that races with step ``j``: dependent, of another
        worker, not happening before ``j``'s worker got there, and reversible (not
        a release that ``j`` waited for, nor a step ``j``'s worker was blocked on)."""
        worker, event = step.worker, step.event
        trace, path = self.trace, self.path
        found: int | None = None
        for other, steps in history.dependents(event):
            if other == worker:
                continue
            seen = before.get(other, 0)
            for i in reversed(steps):
                if found is not None and i <= found:
                    break  # no later than the race already found
                if stamps[i][other] <= seen:
                    break  # it happens before: so do the earlier ones of this list
                other_event, other_kind = trace[i].event, trace[i].kind
                if step.kind == GUARDED and other_kind == RELEASES:
                    continue  # a release and a step waiting for it are never both runnable
                node = path[i]
                if worker not in node.enabled:
                    waiting = node.pending.get(worker)
                    if waiting is not None and dependent(waiting, other_event):
                        # It could not run at i: it waited for what step i did (a lock's
                        # release, a put). The two cannot be reversed there.
                        continue
                found = i
                break
        return found

    def _backtrack(self, i: int, j: int, worker: int, stamps: list[Clock],
                   steps_of: dict[int, list[int]]) -> None:
        node = self.path[i]
        if worker in node.enabled:
            candidates = {worker}
        else:
            candidates = self._initials(i, j, stamps, steps_of) & set(node.enabled) or \
                set(node.enabled)
        mask = sum(1 << each for each in candidates)
        if mask & (node.backtrack | node.done):
            return
        node.backtrack |= 1 << min(candidates)

    def _initials(self, i: int, j: int, stamps: list[Clock],
                  steps_of: dict[int, list[int]]) -> set[int]:
        """Workers whose first step after step i, among the steps not ordered after i
        and step j, comes first: running one of them at i starts the reversal.

        Only each worker's first step after i can come first (its later ones follow
        it), and only while that step is not ordered after i; such a step comes first
        unless another worker's first step is ordered before it."""
        trace = self.trace

        def after(a: int, b: int) -> bool:  # step a happens before step b
            owner = trace[a].worker
            return stamps[a][owner] <= stamps[b].get(owner, 0)

        firsts: list[int] = []  # each worker's first step in (i, j) not ordered after i
        for steps in steps_of.values():
            at = bisect.bisect_right(steps, i)
            if at < len(steps) and steps[at] < j and not after(i, steps[at]):
                firsts.append(steps[at])
        if not any(trace[k].worker == trace[j].worker for k in firsts):
            firsts.append(j)
        return {trace[k].worker for k in firsts
                if not any(e < k and after(e, k) for e in firsts)}


class _History:
    """What each worker did to each part of each object so far in a run: the steps,
    in order, and the clocks of the writes and the reads joined (a step's clock
    joins those of every earlier step it depends on; see ``dependent``)."""

    __slots__ = ("writes", "reads", "any_writes", "any_reads", "clocks", "everything",
                 "steps")

    def __init__(self) -> None:
        # (object, part) -> worker -> its steps that write (read) that part; ALL is a part
        self.writes: dict[tuple[int, object], dict[int, list[int]]] = {}
        self.reads: dict[tuple[int, object], dict[int, list[int]]] = {}
        # object -> worker -> its steps that write (read) any part of it
        self.any_writes: dict[int, dict[int, list[int]]] = {}
        self.any_reads: dict[int, dict[int, list[int]]] = {}
        # joined clocks: ("w"|"r", object, part) for a part, ("w"|"r", object) for any
        # part of it, "everything" / "anything" for steps that conflict with all
        self.clocks: dict[object, Clock] = {}
        self.everything: dict[int, list[int]] = {}  # worker -> its EVERYTHING steps
        self.steps: dict[int, list[int]] = {}  # worker -> all its steps

    def _keys(self, event: Event) -> list[object]:
        """The joined clocks a step with ``event`` depends on."""
        keys: list[object] = []
        for number, part, writes in event:
            if number == EVERYTHING:
                return ["anything"]
            if part is ALL:
                keys.append(("w", number))
                if writes:
                    keys.append(("r", number))
            else:
                keys += [("w", number, part), ("w", number, ALL)]
                if writes:
                    keys += [("r", number, part), ("r", number, ALL)]
        keys.append("everything")
        return keys

    def join(self, stamp: Clock, event: Event) -> None:
        """Join into ``stamp`` the clocks of the earlier steps ``event`` depends on."""
        clocks = self.clocks
        for key in self._keys(event):
            clock = clocks.get(key)
            if clock is not None:
                for worker, count in clock.items():
                    if count > stamp.get(worker, 0):
                        stamp[worker] = count

    def dependents(self, event: Event) -> list[tuple[int, list[int]]]:
        """(worker, its steps in order) lists that hold every earlier step
        ``event`` depends on (and only such steps)."""
        out: list[tuple[int, list[int]]] = []
        for number, part, writes in event:
            if number == EVERYTHING:
                return list(self.steps.items())
            if part is ALL:
                tables = [self.any_writes.get(number)]
                if writes:
                    tables.append(self.any_reads.get(number))
            else:
                tables = [self.writes.get((number, part)), self.writes.get((number, ALL))]
                if writes:
                    tables += [self.reads.get((number, part)), self.reads.get((number, ALL))]
            for table in tables:
                if table:
                    out.extend(table.items())
        out.extend(self.everything.items())
        return out

    def add(self, j: int, worker: int, event: Event, stamp: Clock) -> None:
        """Step ``j`` of ``worker``, with ``event`` and clock ``stamp``, ran."""
        self.steps.setdefault(worker, []).append(j)
        clocks = self.clocks
        if any(number == EVERYTHING for number, _part, _writes in event):
            self.everything.setdefault(worker, []).append(j)
            _join(clocks, "everything", stamp)
            _join(clocks, "anything", stamp)
            return
        _join(clocks, "anything", stamp)
        for number, part, writes in event:
            kind = "w" if writes else "r"
            _join(clocks, (kind, number), stamp)
            _join(clocks, (kind, number, part), stamp)
            parts = self.writes if writes else self.reads
            _steps(parts.setdefault((number, part), {}), worker, j)
            _steps((self.any_writes if writes else self.any_reads).setdefault(number, {}),
                   worker, j)


def _join(clocks: dict[object, Clock], key: object, stamp: Clock) -> None:
    clock = clocks.get(key)
    if clock is None:
        clocks[key] = dict(stamp)
        return
    for worker, count in stamp.items():
        if count > clock.get(worker, 0):
            clock[worker] = count


def _steps(table: dict[int, list[int]], worker: int, j: int) -> None:
    """Add step ``j`` to ``worker``'s list in ``table``, once."""
    steps = table.setdefault(worker, [])
    if not steps or steps[-1] != j:
        steps.append(j)
