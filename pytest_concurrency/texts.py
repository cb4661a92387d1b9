"""Text that comes from the code under test, made safe to put in a report.

Whatever the plugin carries from user code into the terminal, JSON, Markdown,
HTML or JUnit (an exception's message and traceback, a crashed child's stderr,
a child's captured output, the repr of an outcome) goes through here:

- :func:`safe_str` and :func:`safe_repr` never raise: an object whose
  ``__str__`` or ``__repr__`` raises is named by its type, saying so;
- :func:`head`, :func:`tail` and :func:`middle` bound a text by bytes (UTF-8)
  and lines, keeping its start, its end or both, and say how much was cut
  (``... 49.9 MB more not shown``);
- :func:`read_tail` reads the end of a file without reading the rest.

A text within its bounds comes back as it is, after a length check: the cost
is paid by texts that are too big, not by every report.
"""

from __future__ import annotations

import os

SUMMARY_BYTES = 1000  # a one-line summary ("ValueError: ...")
MESSAGE_BYTES = 64 * 1024  # one exception's message, inside its traceback
MESSAGE_LINES = 500
TEXT_BYTES = 256 * 1024  # a failure's whole text: its traceback, a crash's details
TEXT_LINES = 4000
TAIL_BYTES = 64 * 1024  # the end of a child's stderr read for a failure report
OUTPUT_BYTES = 1024 * 1024  # a child's captured stdout or stderr, as a report section
OUTPUT_LINES = 10_000
REPR_BYTES = 500  # a value's repr in a tally or an exploration's outcomes


STR_FAILED = "<str() raised "  # how safe_str's text starts when str() raised


def safe_str(obj: object) -> str:
    """``str(obj)``; if that raises, what says so: ``<str() raised RuntimeError: boom>``.
    KeyboardInterrupt and SystemExit are not caught, as in pytest's saferepr."""
    try:
        text = str(obj)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - any __str__ may raise anything
        return f"{STR_FAILED}{_raised(exc)}>"
    return text if type(text) is str else f"{STR_FAILED}TypeError: not a str>"


def safe_repr(obj: object) -> str:
    """``repr(obj)``; if that raises, what says so:
    ``<Bad object; repr() raised RuntimeError: boom>``."""
    try:
        text = repr(obj)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - any __repr__ may raise anything
        return f"<{type(obj).__qualname__} object; repr() raised {_raised(exc)}>"
    return text if type(text) is str else f"<{type(obj).__qualname__} object>"


def _raised(exc: BaseException) -> str:
    """``RuntimeError: boom`` for what a ``__str__`` or ``__repr__`` raised (its
    type alone if its own message cannot be had either)."""
    name = type(exc).__qualname__
    try:
        message = str(exc)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - not again
        return name
    first = one_line(message, 200) if type(message) is str else ""
    return f"{name}: {first}" if first else name


def short_repr(obj: object, limit: int = REPR_BYTES) -> str:
    """``safe_repr(obj)`` on one line (the lines of a repr that has several
    joined by spaces), cut to ``limit`` bytes."""
    text = safe_repr(obj)
    if "\n" in text:
        text = " ".join(filter(None, (line.strip() for line in text.splitlines())))
    return one_line(text, limit)


def utf8_size(text: str) -> int:
    """Bytes of ``text`` as UTF-8 (a lone surrogate counted as three)."""
    return len(text.encode("utf-8", "surrogatepass"))


def size(count: int) -> str:
    """A byte count for people: ``512 bytes``, ``12.3 kB``, ``49.9 MB``."""
    if count < 1000:
        return f"{count} byte{'s' if count != 1 else ''}"
    value = float(count)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 999.95 or unit == "GB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def fits(text: str, max_bytes: int, max_lines: int | None = None) -> bool:
    """Whether ``text`` is within ``max_bytes`` bytes and ``max_lines`` lines;
    a short text is known to be without encoding it."""
    if len(text) * 4 > max_bytes and (len(text) > max_bytes or utf8_size(text) > max_bytes):
        return False
    return max_lines is None or text.count("\n") < max_lines


def _first_bytes(text: str, max_bytes: int) -> str:
    """The longest start of ``text`` of at most ``max_bytes`` bytes."""
    data = text[:max_bytes].encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text[:max_bytes]
    return data[:max_bytes].decode("utf-8", "ignore")


def _last_bytes(text: str, max_bytes: int) -> str:
    """The longest end of ``text`` of at most ``max_bytes`` bytes."""
    data = text[-max_bytes:].encode("utf-8", "surrogatepass") if max_bytes else b""
    if len(data) <= max_bytes:
        return text[-max_bytes:] if max_bytes else ""
    return data[len(data) - max_bytes:].decode("utf-8", "ignore")


