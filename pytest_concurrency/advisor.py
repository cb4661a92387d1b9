"""Recommend an execution mode per test from what each mode measured.

The decision guide, measured instead of guessed:

* **What the work is** comes from CPU time over wall time (``cpu / wall``, the
  number of CPUs kept busy).  Its ceiling is the parallelism a mode can reach:
  ``min(workers, usable_cpus)`` for process and hybrid mode, 1 for thread mode
  (the GIL; a body that releases it, or a free-threaded build, reads above 1
  and still counts as CPU-bound).  A mode's *load* is ``cpu / wall`` over that
  ceiling:

  - CPU-bound if load >= 0.7 (``CPU_BOUND``),
  - I/O-bound if load <= 0.3 (``IO_BOUND``),
  - mixed in between.

  Modes that disagree (one CPU-bound, one I/O-bound) make the work mixed; a
  mixed reading gives way to a definite one.

* **Which mode to use** comes from speedups (serial time / concurrent time for
  the same work; wall times when some speedup is missing).  Modes are ranked
  by cost: thread, then process, then hybrid.  The cheapest mode within
  ``TIE`` (10%) of the fastest one is recommended: threads win ties, since they
  start faster and share memory.  If no mode reaches ``TIE`` times the serial
  speed, nothing is recommended beyond saying so.

* **What the interpreter allows** bounds what a measurement can mean.  Under
  the GIL, threads that kept less than ``PARALLEL`` CPUs busy ran a CPU-bound
  body one at a time: a thread-mode speedup above ``TIE`` is then no speedup
  but an artefact of the machine's load (it changed between the serial and
  the concurrent rounds), and the advice says the measurement was
  inconclusive instead of recommending anything (load can lower the CPUs a
  run kept busy, never raise them: a body that releases the GIL shows it).
  On a free-threaded build with the GIL off, threads can run it in parallel.

``explore`` mode runs schedules, not work, and is ignored.

Tests measured once per mode (no budget: no paired rounds, no speedups) get
:func:`advise_from_runs`: what one run's CPU/wall ratio shows for certain
(waiting, or GIL-bound computing that processes ran in parallel), and
"not enough evidence" for everything else; a single run's wall times are not
compared, since machine load alone can change them twofold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

CPU_BOUND = 0.7
IO_BOUND = 0.3
TIE = 1.1
PARALLEL = 1.3  # CPUs kept busy on average above which a mode ran the body in parallel
MIN_EVIDENCE_WALL = 0.02  # seconds: shorter runs say little about computing vs waiting
NOT_ENOUGH = "not enough evidence"
COST_ORDER = ("thread", "process", "hybrid")
_LABELS = {"cpu": "CPU-bound", "io": "I/O-bound", "mixed": "Mixed CPU and I/O"}
_FRACTIONS = ((0.1, "a tenth of"), (0.25, "a quarter of"), (1 / 3, "a third of"), (0.5, "half"))


@dataclasses.dataclass(frozen=True)
class ModeMeasurement:
    """What one mode measured for the same amount of work.

    ``wall`` and ``cpu`` in seconds (``cpu`` counts all threads and child
    processes); ``peak_rss`` in bytes; ``speedup`` is serial time / concurrent
    time, None if not measured; ``availability`` the share of one CPU a thread
    got while it was measured (None if not measured; 1.0 on an idle machine).
    """

    mode: str
    workers: int
    wall: float
    cpu: float
    peak_rss: int | None
    speedup: float | None
    availability: float | None = None


def _busy(m: ModeMeasurement) -> float:
    """CPUs kept busy on average: CPU seconds per second of wall time."""
    return m.cpu / m.wall


def _share(m: ModeMeasurement) -> float:
    """The share of a CPU a thread got during ``m`` (1.0 if not measured).  On a
    busy machine a CPU-bound body gets only part of each CPU: its load is measured
    against what was there to be had, not against idle CPUs."""
    return min(1.0, max(m.availability or 1.0, 0.1))


def _classify(m: ModeMeasurement, usable_cpus: int, free_threaded: bool = False) -> str:
    # Under the GIL threads keep at most one CPU busy; free-threaded, as many as processes.
    ceiling = 1 if m.mode == "thread" and not free_threaded else \
        max(1, min(m.workers, usable_cpus))
    load = _busy(m) / (ceiling * _share(m))
    if load >= CPU_BOUND:
        return "cpu"
    if load <= IO_BOUND:
        return "io"
    return "mixed"


def _kind(ms: Sequence[ModeMeasurement], usable_cpus: int, free_threaded: bool = False) -> str:
    # Threads measure the body alone; processes' CPU time also counts starting and
    # ending every child, which can make waiting look like work: a body that waits
    # in thread mode waits.
    thread = next((m for m in ms if m.mode == "thread"), None)
    if thread is not None and _classify(thread, usable_cpus, free_threaded) == "io":
        return "io"
    definite = {_classify(m, usable_cpus, free_threaded) for m in ms} - {"mixed"}
    return definite.pop() if len(definite) == 1 else "mixed"


def _subject(mode: str) -> str:
    return {"thread": "threads reach", "process": "processes reach"}.get(
        mode, f"{mode} mode reaches"
    )


def _use(mode: str) -> str:
    return {"thread": "use threads", "process": "use processes"}.get(mode, f"use {mode} mode")


def _workers(n: int) -> str:
    return f"{n} worker" if n == 1 else f"{n} workers"


def _reach(m: ModeMeasurement) -> str:
    """``threads reach 7.6x with 8 workers``; needs ``m.speedup``."""
    return f"{_subject(m.mode)} {m.speedup:.1f}x with {_workers(m.workers)}"


def _evidence(m: ModeMeasurement) -> str:
    busy = _busy(m)
    shown = f"{busy:.2f}" if busy < 0.1 else f"{busy:.1f}"
    return f"CPU {shown} s per 1.0 s of wall in {m.mode} mode"


def _memory_share(fraction: float) -> str:
    """``a tenth of``, ``half``, ``37% of``: how ``fraction`` reads in a sentence."""
    for value, words in _FRACTIONS:
        if abs(fraction - value) <= 0.1 * value:
            return words
    if fraction < 0.01:
        return "under 1% of"
    return f"{round(fraction * 100)}% of"


def _memory_note(chosen: ModeMeasurement, ms: Sequence[ModeMeasurement]) -> str:
    """`` at a tenth of the memory of processes``, or '' if not known or not smaller."""
    if not chosen.peak_rss:
        return ""
    for other in ms:
        if other is chosen or other.mode not in ("process", "hybrid") or not other.peak_rss:
            continue
        fraction = chosen.peak_rss / other.peak_rss
        if fraction >= 0.9:
            return ""
        whom = "processes" if other.mode == "process" else f"{other.mode} mode"
        return f" at {_memory_share(fraction)} the memory of {whom}"
    return ""


def _single(m: ModeMeasurement, kind: str, usable_cpus: int,
            free_threaded: bool = False) -> str:
    head = f"{_LABELS[kind]} ({_evidence(m)})"
    threads = m.mode == "thread"
    if kind == "cpu" and threads:
        if _busy(m) >= PARALLEL:
            return f"{head}: threads run it in parallel, the GIL is released or absent"
        if usable_cpus <= 1:
            return f"{head}: with 1 usable CPU no mode can run it in parallel"
        if free_threaded and _busy(m) / _share(m) >= PARALLEL:
            # as many CPUs busy as a busy machine let threads have
            return (f"{head}: threads ran it in parallel as far as the busy machine let "
                    f"them (a thread got {_share(m):.0%} of a CPU)")
        if free_threaded:
            return (f"{head}: the GIL is off, yet threads kept about one CPU busy: the body "
                    "serializes on something else (a lock?)")
        return f"{head}: threads cannot run it in parallel under the GIL; try process mode"
    if kind == "cpu":
        if m.speedup is None:
            return f"{head}: {m.mode} mode keeps {_busy(m):.1f} CPUs busy"
        if m.speedup < TIE:
            return f"{head}: {m.mode} mode does not speed it up ({m.speedup:.1f}x)"
        return f"{head}: {_reach(m)}"
    if kind == "io" and threads:
        shown = f"{_reach(m)}; " if m.speedup is not None else "mostly waiting; "
        return f"{head}: {shown}threads suit it"
    if kind == "io":
        return f"{head}: mostly waiting; threads may do as well with less memory; try thread mode"
    shown = f"{_reach(m)}; " if m.speedup is not None else ""
    other = "process" if threads else "thread"
    return f"{head}: {shown}compare with {other} mode"


def _compare(ms: Sequence[ModeMeasurement], kind: str) -> str:
    label = _LABELS[kind]
    by_speedup = all(m.speedup is not None for m in ms)

    def rate(m: ModeMeasurement) -> float:
        return m.speedup if by_speedup and m.speedup is not None else 1 / m.wall

    best = max(ms, key=rate)  # the first, i.e. cheapest, of equals
    if by_speedup and best.speedup is not None and best.speedup < TIE:
        return (
            f"{label}: no mode ran it faster than serial (best: {best.mode} mode, "
            f"{best.speedup:.1f}x with {_workers(best.workers)})"
        )
    chosen = next(m for m in ms if rate(m) * TIE >= rate(best))
    cheapest = ms[0]
    if chosen is not cheapest:
        factor = rate(chosen) / rate(cheapest)
        return (
            f"{label}: {chosen.mode} mode ran {factor:.1f}x faster than "
            f"{cheapest.mode} mode; {_use(chosen.mode)}"
        )
    rival = max(ms[1:], key=rate)
    memory = _memory_note(chosen, ms)
    if chosen.speedup is not None:
        text = _reach(chosen) + memory
        if not memory and rival.speedup is not None:
            text += f" ({rival.mode} mode: {rival.speedup:.1f}x)"
    elif rate(chosen) >= rate(rival) * TIE:
        factor = rate(chosen) / rate(rival)
        text = f"{chosen.mode} mode ran {factor:.1f}x faster than {rival.mode} mode{memory}"
    else:
        text = f"{chosen.mode} mode ran as fast as {rival.mode} mode{memory}"
    return f"{label}: {text}; {_use(chosen.mode)}"


def _gil_artefact(ms: Sequence[ModeMeasurement], kind: str,
                  free_threaded: bool) -> ModeMeasurement | None:
    """The thread-mode measurement of a CPU-bound body whose speedup the GIL rules
    out (threads kept about one CPU busy at most, yet ran faster than serial), or None."""
    if kind != "cpu" or free_threaded:
        return None
    return next((m for m in ms if m.mode == "thread" and m.speedup is not None
                 and m.speedup >= TIE and _busy(m) < PARALLEL), None)


def _inconclusive(thread: ModeMeasurement, ms: Sequence[ModeMeasurement]) -> str:
    assert thread.speedup is not None
    others = "; ".join(f"{m.mode} mode: {m.speedup:.1f}x" for m in ms
                       if m is not thread and m.speedup is not None)
    share = thread.availability
    load = f" (a thread got {share:.0%} of a CPU)" if share is not None and share < 1 else ""
    return (f"inconclusive: CPU-bound, and threads cannot run it in parallel under the GIL "
            f"({_evidence(thread)}), yet they reached {thread.speedup:.1f}x with "
            f"{_workers(thread.workers)}{f' ({others})' if others else ''}: an artefact of "
            f"the machine's load, which changed between the serial and the concurrent "
            f"rounds{load}; measure again on a quieter machine")


def _order(mode: str) -> tuple[int, str]:
    return (COST_ORDER.index(mode) if mode in COST_ORDER else len(COST_ORDER), mode)


def advise(by_mode: Mapping[str, ModeMeasurement], usable_cpus: int,
           free_threaded: bool = False) -> str | None:
    """One sentence recommending a mode for a test, or None with nothing to go on.
    ``free_threaded``: the GIL was off, so threads could run the body in parallel."""
    ms = sorted(
        (m for m in by_mode.values() if m.mode != "explore" and m.wall > 0 and m.cpu >= 0),
        key=lambda m: _order(m.mode),
    )
    if not ms:
        return None
    usable_cpus = max(1, usable_cpus)
    kind = _kind(ms, usable_cpus, free_threaded)
    artefact = _gil_artefact(ms, kind, free_threaded)
    if artefact is not None:
        return _inconclusive(artefact, ms)
    if len(ms) == 1:
        return _single(ms[0], kind, usable_cpus, free_threaded)
    return _compare(ms, kind)


def advise_from_runs(by_mode: Mapping[str, ModeMeasurement], usable_cpus: int,
                     free_threaded: bool = False) -> str | None:
    """One sentence from a single run per mode (no speedups): I/O-bound work
    gets threads; GIL-bound computing that another mode ran in parallel gets
    that mode; anything else is ``not enough evidence``, saying what would
    give some.  None with no thread/process/hybrid run to go on."""
    ms = sorted((m for m in by_mode.values() if m.mode in COST_ORDER and m.wall > 0
                 and m.cpu >= 0), key=lambda m: _order(m.mode))
    if not ms:
        return None
    budget = "budget the test (@pytest.mark.concurrency_budget) for advice measured in rounds"
    shortest = min(ms, key=lambda m: m.wall)
    if shortest.wall < MIN_EVIDENCE_WALL:
        return (f"{NOT_ENOUGH}: a run of {shortest.wall * 1000:.1f} ms in {shortest.mode} mode "
                f"is too short to tell computing from waiting; {budget}")
    usable_cpus = max(1, usable_cpus)
    kind = _kind(ms, usable_cpus, free_threaded)
    thread = next((m for m in ms if m.mode == "thread"), None)
    first = thread or ms[0]
    if kind == "io":
        return f"{_LABELS['io']} ({_evidence(first)}): mostly waiting; use threads"
    if kind == "cpu" and thread is not None and _busy(thread) >= PARALLEL:
        return (f"{_LABELS['cpu']} ({_evidence(thread)}): threads run it in parallel, the "
                "GIL is released or absent; use threads")
    parallel = [m for m in ms if m.mode != "thread" and _busy(m) >= PARALLEL]
    if kind == "cpu" and thread is not None and parallel and free_threaded:
        return (f"{NOT_ENOUGH}: CPU-bound ({_evidence(thread)}) on a free-threaded build, "
                "where threads could run it in parallel but did not in this run; "
                f"{budget}")
    if kind == "cpu" and thread is not None and parallel:
        best = max(parallel, key=_busy)
        return (f"{_LABELS['cpu']} ({_evidence(thread)}; {best.mode} mode kept "
                f"{_busy(best):.1f} CPUs busy): threads cannot run it in parallel under "
                f"the GIL; {_use(best.mode)}")
    if kind == "cpu":
        why = "with 1 usable CPU none can" if usable_cpus == 1 else "is the machine busy?"
        return (f"{NOT_ENOUGH}: CPU-bound ({_evidence(first)}), but no mode kept more than "
                f"one CPU busy in its run ({why}); {budget}")
    return (f"{NOT_ENOUGH}: mixed computing and waiting ({_evidence(first)}); {budget}")
