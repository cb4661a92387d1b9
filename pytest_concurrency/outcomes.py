"""Worker failures: capture, crash classification, folding and the grouped report.

A runner hands every exception a worker raised (with the worker's identity)
to :func:`describe`; children do this before sending failures to the parent,
so a failure is plain picklable data by the time it crosses a process
boundary.  :func:`raise_for` turns the failures of one run into a pytest
outcome: skip, xfail, or one :class:`WorkerFailures` exception group whose
report (see :func:`render`) lists every distinct failure once, with the
workers, pids and iterations that hit it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import os
import pickle
import signal
import traceback
import unittest
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import pluggy
import pytest

from . import standins, texts
from .compat import ReprFileLocation, TerminalRepr, TerminalWriter, Traceback, TracebackEntry
from .context import WorkerInfo

if TYPE_CHECKING:
    from . import progress

Failed, Skipped, XFailed = pytest.fail.Exception, pytest.skip.Exception, pytest.xfail.Exception

_PACKAGE_DIR = str(Path(__file__).parent)
# Each with a trailing separator: ".../pytest/" must not hide ".../pytest_asyncio/".
_HIDDEN_DIRS = tuple(os.path.join(path, "") for path in (
    _PACKAGE_DIR,
    str(Path(pytest.__file__).parent.parent / "_pytest"),
    str(Path(pluggy.__file__).parent),
))


def _package_dir(name: str) -> str:
    """The directory of package ``name``, with a trailing separator, found without
    importing it (a thread-mode session never imports multiprocessing)."""
    spec = importlib.util.find_spec(name)
    origin = spec.origin if spec is not None else None
    return os.path.join(str(Path(origin).parent), "") if origin else "\0"  # \0: no path


# A child's stack dump also runs through multiprocessing and pytest's startup.
_HARNESS_DIRS = _HIDDEN_DIRS + (
    _package_dir("multiprocessing"),
    os.path.join(str(Path(pytest.__file__).parent), ""),
    "<frozen runpy>",
)


class RemoteWorkerError(Exception):
    """Stands in for an exception that could not be pickled back from a child."""


class WorkerCrashed(Exception):
    """A child process died without reporting back."""


class WorkerTimeout(Exception):
    """The run did not finish within its timeout."""


class WorkerExit(Exception):
    """SystemExit or KeyboardInterrupt raised in a worker (never ends the session)."""


@dataclasses.dataclass
class Failure:
    """One failure of one worker (or of one child process, for crashes)."""

    kind: str  # "exception", "crash", "timeout", "skip", "xfail"
    workers: tuple[int, ...]
    mode: str
    pid: int
    iteration: int | None
    summary: str  # one line: "ValueError: boom", "killed by SIGSEGV (signal 11)"
    text: str  # formatted traceback or crash details
    key: tuple[Any, ...] = ()
    exc: BaseException | None = None
    replay: str | None = None  # explore: the replay token of the failing schedule

    @property
    def label(self) -> str:
        who = describe_workers(self.workers)
        where = f" in iteration {self.iteration}" if self.iteration is not None else ""
        return f"{who} ({self.mode} mode, pid {self.pid}){where}"


@dataclasses.dataclass
class Group:
    """Identical failures folded together."""

    first: Failure
    members: list[Failure]

    @property
    def count(self) -> int:
        return len(self.members)


# ---------------------------------------------------------------- capture


def _visible(entry: TracebackEntry) -> bool:
    return _shown(str(entry.path), entry.frame.f_globals)


def _shown(filename: str, f_globals: dict[str, Any]) -> bool:
    if f_globals.get("__unittest"):  # unittest's assert helpers, as pytest does
        return False
    return not filename.startswith(_HIDDEN_DIRS)


def _from_first_shown(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` from its first frame that is shown (its last if none is).  pytest
    before 8.3 formats an exception group with the traceback module from the
    first frame of its traceback, without the filter, so the plugin's frames that
    ran the body would be shown."""
    while (tb is not None and tb.tb_next is not None
           and not _shown(tb.tb_frame.f_code.co_filename, tb.tb_frame.f_globals)):
        tb = tb.tb_next
    return tb


def is_harness(filename: str) -> bool:
    """Whether a frame of ``filename`` belongs to pytest, pluggy, multiprocessing,
    this plugin or the interpreter's start-up, not to the code under test."""
    return filename.startswith(_HARNESS_DIRS)


def trim_dump(text: str) -> str:
    """Fold stack-dump frame lines of pytest, pluggy, multiprocessing and this plugin."""
    out: list[str] = []
    hidden = 0
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith('File "') and stripped[6:].startswith(_HARNESS_DIRS):
            hidden += 1
            continue
        if hidden:
            out.append(f"  ... {hidden} frame{'s' if hidden > 1 else ''} of the test "
                       "harness ...")
            hidden = 0
        out.append(line)
    if hidden:
        out.append(f"  ... {hidden} frame{'s' if hidden > 1 else ''} of the test harness ...")
    return "\n".join(out)


