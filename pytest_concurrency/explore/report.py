"""Human-readable text: deadlock cycles and the failing interleaving as columns."""
import linecache
import os
import sys

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
    "join": "waits in join() for {name} to finish, which it never will",
}


def site_text(site):
    if not site:
        return "?"
    fn, ln = site[0], site[1]
    return f"{os.path.basename(fn)}:{ln}"


def _frames_of(schedule):
    frames = []
    current = sys._current_frames()
    for w in schedule.workers:
        f = current.get(w.ident)
        while f is not None:
            if schedule.is_user(f.f_code.co_filename):
                frames.append(f)
            f = f.f_back
    return frames


def name_of(obj, schedule, frames=None):
    """Best-effort variable name of a primitive, e.g. ``self.lock_a`` or ``LOCK``."""
    obj = getattr(obj, "_outer", obj)
    kind = type(obj).__name__
    state = schedule.state
    spaces = [("state", state)]
    for f in frames if frames is not None else _frames_of(schedule):
        spaces.extend(f.f_locals.items())
        spaces.extend((k, v) for k, v in f.f_globals.items() if not k.startswith("__"))
    for key, value in spaces:
        if value is obj:
            return key
    for key, value in spaces:
        attrs = getattr(value, "__dict__", None)
        if isinstance(value, dict):
            attrs = value
        if isinstance(attrs, dict) and not isinstance(value, type(sys)):
            for k2, v2 in list(attrs.items()):
                if v2 is obj:
                    return f"{key}.{k2}" if isinstance(k2, str) else f"{key}[{k2!r}]"
    return f"{kind} #{getattr(obj, '_serial', '?')}"


def describe_deadlock(schedule, live):
    """Text naming what each stuck worker holds and waits for, cycle first."""
    frames = _frames_of(schedule)
    lines = []
    stuck_outside = [w for w in live if w.status == "detached"]
    for w in live:
        held = [f"{name_of(p, schedule, frames)} ({site_text(p._site)})" for p in w.held]
        holds = f"holds {', '.join(held)} and " if held else ""
        if w.status == "detached":
            stack = schedule.worker_stack(w).rstrip()
            lines.append(f"worker {w.index} {holds}is blocked outside the scheduler's view "
                         f"(a lock created before the run, I/O or a C call):\n{stack}")
            continue
        wait = w.wait
        name = name_of(wait.resource, schedule, frames) if wait.resource is not None else "?"
        text = _KIND_TEXT.get(wait.what, "waits for {name}").format(name=name)
        owner = getattr(wait.resource, "_owner", None)
        tail = ""
        if wait.what == "lock" and owner is not None and owner is not w:
            tail = f", held by worker {owner.index}"
        elif wait.what == "lock" and owner is w:
            tail = ", which it already holds (not reentrant)"
        lines.append(f"worker {w.index} {holds}{text} ({site_text(wait.site)}){tail}")
    cycle = _cycle(live)
    head = "deadlock: every live worker is blocked"
    if stuck_outside:
        head = "hang: no worker can make progress (some are blocked outside the scheduler)"
    if cycle:
        head += "; wait-for cycle " + " -> ".join(f"worker {w.index}" for w in cycle)
    return head + "\n  " + "\n  ".join(lines)


def _cycle(live):
    for start in live:
        seen, w = [], start
        while w is not None and w not in seen:
            seen.append(w)
            wait = w.wait if w.status == "blocked" else None
            w = getattr(wait.resource, "_owner", None) if wait and wait.what == "lock" else None
        if w is not None and w in seen:
            return seen[seen.index(w):] + [w]
    return None


_ACCESS_VERBS = ("reads", "writes", "deletes", "next item", "tests 'in'")  # instrument.py


def _source(fn, ln):
    return linecache.getline(fn, ln).strip() if ln else ""


def interleaving_rows(trace, limit=20):
    """Merge consecutive steps of one worker on one line; keep the last ``limit`` rows."""
    rows = []
    for widx, fn, ln, func, what in trace:
        if rows and rows[-1][0] == widx and rows[-1][1] == fn and rows[-1][2] == ln:
            if what and what not in rows[-1][4]:
                rows[-1][4].append(what)
            continue
        rows.append([widx, fn, ln, func, [what] if what else []])
    return rows[-limit:], len(rows)


def render_interleaving(trace, nworkers, limit=20, width=None):
    rows, total = interleaving_rows(trace, limit)
    if not rows:
        return "(no user-code steps recorded)"
    width = width or max(34, min(60, 120 // max(nworkers, 1)))
    head = [f"worker {i}" for i in range(nworkers)]
    out = []
    if total > len(rows):
        out.append(f"(last {len(rows)} of {total} steps)")
    out.append(("step | " + " | ".join(h.ljust(width) for h in head)).rstrip())
    out.append("-----+-" + "-+-".join("-" * width for _ in head))
    first = total - len(rows) + 1
    for n, (widx, fn, ln, _func, whats) in enumerate(rows, first):
        text = f"{os.path.basename(fn)}:{ln}  {_source(fn, ln)}"
        ops = [w for w in whats if not w.startswith(_ACCESS_VERBS)]
        if ops:  # an operation on a primitive says more than the lookup of its method
            whats = ops
        if whats:
            text += "  [" + ", ".join(w.split(":")[0] for w in whats) + "]"
        if len(text) > width:
            text = text[: width - 1] + "…"
        cells = [text.ljust(width) if i == widx else " " * width for i in range(nworkers)]
        out.append(f"{n:>4} | " + " | ".join(cells).rstrip())
    return "\n".join(out)
