"""What every runner is given and hands back: one :class:`RunRequest` in, one
:class:`RunOutcome` out, whatever the execution model."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..context import WorkerInfo
from ..spec import RunSpec

if TYPE_CHECKING:
    import pytest

    from ..metrics import Measurement
    from ..outcomes import Failure
    from ..report.records import Exploration
    from ..results import Outcomes


class Calls(Protocol):
    """Per-call setup (per-worker fixtures): the keyword arguments of one call of
    the body, set up fresh for it, and their teardown after it.  ``setup`` raises
    naming what failed; both run in the thread (or child process) that runs the
    workers, never in two threads at once."""

    def setup(self, info: WorkerInfo) -> Mapping[str, Any]: ...

    def teardown(self, info: WorkerInfo) -> None: ...


class RunError(Exception):
    """The run could not be made as asked (a bad replay token, an unknown package to
    instrument); the message says why, and is the test's failure."""


class SetupFailed(Exception):
    """``run_actors(setup=...)``'s ``setup()`` raised while a run was exploring: the
    caller raises the user's exception again, without the plugin's frames."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error

    def user_error(self) -> Exception:
        """The exception ``setup()`` raised, its traceback starting at user code."""
        error = self.error
        tb = error.__traceback__
        while tb is not None and tb.tb_next is not None and \
                tb.tb_frame.f_globals.get("__name__", "").startswith("pytest_concurrency."):
            tb = tb.tb_next
        return error.with_traceback(tb)


@dataclasses.dataclass(frozen=True)
class ExploreOptions:
    """What explore mode needs beyond the spec (built only when exploring)."""

    replay: str | None = None  # run exactly the schedule of this token
    roots: tuple[str, ...] = ()  # directories of user code, whose steps are interleaved
    nodeid: str = ""  # the item's, for the replay command
    fresh_kwargs: Callable[[], Mapping[str, Any]] | None = None  # per schedule after the first
    # called after each schedule: (schedules done, schedules allowed, distinct outcomes)
    progress: Callable[[int, int, int], None] | None = None
    exploration: int = 0  # which exploration of the test this is (a test may run several)


@dataclasses.dataclass(frozen=True)
class Actors:
    """``run_actors`` in explore mode: one round per schedule, actor i in worker i,
    each round's outcome counted in ``tally`` (an ``Outcomes``)."""

    actors: tuple[Callable[..., Any], ...]
    setup: Callable[[], Any] | None
    arbiter: Callable[[Any], Any] | None
    tally: Outcomes
    # run_actors(expect=, forbid=): the search itself checks every round's outcome
    expect: tuple[Any, ...] | None = None
    forbid: tuple[Any, ...] | None = None


@dataclasses.dataclass(frozen=True)
class RunRequest:
    """One concurrent run: who runs what, how, and what to say when it fails."""

    spec: RunSpec
    target: Callable[..., Any] | None = None  # every worker calls target(*args, **kwargs)
    args: tuple = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    arg_kind: str = "argument"  # what kwargs are, in error messages ("fixture")
    tb_style: str = "long"  # pytest's --tb, for tracebacks formatted in workers
    config: pytest.Config | None = None  # spawned children explain assertions with it
    explore: ExploreOptions | None = None  # explore mode only
    actors: Actors | None = None  # explore mode's run_actors, instead of a target
    calls: Calls | None = None  # per-worker fixtures: every call's own kwargs


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """What a runner hands back: values, failures, captured output, wall time."""

    values: dict[int, list[Any]]  # worker index -> one value per completed iteration
    failures: list[Failure]
    outputs: list[tuple[str, str]]  # (report section title, text) from children
    wall: float
    seed: int | None = None  # start-jitter seed of thread/process/hybrid runs
    exploration: Exploration | None = None  # explore mode: what was explored (see explore.py)
    child_peaks: tuple[int, ...] = ()  # peak RSS (bytes) each child process sent, if any
    measurement: Measurement | None = None  # added by running.execute


def seed_of(spec: RunSpec) -> int:
    """The run's seed: the one asked for, or a fresh one (printed on failure)."""
    return spec.seed if spec.seed is not None else random.SystemRandom().randrange(2**32)
