"""Human-readable text: deadlock cycles and the failing interleaving as columns."""

from __future__ import annotations

import dataclasses
import linecache
import os
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

from .scheduler import BLOCKED, DETACHED, Schedule, Site, Step, Worker

_KIND_TEXT = {
    "lock": "waits for {name}",
    "notify": "waits on {name} for a notify that nobody will send",
    "item": "waits for an item on {name} that nobody will put",
    "space": "waits for space on {name} that nobody will make",
    "tasks": "waits in join() on {name} for task_done() calls that nobody will make",
    "event": "waits for {name} to be set, which nobody will do",
    "semaphore": "waits for {name}, which nobody will release",
    "barrier": "waits at {name} for parties that will never arrive",
    "sleep": "sleeps",
    "select": "waits in its event loop (asyncio.run) for a callback that nobody will make",
    "join": "waits in join() for {name} to finish, which it never will",
}


def site_text(site: Site | None) -> str:
    """``file.py:12`` for a site; ``?`` when there is none."""
    if not site:
        return "?"
    filename, lineno = site[0], site[1]
    return f"{os.path.basename(filename)}:{lineno}"


def _frames_of(schedule: Schedule) -> list[FrameType]:
    """The user-code frames of the schedule's live worker threads, innermost first."""
    frames = []
    current = sys._current_frames()
    for worker in schedule.workers:
        frame = current.get(worker.ident) if worker.ident is not None else None
        while frame is not None:
            if schedule.is_user(frame.f_code.co_filename):
                frames.append(frame)
            frame = frame.f_back
    return frames


def name_of(obj: object, schedule: Schedule, frames: list[FrameType] | None = None) -> str:
    """Best-effort variable name of a primitive, e.g. ``self.lock_a`` or ``LOCK``."""
    return name_in(obj, schedule.state, frames if frames is not None else _frames_of(schedule))


def name_in(obj: object, state: object, frames: list[FrameType]) -> str:
    """The name of ``obj`` as the schedule's ``state`` or the locals and globals of
    ``frames`` (user code) reach it: ``state.lock``, ``self.lock_a``, ``LOCK``."""
    obj = getattr(obj, "_outer", obj)
    kind = type(obj).__name__
    spaces: list[tuple[str, Any]] = [("state", state)]  # (name, user value)
    for frame in frames:
        spaces.extend(frame.f_locals.items())
        spaces.extend((key, value) for key, value in frame.f_globals.items()
                      if not key.startswith("__"))
    for key, value in spaces:
        if value is obj:
            return key
    for key, value in spaces:
        attrs = getattr(value, "__dict__", None)
        if isinstance(value, dict):
            attrs = value
        if isinstance(attrs, dict) and not isinstance(value, type(sys)):
            for attr, attr_value in list(attrs.items()):
                if attr_value is obj:
                    return f"{key}.{attr}" if isinstance(attr, str) else f"{key}[{attr!r}]"
    return f"{kind} #{getattr(obj, '_serial', '?')}"


def describe_deadlock(schedule: Schedule, live: list[Worker]) -> str:
    """Text naming what each stuck worker holds and waits for, cycle first."""
    frames = _frames_of(schedule)
    lines = []
    stuck_outside = [worker for worker in live if worker.status == DETACHED]
    for worker in live:
        held = [f"{name_of(lock, schedule, frames)} ({site_text(lock._site)})"
                for lock in worker.held]
        holds = f"holds {', '.join(held)} and " if held else ""
        if worker.status == DETACHED:
            stack = schedule.worker_stack(worker).rstrip()
            lines.append(f"worker {worker.index} {holds}is blocked outside the scheduler's "
                         f"view (a lock created before the run, I/O or a C call):\n{stack}")
            continue
        wait = worker.wait
        name = name_of(wait.resource, schedule, frames) if wait.resource is not None else "?"
        text = _KIND_TEXT.get(wait.what, "waits for {name}").format(name=name)
        owner = getattr(wait.resource, "_owner", None)
        tail = ""
        if wait.what == "lock" and owner is not None and owner is not worker:
            tail = f", held by worker {owner.index}"
        elif wait.what == "lock" and owner is worker:
            tail = ", which it already holds (not reentrant)"
        lines.append(f"worker {worker.index} {holds}{text} ({site_text(wait.site)}){tail}")
    cycle = _cycle(live)
    head = "deadlock: every live worker is blocked"
    if stuck_outside:
        head = "hang: no worker can make progress (some are blocked outside the scheduler)"
    if cycle:
        head += "; wait-for cycle " + " -> ".join(f"worker {worker.index}" for worker in cycle)
    return head + "\n  " + "\n  ".join(lines)


