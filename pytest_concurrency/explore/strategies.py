"""How the next runnable worker is picked: PCT, random walk, bounded DFS, replay.

This module imports nothing of the scheduler (``spec`` reads :data:`STRATEGIES`
at every pytest start), so a strategy knows workers only as :class:`Indexed`.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Sequence
from typing import Protocol, TypeVar

STRATEGIES = ("pct", "random", "dfs", "dpor")


class Indexed(Protocol):
    """What a strategy sees of a worker (``scheduler.Worker``): its index."""

    @property
    def index(self) -> int: ...


W = TypeVar("W", bound=Indexed)


def _rng(seed: int, index: int) -> random.Random:
    return random.Random(seed * 1_000_003 + index)


class Strategy:
    """Picks, at every step of a schedule, which of the runnable workers goes next."""

    name = "?"
    exhausted = False
    divergence: str | None = None  # set by Replay when the run departs from the recording
    pruned = False  # set by DPOR when it stops a run that repeats an explored interleaving

    def attach(self, workers: Sequence[object]) -> None:
        """Called with the schedule's (growing) list of workers before it runs."""

    def begin(self, index: int, nworkers: int) -> None:
        """Called before schedule ``index``."""

    def choose(self, enabled: Sequence[W], current: W | None, step: int) -> W | None:
        """The worker of ``enabled`` that runs next; None: none may (replay diverged)."""
        raise NotImplementedError

    def end(self, steps: int) -> None:
        """Called after a schedule with the number of decisions it took."""

    def expects_detach(self) -> bool | None:
        return None  # None: no expectation (explore); True/False in replay

    def retry(self) -> None:
        pass


class RandomWalk(Strategy):
    """Uniform choice among runnable workers at every step."""

    name = "random"
    rng: random.Random  # one per schedule, from begin()

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def begin(self, index: int, nworkers: int) -> None:
        self.rng = _rng(self.seed, index)

    def choose(self, enabled: Sequence[W], current: W | None, step: int) -> W | None:
        return enabled[self.rng.randrange(len(enabled))]


class PCT(Strategy):
    """Probabilistic concurrency testing (Burckhardt et al. 2010), depth ``d``.

    Random distinct priorities; d-1 change points lower the running worker below
    everyone. Steps are counted only where a preemption is possible (the running
    worker could go on and another could run), and k adapts to the most such steps
    seen in one schedule so far.  The change points are drawn from k + d - 1 places,
    not k: in a schedule with few preemption points they would otherwise land on
    every one of them, and the orders in which a worker goes on (runs to its end)
    would never be sampled.
    """

    name = "pct"
    rng: random.Random  # one per schedule, from begin()
    prio: dict[int, float]  # worker index -> priority; the highest runs
    changes: dict[int, int]  # preemptible step count -> priority (over depth) it lowers to
    count: int  # preemptible steps so far in this schedule

    def __init__(self, seed: int, depth: int = 3, k: int = 8) -> None:
        self.seed, self.depth, self.k = seed, depth, k
        self.longest = 0
        self.tried: set[tuple[int, tuple[int, ...], tuple[int, ...]]] = set()
        self.drawn: dict[tuple[int, int], int] = {}  # (span, workers) -> keys in tried

    def begin(self, index: int, nworkers: int) -> None:
        self.rng = _rng(self.seed, index)
        n = self.depth - 1
        span = max(self.k, n) + n  # a change point may fall past the schedule's end
        # Small spaces: do not draw the same parameters twice, while there are new ones.
        fresh = self.drawn.get((span, nworkers), 0) < \
            math.factorial(nworkers) * math.comb(span, n)
        for _ in range(64 if fresh else 1):
            prio = [self.depth + self.rng.random() for _ in range(nworkers)]
            points = tuple(sorted(self.rng.sample(range(1, span + 1), n)))
            key = (span, tuple(sorted(range(nworkers), key=prio.__getitem__)), points)
            if key not in self.tried:
                break
        if key not in self.tried:
            self.tried.add(key)
            self.drawn[(span, nworkers)] = self.drawn.get((span, nworkers), 0) + 1
        self.prio = dict(enumerate(prio))
        # as in the paper: the i-th change point lowers to d - i, below the earlier ones
        self.changes = dict(zip(points, range(n, 0, -1), strict=True))
        self.count = 0

    def _priority(self, worker: Indexed) -> float:
        priority = self.prio.get(worker.index)
        if priority is None:
            priority = self.prio[worker.index] = self.depth + self.rng.random()
        return priority

    def choose(self, enabled: Sequence[W], current: W | None, step: int) -> W | None:
        # Called at every switch point: one pass, no calls per worker.
        prio = self.prio
        if current is not None and len(enabled) > 1 and current in enabled:
            self.count += 1
            low = self.changes.get(self.count)
            if low is not None:
                prio[current.index] = low / self.depth
        best, best_priority = None, -1.0
        for worker in enabled:
            priority = prio.get(worker.index)
            if priority is None:
                priority = prio[worker.index] = self.depth + self.rng.random()
            if priority > best_priority:
                best, best_priority = worker, priority
        return best

    def end(self, steps: int) -> None:
        self.longest = max(self.longest, self.count)
        self.k = max(self.longest, 2)