def _filter(excinfo: pytest.ExceptionInfo[BaseException]) -> Traceback:
    tb = excinfo.traceback.filter(excinfo)  # honours __tracebackhide__
    return tb.filter(_visible) or tb


def format_exception(exc: BaseException, style: str = "long") -> str:
    """Format like pytest would, assertion-rewrite detail included.  An exception
    too big to format whole is formatted as its stand-in (see standins.py), one
    pytest cannot format at all as the traceback module does, and the text is
    bounded in bytes and lines (see texts.py)."""
    if isinstance(exc, Failed) and not exc.pytrace:
        return texts.middle(texts.safe_str(exc.msg))
    shown = standins.bounded(exc)
    try:
        text = _native(shown) if style == "native" else _pytest_format(shown, style)
    except Exception:  # noqa: BLE001 - e.g. __notes__ that is no list of strings
        try:
            text = _native(shown)
        except Exception as error:  # noqa: BLE001 - nothing can format it
            text = (f"{_summary(exc)}\n(its traceback could not be formatted: "
                    f"{_summary(error)})")
    return texts.middle(text)


def _native(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).rstrip()


def _pytest_format(exc: BaseException, style: str) -> str:
    # pytest's "line" and "no" are "short" here, any other style "long"
    short = style in ("short", "line", "no")
    tb = _from_first_shown(exc.__traceback__)
    info = (pytest.ExceptionInfo.from_exception(exc) if tb is None
            else pytest.ExceptionInfo.from_exc_info((type(exc), exc, tb)))
    out = io.StringIO()
    writer = TerminalWriter(file=out)
    writer.hasmarkup = False
    info.getrepr(style="short" if short else "long", tbfilter=_filter,
                 chain=True).toterminal(writer)
    return out.getvalue().strip("\n").rstrip()  # keep the first line's indent


def _key(exc: BaseException) -> tuple[Any, ...]:
    """Failures of one type raised along the same path fold together.

    Their messages may differ (an assertion's explanation shows each worker's
    own values): the report shows the first in full and lists the others.
    """
    frames = tuple(
        (f.filename, f.lineno) for f in traceback.extract_tb(exc.__traceback__)
    )
    return (type(exc).__module__, type(exc).__qualname__, frames)


_summary = standins.summary


def describe(raw: Iterable[tuple[BaseException, WorkerInfo]], style: str) -> list[Failure]:
    """Turn ``(exception, WorkerInfo)`` pairs into Failures.

    Tracebacks are formatted once per distinct failure.
    """
    formatted: dict[tuple[Any, ...], str] = {}
    failures = []
    for exc, info in raw:
        key = _key(exc)
        summary = _summary(exc)
        if isinstance(exc, Skipped):
            kind, text = "skip", texts.middle(texts.safe_str(exc.msg))
        elif isinstance(exc, unittest.SkipTest):  # @unittest.skip, self.skipTest()
            kind, text = "skip", texts.middle(texts.safe_str(exc))
        elif isinstance(exc, XFailed):
            kind, text = "xfail", texts.middle(texts.safe_str(exc.msg))
        else:
            kind = "exception"
            if (key, summary) not in formatted:
                formatted[key, summary] = format_exception(exc, style)
            text = formatted[key, summary]
        failures.append(Failure(
            kind=kind, workers=(info.index,), mode=info.mode, pid=info.pid,
            iteration=info.iteration, summary=summary, text=text, key=key, exc=exc,
        ))
    return failures


PORTABLE_BYTES = 1024 * 1024  # a pickled exception larger than this stays behind


def make_portable(failures: Sequence[Failure]) -> list[Failure]:
    """Drop exception objects that cannot cross a process boundary: those that
    cannot be pickled, whose pickling or unpickling raises (anything), or that
    pickle to more than PORTABLE_BYTES.  Their failures keep their text."""
    out = []
    for failure in failures:
        exc = failure.exc
        if exc is not None:
            try:
                data = pickle.dumps(exc)
                if len(data) > PORTABLE_BYTES:
                    raise ValueError("too big to send")
                pickle.loads(data)
            except BaseException:  # noqa: BLE001 - a __reduce__ may raise SystemExit too
                exc = None
            else:
                exc.__traceback__ = None
                exc.__context__ = exc.__cause__ = None
        out.append(dataclasses.replace(failure, exc=exc))
    return out


# ---------------------------------------------------------------- crashes


def describe_exit(exitcode: int) -> str:
    """'killed by SIGSEGV (signal 11)' or 'exited with status 3'."""
    if exitcode < 0:
        number = -exitcode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
            return f"killed by {name}"
        return f"killed by {name} (signal {number})"
    return f"exited with status {exitcode}"


