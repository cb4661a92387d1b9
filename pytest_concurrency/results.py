"""What ``concurrency.run()`` and ``concurrency.run_actors()`` give back."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .texts import short_repr

if TYPE_CHECKING:
    from .metrics import Measurement
    from .report.records import Step


class Results(Sequence[Any]):
    """Return values of every worker, ordered by (worker index, iteration).

    ``by_worker`` maps worker index -> list of values (one per iteration);
    ``measurement`` is what the run cost (``metrics.Measurement``), also as
    ``wall`` and ``cpu`` (seconds), ``peak_rss`` (bytes, when sampled) and
    ``throughput`` (body calls per second).
    """

    def __init__(self, by_worker: Mapping[int, list[Any]], measurement: Measurement | None = None,
                 mode: str = "", layout: str = "") -> None:
        self.by_worker = {i: list(by_worker[i]) for i in sorted(by_worker)}
        self._values = [v for values in self.by_worker.values() for v in values]
        self.measurement = measurement
        self.mode = mode
        self.layout = layout

    wall = property(lambda self: self.measurement.wall)
    cpu = property(lambda self: self.measurement.cpu)
    peak_rss = property(lambda self: self.measurement.peak_rss)
    throughput = property(lambda self: self.measurement.throughput)

    def __getitem__(self, index: int | slice) -> Any:
        return self._values[index]

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Results):
            return self._values == other._values
        if isinstance(other, (list, tuple)):
            return self._values == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Results({self._values!r}, mode={self.mode!r}, wall={self.wall:.4f}s)"


def tally_table(counts: Mapping[Any, int], acceptable: Container[Any] | None = None,
                forbidden: Container[Any] | None = None) -> str:
    """A plain-text tally, most frequent outcome first, verdict per row; each
    outcome by its repr, on one line within texts.REPR_BYTES."""
    total = sum(counts.values())
    rows = []
    shown = {id(outcome): short_repr(outcome) for outcome in counts}  # each repr once
    for outcome, n in sorted(counts.items(), key=lambda kv: (-kv[1], shown[id(kv[0])])):
        if acceptable is not None:
            verdict = "ok" if outcome in acceptable else "UNEXPECTED"
        elif forbidden is not None:
            verdict = "FORBIDDEN" if outcome in forbidden else "ok"
        else:
            verdict = ""
        rows.append((shown[id(outcome)], str(n), f"{100.0 * n / total:.1f}%", verdict))
    header = ("outcome", "count", "share", "verdict")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


@dataclasses.dataclass(frozen=True)
class FirstSchedule:
    """Explore mode: the first schedule that produced an outcome, to show and replay
    it when the test rejects that outcome."""

    index: int  # of the schedule in the exploration
    token: str  # its replay token
    command: str  # the command that replays it
    interleaving: str  # its steps as a table, one column per worker
    steps: list[Step]  # its last steps, as the reports hold them
    total_steps: int
    workers: int


SHOWN = 3  # rejected outcomes whose interleaving a failure shows


@dataclasses.dataclass(frozen=True)
class Rejection:
    """What ``expect``/``forbid`` rejected, carried by its AssertionError (as
    ``.rejection``): in explore mode a failure of the exploration, with the schedule
    of the most frequent rejected outcome to show and replay."""

    outcome: Any  # the most frequent rejected outcome
    first: FirstSchedule | None  # its first schedule (explore mode)
    rejected: int  # rounds (schedules) with a rejected outcome


def rejects(outcome: Any, expect: tuple[Any, ...] | None,
            forbid: tuple[Any, ...] | None) -> str | None:
    """Why ``run_actors(expect=, forbid=)`` rejects ``outcome``; None if it does not."""
    if expect is not None and outcome not in expect:
        return (f"the outcome {short_repr(outcome)} is not one of the expected "
                f"{', '.join(map(short_repr, expect))}")
    if forbid is not None and outcome in forbid:
        return f"the outcome {short_repr(outcome)} is forbidden"
    return None


def untallied(outcome: Any, by_arbiter: bool) -> str | None:
    """Why ``outcome`` cannot be counted in a tally (it is not hashable), as one
    sentence naming what made it; None when it can."""
    try:
        hash(outcome)
    except Exception:  # noqa: BLE001 - TypeError, or a __hash__ that raises
        pass
    else:
        return None
    if by_arbiter:
        kind = type(outcome).__name__
        return (f"run_actors(): the arbiter returned {_a(kind)}, which cannot be tallied: "
                "return a tuple (or another hashable value)")
    culprits = [index for index, value in enumerate(outcome) if _unhashable(value)]
    index = culprits[0] if culprits else 0
    kind = type(outcome[index]).__name__ if culprits else type(outcome).__name__
    return (f"run_actors(): actor {index} returned {_a(kind)}, which cannot be tallied as part "
            f"of the round's outcome: return a tuple (or another hashable value), or give "
            f"run_actors an arbiter= that does")


def _a(kind: str) -> str:
    return f"an {kind}" if kind[:1].lower() in "aeiou" else f"a {kind}"


def _unhashable(value: object) -> bool:
    try:
        hash(value)
    except Exception:  # noqa: BLE001 - as untallied()
        return True
    return False


def rejection_of(exc: BaseException) -> Rejection | None:
    """The Rejection an ``expect``/``forbid`` failure carries; None for any other."""
    found = getattr(exc, "rejection", None)
    return found if isinstance(found, Rejection) else None


class Outcomes(collections.Counter):
    """A tally of what each round observed (jcstress-style).

    In explore mode ``replays`` maps each outcome to the command that replays
    the first schedule that produced it, and ``first`` to that schedule itself.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.replays: dict[Any, str] = {}  # outcome -> the command that replays it
        self.first: dict[Any, FirstSchedule] = {}  # outcome -> the schedule that made it

    def _replay_lines(self, outcomes: Iterable[Any]) -> str:
        lines = []
        for shown, outcome in enumerate(outcomes):
            first = self.first.get(outcome)
            if first is not None and shown < SHOWN:
                lines.append(f"\nschedule {first.index} produced {short_repr(outcome)}:\n"
                             f"{first.interleaving}\nreplay it with:\n  {first.command}")
            elif outcome in self.replays:
                lines.append(f"replay a schedule that produced {short_repr(outcome)}:\n"
                             f"  {self.replays[outcome]}")
        return "\n" + "\n".join(lines) if lines else ""

    def _reject(self, head: str, table: str, bad: dict[Any, int]) -> AssertionError:
        ordered = sorted(bad, key=lambda o: (-bad[o], short_repr(o)))
        error = AssertionError(f"{head}:\n{table}{self._replay_lines(ordered)}")
        error.rejection = Rejection(  # type: ignore[attr-defined]
            ordered[0], self.first.get(ordered[0]), sum(bad.values()))
        return error

    def expect(self, *acceptable: Any) -> None:
        """Fail, showing the whole tally, if any round saw something else."""
        __tracebackhide__ = True
        bad = {o: n for o, n in self.items() if o not in acceptable}
        if bad:
            raise self._reject(
                f"{sum(bad.values())} of {self.total()} rounds had outcomes other than "
                f"{', '.join(short_repr(a) for a in acceptable)}",
                tally_table(self, acceptable=acceptable), bad)

    def forbid(self, *outcomes: Any) -> None:
        """Fail, showing the whole tally, if any round saw one of ``outcomes``."""
        __tracebackhide__ = True
        bad = {o: n for o, n in self.items() if o in outcomes}
        if bad:
            raise self._reject(
                f"{sum(bad.values())} of {self.total()} rounds had a forbidden outcome",
                tally_table(self, forbidden=outcomes), bad)

    def table(self) -> str:
        return tally_table(self)