@dataclasses.dataclass(slots=True)
class DfsFrame:
    """One decision of the DFS path: who could run, who ran, who has been tried."""

    enabled: list[int]  # indices of the runnable workers
    current: int | None  # index of the worker that ran the step before, if any
    chosen: int  # index of the worker this path runs here
    tried: set[int]  # indices already run here, on this path or an earlier one
    preemptions: int  # preemptions on the path before this decision


class DFS(Strategy):
    """Depth-first search over choices with at most ``bound`` preemptions."""

    name = "dfs"

    def __init__(self, seed: int = 0, bound: int = 2) -> None:
        self.bound = bound
        self.stack: list[DfsFrame] = []  # the current path, one frame per decision
        self.pos = 0

    def begin(self, index: int, nworkers: int) -> None:
        self.pos = 0

    @staticmethod
    def _preempts(frame: DfsFrame, choice: int) -> bool:
        return (frame.current is not None and frame.current in frame.enabled
                and choice != frame.current)

    def choose(self, enabled: Sequence[W], current: W | None, step: int) -> W | None:
        indices = [worker.index for worker in enabled]
        by_index = {worker.index: worker for worker in enabled}
        current_index = current.index if current is not None else None
        if self.pos < len(self.stack):
            frame = self.stack[self.pos]
            if frame.chosen in by_index and frame.enabled == indices:
                self.pos += 1
                return by_index[frame.chosen]
            del self.stack[self.pos:]  # diverged (timing): rebuild from here
        preemptions = 0
        if self.stack:
            last = self.stack[-1]
            preemptions = last.preemptions + (1 if self._preempts(last, last.chosen) else 0)
        default = current_index if current_index in by_index else indices[0]
        self.stack.append(DfsFrame(indices, current_index, default, {default}, preemptions))
        self.pos += 1
        return by_index[default]

    def end(self, steps: int) -> None:
        del self.stack[self.pos:]
        while self.stack:
            frame = self.stack[-1]
            for alternative in frame.enabled:
                if alternative in frame.tried:
                    continue
                cost = frame.preemptions + (1 if self._preempts(frame, alternative) else 0)
                if cost <= self.bound:
                    frame.chosen = alternative
                    frame.tried.add(alternative)
                    return
                frame.tried.add(alternative)
            self.stack.pop()
        self.exhausted = True


class Replay(Strategy):
    """Follows a recorded choice sequence; reports where execution departs from it."""

    name = "replay"

    def __init__(self, choices: list[int]) -> None:
        self.events = choices
        self.pos = 0
        self.step = 0
        self.divergence = None

    def choose(self, enabled: Sequence[W], current: W | None, step: int) -> W | None:
        self.step = step + 1
        if self.pos >= len(self.events):
            self.divergence = (f"replay diverged at step {self.step}: the recorded schedule "
                               f"ended, but workers {_names(enabled)} still want to run")
            return None
        want = self.events[self.pos]
        for worker in enabled:
            if worker.index == want:
                self.pos += 1
                return worker
        self.divergence = (f"replay diverged at step {self.step}: expected worker {want}, "
                           f"but only workers {_names(enabled)} are runnable")
        return None

    def expects_detach(self) -> bool | None:
        upcoming = self.events[self.pos] if self.pos < len(self.events) else 0
        if upcoming < 0:
            self.pos += 1
            return True
        return False

    def retry(self) -> None:
        self.divergence = None


def _names(workers: Sequence[Indexed]) -> str:
    return ", ".join(str(worker.index) for worker in workers) or "(none)"


def make(name: str, seed: int, *, depth: int = 3, preemption_bound: int = 2) -> Strategy:
    """The strategy called ``name`` (one of :data:`STRATEGIES` but ``dpor``, which
    ``engine`` makes: dpor.py builds on this module), seeded."""
    if name == "pct":
        return PCT(seed, depth=depth)
    if name == "random":
        return RandomWalk(seed)
    if name == "dfs":
        return DFS(seed, bound=preemption_bound)
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