def _cycle(live: list[Worker]) -> list[Worker] | None:
    """The first wait-for cycle among ``live`` (lock -> owner), its first worker repeated."""
    for start in live:
        seen: list[Worker] = []
        worker: Worker | None = start
        while worker is not None and worker not in seen:
            seen.append(worker)
            wait = worker.wait if worker.status == BLOCKED else None
            worker = getattr(wait.resource, "_owner", None) if wait and wait.what == "lock" \
                else None
        if worker is not None and worker in seen:
            return seen[seen.index(worker):] + [worker]
    return None


# What instrument.py says of an access, and what accesses.py says of other instructions
# DPOR describes; anything else is an operation on a primitive (acquire, sleep(0)...).
_DATA_VERBS = ("reads", "writes", "deletes", "next item", "tests 'in'")
_ACCESS_VERBS = (*_DATA_VERBS, "calls", "enters with", "exits with", "operates", "compares",
                 "unpacks")


def _source(filename: str, lineno: int) -> str:
    return linecache.getline(filename, lineno).strip() if lineno else ""


@dataclasses.dataclass
class Row:
    """A line of the interleaving table: consecutive steps of one worker on one line."""

    worker: int  # the worker's index
    filename: str
    lineno: int
    funcname: str
    whats: list[str]  # what the steps did there, each once, in order


def interleaving_rows(trace: Sequence[Step], limit: int = 20) -> tuple[list[Row], int]:
    """Merge consecutive steps of one worker on one line; keep the last ``limit`` rows.

    Returns those rows and the number of rows before the cut."""
    rows: list[Row] = []
    for worker, filename, lineno, funcname, what in trace:
        if rows and rows[-1].worker == worker and rows[-1].filename == filename and \
                rows[-1].lineno == lineno:
            if what and what not in rows[-1].whats:
                rows[-1].whats.append(what)
            continue
        rows.append(Row(worker, filename, lineno, funcname, [what] if what else []))
    return rows[-limit:], len(rows)


def render_interleaving(trace: Sequence[Step], nworkers: int, limit: int = 20,
                        width: int | None = None, titles: Sequence[str] | None = None) -> str:
    """The last ``limit`` rows of the trace as a table, one column per worker
    (headed ``titles``, by default "worker N")."""
    rows, total = interleaving_rows(trace, limit)
    if not rows:
        return "(no user-code steps recorded)"
    width = width or max(34, min(60, 120 // max(nworkers, 1)))
    head = list(titles) if titles else [f"worker {index}" for index in range(nworkers)]
    out = []
    if total > len(rows):
        out.append(f"(last {len(rows)} of {total} steps)")
    out.append(("step | " + " | ".join(title.ljust(width) for title in head)).rstrip())
    out.append("-----+-" + "-+-".join("-" * width for _ in head))
    first = total - len(rows) + 1
    for number, row in enumerate(rows, first):
        text = f"{os.path.basename(row.filename)}:{row.lineno}  " \
            f"{_source(row.filename, row.lineno)}"
        whats = row.whats
        ops = [what for what in whats if not what.startswith(_ACCESS_VERBS)]
        data = [what for what in whats if what.startswith(_DATA_VERBS)]
        if ops:  # an operation on a primitive says more than the lookup of its method
            whats = ops
        elif data:  # the reads and writes say more than "operates", "calls"
            whats = data
        if whats:
            text += "  [" + ", ".join(what.split(":")[0] for what in whats) + "]"
        if len(text) > width:
            text = text[: width - 1] + "…"
        cells = [text.ljust(width) if index == row.worker else " " * width
                 for index in range(nworkers)]
        out.append(f"{number:>4} | " + " | ".join(cells).rstrip())
    return "\n".join(out)
