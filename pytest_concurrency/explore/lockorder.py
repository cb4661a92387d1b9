"""Lock-order inversions: a potential deadlock even when no schedule deadlocked.

Whenever a worker that holds lock A takes lock B, the edge "A, then B" goes into
a graph kept across every schedule of one test, with where each lock was taken.
A cycle in it - one worker took A then B, another B then A - is a deadlock
waiting for the right interleaving, even if the two never overlapped in any
schedule that ran (the second worker started after the first was done, say).
A cycle is not reported when all its edges were taken under one more lock (a
gate lock: then the orders cannot interleave) or when one worker made all of it.

Locks are made afresh in every schedule, so they are known across schedules by
where they were made: file, line, and which of the locks made there it is.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable

LockKey = tuple[str, int, int]  # file and line where the lock was made, its ordinal there
Site = tuple[str, int, str]  # file, line, function of an acquisition
POLICIES = ("fail", "warn", "ignore")


@dataclasses.dataclass(frozen=True)
class Edge:
    """A worker holding lock ``first`` took lock ``second``."""

    first: LockKey
    second: LockKey
    worker: int
    first_site: Site  # where it took ``first``
    second_site: Site  # where it took ``second``
    names: tuple[str, str]  # the locks' names where they were taken (``self.a``)
    gates: frozenset[LockKey]  # the other locks it held


def _site(site: Site) -> str:
    return f"{os.path.basename(site[0])}:{site[1]}"


class LockOrder:
    """The lock-order graph of one exploration (or of one thread-mode run)."""

    MAX_EDGES = 8  # kept per ordered pair of locks: different workers, different gates

    def __init__(self) -> None:
        self.edges: dict[tuple[LockKey, LockKey], list[Edge]] = {}
        self.after: dict[LockKey, set[LockKey]] = {}  # lock -> locks taken while holding it
        self.reported: set[frozenset[LockKey]] = set()
        self.fresh: list[Edge] = []  # edges added since the last look for cycles

    def took(self, worker: int, taken: LockKey, site: Site,
             held: Iterable[tuple[LockKey, Site]], name: Callable[[LockKey], str]) -> None:
        """Worker ``worker`` took lock ``taken`` at ``site`` while holding ``held``
        (keys and where each was taken); ``name(key)`` names a lock for the report."""
        held = list(held)
        keys = frozenset(key for key, _site in held)
        for key, first_site in held:
            if key == taken:
                continue
            pair = (key, taken)
            known = self.edges.setdefault(pair, [])
            gates = keys - {key}
            if len(known) >= self.MAX_EDGES or any(
                    edge.worker == worker and edge.gates == gates for edge in known):
                continue
            edge = Edge(key, taken, worker, first_site, site, (name(key), name(taken)), gates)
            known.append(edge)
            self.after.setdefault(key, set()).add(taken)
            self.fresh.append(edge)

    def inversions(self) -> list[list[Edge]]:
        """Cycles closed by the edges added since the last call, not reported before:
        each a list of edges, one per lock in the cycle."""
        found = []
        fresh, self.fresh = self.fresh, []
        for edge in fresh:
            for path in self._paths(edge.second, edge.first, 4):
                cycle = self._pick([(edge.first, edge.second), *path])
                if cycle is None:
                    continue
                locks = frozenset(each.first for each in cycle)
                if locks not in self.reported:
                    self.reported.add(locks)
                    found.append(cycle)
        return found

    def _paths(self, start: LockKey, goal: LockKey,
               limit: int) -> list[list[tuple[LockKey, LockKey]]]:
        """Simple paths of at most ``limit`` edges from ``start`` to ``goal``."""
        out: list[list[tuple[LockKey, LockKey]]] = []

        def walk(node: LockKey, path: list[tuple[LockKey, LockKey]],
                 seen: set[LockKey]) -> None:
            if len(out) >= 16:
                return
            for nxt in sorted(self.after.get(node, ())):
                step = path + [(node, nxt)]
                if nxt == goal:
                    out.append(step)
                elif nxt not in seen and len(step) < limit:
                    walk(nxt, step, seen | {nxt})

        walk(start, [], {start})
        return out

    def _pick(self, pairs: list[tuple[LockKey, LockKey]]) -> list[Edge] | None:
        """One edge per pair such that more than one worker made them and no lock
        was held across all of them; None if there is no such choice."""
        def choose(index: int, chosen: list[Edge]) -> list[Edge] | None:
            if index == len(pairs):
                workers = {edge.worker for edge in chosen}
                gates = frozenset.intersection(*(edge.gates for edge in chosen))
                return list(chosen) if len(workers) > 1 and not gates else None
            for edge in self.edges.get(pairs[index], ()):
                picked = choose(index + 1, chosen + [edge])
                if picked is not None:
                    return picked
            return None

        return choose(0, [])


def describe(cycle: list[Edge]) -> str:
    """The report of one inversion: each worker's order, with where it took each lock."""
    names = " and ".join(dict.fromkeys(
        f"{edge.names[0]} (made at {os.path.basename(edge.first[0])}:{edge.first[1]})"
        for edge in cycle))
    lines = [f"lock-order inversion: {names} are taken in opposite orders, so the workers "
             "can deadlock"]
    for edge in cycle:
        lines.append(f"  worker {edge.worker} took {edge.names[0]} ({_site(edge.first_site)}), "
                     f"then {edge.names[1]} ({_site(edge.second_site)})")
    return "\n".join(lines)
