"""Blind spots: steps whose effects explore could not see.

The access observer (``accesses``) describes what each step reads and writes.
Where it cannot - C code with state of its own, I/O, the environment, a package
that is not traced - it has two sound answers: the step conflicts with every
other step (``accesses.EVERYTHING``), or it says what it could not see, and
where, with :meth:`BlindSpots.add` (through ``Objects.unseen`` or
``Schedule.unseen``).  A search with a blind spot is never complete: the
verdict names the first few (``not complete (os.environ, at test_env.py:12)``).

This module imports nothing of the scheduler, so both sides can use it.
"""

from __future__ import annotations

import os

Where = tuple[str, int]  # (filename, lineno); ("", 0): nowhere in particular
SHOWN = 3  # blind spots named in a verdict; the rest are counted


class BlindSpots:
    """What could not be seen, and where: each (what, file, line) once, in the
    order first seen, with how often it was hit."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, int], int] = {}

    def add(self, what: str, where: Where, times: int = 1) -> None:
        key = (what, where[0], where[1])
        self._seen[key] = self._seen.get(key, 0) + times

    def merge(self, other: BlindSpots) -> None:
        for (what, filename, lineno), times in other._seen.items():
            self.add(what, (filename, lineno), times)

    def __len__(self) -> int:
        return len(self._seen)

    def __bool__(self) -> bool:
        return bool(self._seen)

    def items(self) -> list[tuple[str, str, int, int]]:
        """(what, filename, lineno, times hit), in the order first seen."""
        return [(what, filename, lineno, times)
                for (what, filename, lineno), times in self._seen.items()]

    def describe(self, shown: int = SHOWN) -> str:
        """``os.environ, at test_env.py:12; open(), at io.py:3 (5 blind spots in all)``."""
        parts = [f"{what}, at {os.path.basename(filename)}:{lineno}" if filename else what
                 for what, filename, lineno, _times in self.items()[:shown]]
        text = "; ".join(parts)
        if len(self) > shown:
            text += f" ({len(self)} blind spots in all)"
        return text
