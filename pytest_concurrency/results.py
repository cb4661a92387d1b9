"""What ``concurrency.run()`` and ``concurrency.run_actors()`` give back."""

from __future__ import annotations

import collections
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .metrics import Measurement


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
    """A plain-text tally, most frequent outcome first, verdict per row."""
    total = sum(counts.values())
    rows = []
    for outcome, n in sorted(counts.items(), key=lambda kv: (-kv[1], repr(kv[0]))):
        if acceptable is not None:
            verdict = "ok" if outcome in acceptable else "UNEXPECTED"
        elif forbidden is not None:
            verdict = "FORBIDDEN" if outcome in forbidden else "ok"
        else:
            verdict = ""
        rows.append((repr(outcome), str(n), f"{100.0 * n / total:.1f}%", verdict))
    header = ("outcome", "count", "share", "verdict")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


class Outcomes(collections.Counter):
    """A tally of what each round observed (jcstress-style).

    In explore mode ``replays`` maps each outcome to the command that replays
    the first schedule that produced it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.replays: dict[Any, str] = {}  # outcome -> the command that replays it

    def _replay_lines(self, outcomes: Iterable[Any]) -> str:
        lines = [f"replay a schedule that produced {o!r}:\n  {self.replays[o]}"
                 for o in outcomes if o in self.replays]
        return "\n" + "\n".join(lines) if lines else ""

    def expect(self, *acceptable: Any) -> None:
        """Fail, showing the whole tally, if any round saw something else."""
        __tracebackhide__ = True
        bad = {o: n for o, n in self.items() if o not in acceptable}
        if bad:
            raise AssertionError(
                f"{sum(bad.values())} of {self.total()} rounds had outcomes other than "
                f"{', '.join(repr(a) for a in acceptable)}:\n"
                + tally_table(self, acceptable=acceptable) + self._replay_lines(bad)
            )

    def forbid(self, *outcomes: Any) -> None:
        """Fail, showing the whole tally, if any round saw one of ``outcomes``."""
        __tracebackhide__ = True
        bad = {o: n for o, n in self.items() if o in outcomes}
        if bad:
            raise AssertionError(
                f"{sum(bad.values())} of {self.total()} rounds had a forbidden outcome:\n"
                + tally_table(self, forbidden=outcomes) + self._replay_lines(bad)
            )

    def table(self) -> str:
        return tally_table(self)