def _cut(lines: int, count: int) -> str:
    """What a cut left out: ``49.9 MB`` or ``1,234 lines (56.7 kB)``."""
    if lines:
        return f"{lines:,} line{'s' if lines != 1 else ''} ({size(count)})"
    return size(count)


def head(text: str, max_bytes: int = TEXT_BYTES, max_lines: int | None = TEXT_LINES) -> str:
    """The start of ``text`` within ``max_bytes`` bytes and ``max_lines`` lines,
    and a last line saying how much more there was."""
    if fits(text, max_bytes, max_lines):
        return text
    kept = text
    if max_lines is not None and text.count("\n") >= max_lines:
        kept = "\n".join(text.split("\n", max_lines)[:max_lines])
    kept = _first_bytes(kept, max_bytes)
    lines = text.count("\n") - kept.count("\n")
    return f"{kept}\n... {_cut(lines, utf8_size(text) - utf8_size(kept))} more not shown"


def tail(text: str, max_bytes: int = TEXT_BYTES, max_lines: int | None = TEXT_LINES,
         before: int = 0) -> str:
    """The end of ``text`` within ``max_bytes`` bytes and ``max_lines`` lines,
    after a first line saying how much came before it (``before``: bytes already
    left out of ``text`` itself, as :func:`read_tail` leaves them)."""
    kept, lines, cut = text, 0, 0
    if not fits(text, max_bytes, max_lines):
        if max_lines is not None and text.count("\n") >= max_lines:
            kept = "\n".join(text.rsplit("\n", max_lines)[1:])
        kept = _last_bytes(kept, max_bytes)
        lines = text.count("\n") - kept.count("\n")
        cut = utf8_size(text) - utf8_size(kept)
    if not cut and not before:
        return text
    return f"... {_cut(lines, cut + before)} before this not shown\n{kept}"


def middle(text: str, max_bytes: int = TEXT_BYTES, max_lines: int = TEXT_LINES) -> str:
    """``text`` within the bounds, keeping its start and its end (a traceback's
    outermost frames and the exception it ends with), with a line between them
    saying how much was left out."""
    if fits(text, max_bytes, max_lines):
        return text
    lines = text.split("\n")
    keep, half = max(1, max_lines // 2), max_bytes // 2
    start = _first_bytes("\n".join(lines[:keep]), half)
    rest = "\n".join(lines[-keep:]) if len(lines) > 2 * keep else text[len(start):]
    end = _last_bytes(rest, half)
    left_out = max(0, text.count("\n") - start.count("\n") - end.count("\n") - 1)
    count = utf8_size(text) - utf8_size(start) - utf8_size(end)
    return f"{start}\n... {_cut(left_out, count)} not shown ...\n{end}"


def one_line(text: str, max_bytes: int = SUMMARY_BYTES) -> str:
    """The first line of ``text`` (stripped), within ``max_bytes`` bytes; a line
    that was cut ends with ``...``."""
    text = text.strip()
    end = text.find("\n")
    line = (text if end < 0 else text[:end]).rstrip()
    if len(line) * 4 <= max_bytes or utf8_size(line) <= max_bytes:
        return line
    return _first_bytes(line, max(0, max_bytes - 3)) + "..."


def read_tail(path: str, max_bytes: int = TAIL_BYTES, offset: int = 0) -> tuple[str, int]:
    """The last ``max_bytes`` bytes of file ``path`` from ``offset`` on, decoded
    (undecodable bytes escaped), and how many bytes before them were not read.
    Only what is returned is read: a 500 MB file costs a seek.  With system
    calls, not ``open()`` (whose buffered reader took a fifth of a second on a
    busy free-threaded build: see progress.read_proc).  OSError if the file
    cannot be read."""
    fd = os.open(path, os.O_RDONLY)
    try:
        end = os.lseek(fd, 0, os.SEEK_END)
        start = max(offset, end - max_bytes)
        os.lseek(fd, start, os.SEEK_SET)
        chunks, left = [], max(0, end - start)
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 16))):
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    skipped = max(0, start - offset)
    if skipped:  # begin at a character: drop the rest of one that was cut
        lead = 0
        while lead < min(3, len(data)) and 0x80 <= data[lead] < 0xC0:
            lead += 1
        data, skipped = data[lead:], skipped + lead
    return data.decode("utf-8", "backslashreplace"), skipped