def exit_hint(exitcode: int) -> str:
    """What else a way of dying may mean, or ''."""
    if exitcode == -signal.SIGKILL:
        return ("SIGKILL is also what the kernel's OOM killer and container memory limits "
                "send: check the memory the test uses.")
    return ""


def crash(workers: Sequence[int], mode: str, pid: int, iteration: int | None,
          exitcode: int, elapsed: float, details: str, who: str = "") -> Failure:
    """'worker 3 (pid 1234) killed by SIGSEGV (signal 11) in iteration 17 after 0.42s'."""
    who = who or describe_workers(workers)
    when = f"in iteration {iteration}" if iteration is not None else "before its first iteration"
    summary = f"{who} (pid {pid}) {describe_exit(exitcode)} {when} after {elapsed:.2f}s"
    hint = exit_hint(exitcode)
    if hint:
        details = f"{hint}\n{details}"
    details = texts.middle(details)
    return Failure(kind="crash", workers=tuple(workers), mode=mode, pid=pid,
                   iteration=iteration, summary=summary, text=details,
                   key=("crash", exitcode, tuple(workers)))


def timeout(workers: Sequence[int], mode: str, pid: int, seconds: float,
            details: str, verdict: progress.Verdict | None = None,
            elapsed: float | None = None) -> Failure:
    """A run given up: stuck at its timeout ("timed out after 5s: stuck (...)"),
    or still making progress at its cap ("still running after 50s, making
    progress (...)"), which is never called a hang."""
    if verdict is not None and verdict.progressing:
        summary = (f"still running after {elapsed or seconds:.0f}s, {verdict.describe()}; "
                   f"stopped at the timeout cap (timeout {seconds:g}s, see "
                   "--concurrency-timeout-cap)")
    elif verdict is not None:
        summary = f"timed out after {seconds:g}s: {verdict.describe()}"
    else:
        summary = f"timed out after {seconds:g}s"
    return Failure(kind="timeout", workers=tuple(workers), mode=mode, pid=pid,
                   iteration=None, summary=summary, text=texts.middle(details),
                   key=("timeout",))


# ---------------------------------------------------------------- report


def describe_workers(indices: Iterable[int]) -> str:
    """'worker 3' or 'workers 0-2, 5' ('the run' for none: a failure of the whole run,
    such as an explored schedule's rejected outcome)."""
    indices = sorted(set(indices))
    if not indices:
        return "the run"
    if len(indices) == 1:
        return f"worker {indices[0]}"
    ranges = []
    start = prev = indices[0]
    for i in indices[1:] + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        ranges.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return "workers " + ", ".join(ranges)


def fold(failures: Iterable[Failure]) -> list[Group]:
    groups: dict[tuple[Any, ...], Group] = {}
    for failure in failures:
        group = groups.get(failure.key)
        if group is None:
            groups[failure.key] = Group(failure, [failure])
        else:
            group.members.append(failure)
    return list(groups.values())


def _group_label(group: Group) -> str:
    if group.count == 1:
        return group.first.label
    workers = [w for f in group.members for w in f.workers]
    pids = sorted({f.pid for f in group.members})
    iterations = sorted({f.iteration for f in group.members if f.iteration is not None})
    text = f"{group.count} times: {describe_workers(workers)} ({group.first.mode} mode, "
    text += f"pid {pids[0]}" if len(pids) == 1 else f"pids {_short_list(pids)}"
    text += ")"
    if iterations:
        text += f" in iteration{'s' if len(iterations) > 1 else ''} {_short_list(iterations)}"
    return text


def _short_list(values: Sequence[int], limit: int = 8) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def headline(groups: Sequence[Group], mode: str, workers: int,
             seed: int | None = None) -> str:
    failed = {w for g in groups for f in g.members for w in f.workers}
    distinct = len(groups)
    who = f"{len(failed)} of {workers} workers" if failed else "the run"
    text = (f"{who} failed in {mode} mode "
            f"({distinct} distinct failure{'s' if distinct != 1 else ''}")
    if seed is not None:
        text += f"; start jitter seed {seed}"
    return text + ")"


def render(exc: WorkerFailures, style: str = "long") -> str:
    """The report pytest shows for a WorkerFailures group."""
    groups = exc.groups
    lines = [str(exc.message)]
    if style == "line":
        lines += [f"  [{i}] {_group_label(g)}: {g.first.summary}"
                  for i, g in enumerate(groups, 1)]
        return "\n".join(lines)
    for i, group in enumerate(groups, 1):
        title = f" failure {i} of {len(groups)}: {_group_label(group)} "
        lines.append("")
        lines.append(title.center(max(80, len(title) + 10), "_"))
        lines.append(group.first.summary)
        if group.first.text:
            lines.append("")
            lines.append(group.first.text)
        lines.extend(_other_messages(group))
    for note in getattr(exc, "__notes__", ()):  # what the run adds (a shared instance...)
        lines += ["", note]
    return "\n".join(lines)


