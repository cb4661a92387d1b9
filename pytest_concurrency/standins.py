"""Exceptions too big to report, replaced by stand-ins that show what fits.

A worker's exception is formatted by pytest (or the traceback module) and
grouped into the test's failure.  Some cannot be formatted in reasonable
time or space: a 50 MB message (or one of five million lines), a chain of
20,000 ``raise ... from`` links, an exception group of 100,000 members or
nested 3,000 deep; and one whose ``__str__`` or ``__repr__`` raises cannot
be formatted at all (pytest's own report of a group of one such exception
fails).  :func:`bounded` gives back the exception itself when it is within
bounds (nearly always, at the cost of a walk over its message, chain and
members), else a stand-in: an exception of the same module and qualified
name, with the same traceback, whose message, notes, chain and members are
cut to the bounds, each cut saying what it left out.

A stand-in derives from ``AssertionError`` when the original does (pytest
shows those its own way), from ``BaseExceptionGroup`` for groups, else from
``Exception`` or ``BaseException`` as the original; it is never raised, only
formatted.
"""

from __future__ import annotations

from . import texts

CHAIN_LINKS = 16  # __cause__/__context__ links shown below an exception
GROUP_WIDTH = 15  # members of a group shown (the traceback module shows 15)
GROUP_DEPTH = 10  # groups in groups (the traceback module goes 10 deep)
NOTES_BYTES = texts.MESSAGE_BYTES
COUNT_LIMIT = 1_000_000  # a chain is counted this far, not further


class StandIn:
    """Marks a stand-in's class (a mixin)."""


class NotShown(Exception):
    """What a cut chain or group left out, in its message."""


NotShown.__module__ = "pytest_concurrency"  # as tracebacks name it


def summary(exc: BaseException) -> str:
    """``ValueError: <the first line of its message>``, within SUMMARY_BYTES; an
    exception whose ``__str__`` raises says that its message could not be shown."""
    name = type(exc).__qualname__
    message = texts.safe_str(exc)
    if message.startswith(texts.STR_FAILED):
        return f"{name} (its message could not be formatted: {message[1:-1]})"
    first = texts.one_line(message, texts.SUMMARY_BYTES - len(name) - 2)
    return f"{name}: {first}" if first else name


def bounded(exc: BaseException) -> BaseException:
    """``exc`` if it can be formatted as it is, else a stand-in (see the module)."""
    return _stand_in(exc, 0, {}) if _too_big(exc, 0, set()) else exc


def _formats(exc: BaseException) -> bool:
    """Whether ``str(exc)`` and ``repr(exc)`` work (pytest needs both) and the
    message is within bounds."""
    message = texts.safe_str(exc)
    return not message.startswith(texts.STR_FAILED) and \
        texts.fits(message, texts.MESSAGE_BYTES, texts.MESSAGE_LINES) and \
        not texts.safe_repr(exc).startswith(f"<{type(exc).__qualname__} object; ")


def _notes(exc: BaseException) -> list[str] | None:
    notes = getattr(exc, "__notes__", None)
    return [texts.safe_str(note) for note in notes] if isinstance(notes, list) else None


def _chain(exc: BaseException) -> BaseException | None:
    """The exception shown below ``exc``: its cause, else its context unless suppressed."""
    if exc.__cause__ is not None:
        return exc.__cause__
    return None if exc.__suppress_context__ else exc.__context__


def _too_big(exc: BaseException, depth: int, seen: set[int]) -> bool:
    """Whether ``exc``, its chain or its members exceed a bound."""
    links = 0
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if links > CHAIN_LINKS:
            return True
        if not _formats(current):
            return True
        notes = _notes(current)
        if notes and not texts.fits("\n".join(notes), NOTES_BYTES, texts.MESSAGE_LINES):
            return True
        if isinstance(current, BaseExceptionGroup):
            members = current.exceptions
            if len(members) > GROUP_WIDTH or depth >= GROUP_DEPTH:
                return True
            if any(_too_big(member, depth + 1, seen) for member in members):
                return True
        current = _chain(current)
        links += 1
    return False


def _count_chain(exc: BaseException | None) -> int:
    """Exceptions in the chain from ``exc`` down (cycles counted once)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(seen) < COUNT_LIMIT:
        seen.add(id(exc))
        exc = _chain(exc)
    return len(seen)


def _stand_in(exc: BaseException, depth: int, made: dict[int, BaseException],
              links: int = 0) -> BaseException:
    """The stand-in of ``exc`` (``links`` below the exception formatted first)."""
    if id(exc) in made:  # a cycle in the chain: the traceback module stops there too
        return made[id(exc)]
    shown = texts.head(texts.safe_str(exc), texts.MESSAGE_BYTES, texts.MESSAGE_LINES)
    members: list[BaseException] | None = None
    notes = _notes(exc) or []
    if isinstance(exc, BaseExceptionGroup):
        shown = texts.head(texts.safe_str(exc.message), texts.MESSAGE_BYTES,
                           texts.MESSAGE_LINES)
        if depth >= GROUP_DEPTH:
            members = [NotShown(f"{len(exc.exceptions):,} exceptions nested more than "
                               f"{GROUP_DEPTH} groups deep not shown")]
        else:
            members = [_stand_in(member, depth + 1, made) for member in
                       exc.exceptions[:GROUP_WIDTH]]
            if len(exc.exceptions) > GROUP_WIDTH:
                notes.append(f"... {len(exc.exceptions) - GROUP_WIDTH:,} more exceptions "
                             "in this group not shown")
    stand_in = _new(type(exc), shown, members)
    made[id(exc)] = stand_in
    stand_in.__traceback__ = exc.__traceback__
    if notes:
        stand_in.__notes__ = texts.head("\n".join(notes), NOTES_BYTES,
                                        texts.MESSAGE_LINES).split("\n")
    below = _chain(exc)
    if below is not None:
        if links >= CHAIN_LINKS:
            below = NotShown(f"... {_count_chain(below):,} more chained exceptions not shown")
        else:
            below = _stand_in(below, depth, made, links + 1)
        if exc.__cause__ is not None:
            stand_in.__cause__ = below
        else:
            stand_in.__context__ = below
    stand_in.__suppress_context__ = exc.__cause__ is not None or exc.__suppress_context__
    return stand_in


_CLASSES: dict[tuple[type[BaseException], type[BaseException]], type[BaseException]] = {}


def _new(original: type[BaseException], message: str,
         members: list[BaseException] | None) -> BaseException:
    """An instance of the stand-in class for ``original``."""
    base: type[BaseException]
    if members is not None:
        base = ExceptionGroup if all(isinstance(m, Exception) for m in members) \
            else BaseExceptionGroup
    elif issubclass(original, AssertionError):
        base = AssertionError
    else:
        base = Exception if issubclass(original, Exception) else BaseException
    cls = _CLASSES.get((original, base))
    if cls is None:
        cls = _CLASSES[original, base] = type(original.__name__, (base, StandIn), {
            "__module__": original.__module__, "__qualname__": original.__qualname__,
            "__doc__": f"A stand-in for {original.__qualname__} (see standins.py)."})
    return cls(message) if members is None else cls(message, members)