class Rendered(TerminalRepr):
    """A test report's ``longrepr`` for a WorkerFailures group: the rendering,
    and a one-line ``reprcrash.message`` (the headline) for the short test
    summary and JUnit, which otherwise repeat the whole text."""

    def __init__(self, text: str, headline: str, path: str, lineno: int) -> None:
        self.text = text
        self.reprcrash = ReprFileLocation(path, lineno, headline)

    def toterminal(self, tw: TerminalWriter) -> None:
        for line in self.text.splitlines():
            tw.line(line)


def longrepr(exc: WorkerFailures, style: str,
             location: tuple[str, int | None, str]) -> Rendered:
    """``render(exc, style)`` for a report of the item at ``location``
    (pytest's ``(path, lineno, name)``)."""
    path, lineno, _ = location
    return Rendered(render(exc, style), str(exc.message), str(path), (lineno or 0) + 1)


def _other_messages(group: Group, limit: int = 10) -> list[str]:
    """The same failure with different messages: one line per other message."""
    seen = {group.first.summary}
    others = []
    for failure in group.members:
        if failure.summary not in seen:
            seen.add(failure.summary)
            others.append(f"  {failure.label}: {failure.summary}")
    if not others:
        return []
    lines = ["", f"the same failure with {len(others)} other message"
             f"{'s' if len(others) > 1 else ''}:"]
    lines += others[:limit]
    if len(others) > limit:
        lines.append(f"  ... and {len(others) - limit} more")
    return lines


class WorkerFailures(ExceptionGroup):
    """Every distinct failure of one concurrent run.

    ``.exceptions`` holds one exception per distinct failure (each with a note
    naming the workers); ``.groups`` the folded :class:`Failure` records.
    """

    def __new__(cls, message: str, exceptions: Sequence[Exception],
                groups: Iterable[Group] = ()) -> Self:
        return super().__new__(cls, message, exceptions)

    def __init__(self, message: str, exceptions: Sequence[Exception],
                 groups: Iterable[Group] = ()) -> None:
        super().__init__(message, exceptions)
        self.groups = list(groups)

    # split() and subgroup() derive from parts of .exceptions, all of them Exceptions:
    # not the generic pair of overloads typeshed gives BaseExceptionGroup.derive
    def derive(self, excs: Sequence[Exception]) -> WorkerFailures:  # type: ignore[override]
        return WorkerFailures(self.message, excs, self.groups)

    def __str__(self) -> str:
        return render(self)


def _representative(group: Group) -> Exception:
    """The exception that stands for ``group`` in the WorkerFailures group (pytest
    formats the group too, before its report is replaced by :func:`render`)."""
    failure = group.first
    exc = standins.bounded(failure.exc) if failure.exc is not None else None
    if failure.kind == "crash":
        exc = WorkerCrashed(f"{failure.label}: {failure.summary}")
    elif failure.kind == "timeout":
        exc = WorkerTimeout(f"{failure.label}: {failure.summary}")
    elif isinstance(exc, (SystemExit, KeyboardInterrupt)):
        exc = WorkerExit(f"{failure.summary}")
    elif not isinstance(exc, Exception):
        exc = RemoteWorkerError(f"{failure.summary}\n{failure.text}")
    exc.add_note(f"[{_group_label(group)}]")
    return exc


def raise_for(failures: Sequence[Failure], mode: str, workers: int,
              seed: int | None = None) -> None:
    """Raise the pytest outcome for a run's failures (nothing if there are none)."""
    real = [f for f in failures if f.kind not in ("skip", "xfail")]
    # A worker's failure aborts the shared barrier; workers waiting on it then see
    # BrokenBarrierError, a consequence rather than a finding of its own.
    causes = [f for f in real if f.key[1:2] != ("BrokenBarrierError",)]
    if causes:
        real = causes
    if real:
        groups = fold(sorted(real, key=lambda f: (f.workers, f.iteration or 0)))
        raise WorkerFailures(
            headline(groups, mode, workers, seed),
            [_representative(g) for g in groups],
            groups,
        )
    for kind, outcome in (("skip", pytest.skip), ("xfail", pytest.xfail)):
        found = [f for f in failures if f.kind == kind]
        if not found:
            continue
        exc = found[0].exc
        if kind == "skip" and exc is not None and exc.__traceback__ is not None:
            # The worker's own exception: pytest reports the skip where the test
            # called it, not here.
            raise exc
        outcome(f"{found[0].text} ({found[0].label})")
