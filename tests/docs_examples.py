"""The examples of the manual (README.md and docs/*.md), found, run and compared.

The convention, which CONTRIBUTING.md describes for authors:

- A fenced block whose first line is ``# <file name>`` (``# test_race.py``,
  ``# pytest.ini``) is that file, complete.
- A fenced block whose first line starts with ``$ `` is a terminal session: each
  ``$ `` line is a command run in the example's directory (``pytest ...``, ``python
  ...`` or ``echo $?``) and the lines up to the next ``$ `` are its output.
- An example is the files shown since the previous terminal session, written into a
  fresh directory; a terminal session with no new file before it goes on in the
  previous session's directory (so a report the first one wrote is there).
- A Python block that is not a file of an example is preceded by
  ``<!-- fragment: <why> -->``; a terminal session that is not run, by
  ``<!-- not run: <why> -->``.  The reason is for a reviewer to judge.

Outputs are compared after masking what varies from run to run and nothing else
(:func:`mask`): times, rates and measured sizes, pids, thread idents, seeds, replay
tokens, memory addresses, temporary paths and where Python is installed, and the
counts a hang report samples (distinct stacks, wake-ups); the session header's
environment lines (platform, rootdir, plugins, asyncio); and the widths of runs of
spaces and of the ``===``/``___``/``---`` rules, which follow the masked values.  A
line that is ``...`` alone stands for any lines, none included.

``python tests/docs_examples.py PAGE...`` runs a page's examples and shows what
differs; with ``--write`` it replaces every differing output that elides nothing
with the real one (outputs that elide lines are printed, to elide again by hand), and
with ``--write-all`` every differing output.  Either way the advice section of a
written output is elided (:func:`elide_advice`).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYTHON = (3, 11)  # the CPython the pages' outputs come from (docs/index.md)
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))

FENCE = re.compile(r"^( *)(```+)(\S*)\s*$")  # indented in a list item too
FILE_CAPTION = re.compile(r"^# ([\w.-]+(?:/[\w.-]+)*\.(?:py|ini|toml|cfg|txt|json))$")
NOTE = re.compile(r"^<!-- (fragment|not run): (.+?) -->$")
ENVIRONMENT = re.compile(r"^(platform \w+ -- Python|rootdir: |plugins: |asyncio: |cachedir: )")
MASKS = (
    (re.compile(r"0x[0-9a-f]{6,}"), "0x<address>"),
    (re.compile(r"x1\.[A-Za-z0-9_=-]{8,}"), "<token>"),
    (re.compile(r"/tmp/[^\s:'\"),]+"), "<path>"),
    (re.compile(r"/[^\s:'\"]*/lib/python3\.\d+/"), "<python>/"),
    (re.compile(r"\b(pids?)([ =])\d+(?:, \d+)*"), r"\1\2<pid>"),
    (re.compile(r"\b(process|parent) \d+\b(?! \(pid)"), r"\1 <pid>"),
    (re.compile(r"\bident \d+"), "ident <ident>"),
    (re.compile(r"\b\d+ distinct stacks?\b"), "<count> distinct stacks"),
    (re.compile(r"\b\d+ wake-ups?\b"), "<count> wake-ups"),
    (re.compile(r"\bthe last (?:second|\d+(?:\.\d+)? ?s)\b"), "the last <time>"),
    (re.compile(r"\b(seed)([ =])\d+"), r"\1\2<seed>"),
    (re.compile(r"\(\d+:\d\d:\d\d\)"), "(<time>)"),
    (re.compile(r"\b\d+(?:\.\d+)?k?(?: sched)?/s\b"), "<rate>"),
    (re.compile(r"\b\d+(?:\.\d+)? ?(?:ns|µs|us|ms|s|min)\b"), "<time>"),
    (re.compile(r"\b\d+(?:\.\d+)? ?(?:B|kB|KiB|MB|MiB|GB|GiB)\b"), "<size>"),
    (re.compile(r"\b\d+\.\d+x\b"), "<ratio>"),
    (re.compile(r"([=_-])\1{2,}"), r"\1\1\1"),
    (re.compile(r"\s+"), " "),
)


@dataclasses.dataclass
class Command:
    line: str  # what follows "$ "
    output: list[str]


@dataclasses.dataclass
class Session:
    """A terminal session on a page: the commands, and the example's files."""

    page: pathlib.Path
    lineno: int  # of the block's first line, 1-based
    files: dict[str, str]
    commands: list[Command]
    continues: bool  # in the previous session's directory

    @property
    def id(self) -> str:
        return f"{self.page.name}:{self.lineno}"


@dataclasses.dataclass
class Block:
    lineno: int  # of the opening fence, 1-based
    language: str
    lines: list[str]
    note: tuple[str, str] | None  # ("fragment" | "not run", why)


def blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown page, with the note comment just before each."""
    found, lines, index = [], text.splitlines(), 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        start, body, indent = index, [], len(fence[1])
        index += 1
        while index < len(lines) and lines[index].strip() != fence[2]:
            body.append(lines[index][indent:])
            index += 1
        before = [line.strip() for line in lines[max(0, start - 2):start] if line.strip()]
        note = NOTE.match(before[-1]) if before else None
        found.append(Block(start + 1, fence[3], body,
                           (note[1], note[2]) if note else None))
        index += 1
    return found


def is_session(block: Block) -> bool:
    return block.language in ("", "console") and bool(block.lines) \
        and block.lines[0].startswith("$ ")


def file_name(block: Block) -> str | None:
    match = FILE_CAPTION.match(block.lines[0]) if block.lines else None
    return match[1] if match else None


def sessions(page: pathlib.Path) -> list[Session]:
    """The terminal sessions of a page that are run, each with its example's files."""
    found: list[Session] = []
    files: dict[str, str] = {}
    for block in blocks(page.read_text(encoding="utf-8")):
        name = file_name(block)
        if name and block.note is None:
            files[name] = "\n".join(block.lines[1:]).strip("\n") + "\n"
        elif is_session(block) and block.note is None:
            commands: list[Command] = []
            for line in block.lines:
                if line.startswith("$ "):
                    commands.append(Command(line[2:], []))
                else:
                    commands[-1].output.append(line)
            found.append(Session(page, block.lineno, files, commands,
                                 continues=not files and bool(found)))
            files = {}
    return found


def unexplained_blocks(page: pathlib.Path) -> list[str]:
    """Python blocks that are neither a file of a run example nor marked a fragment,
    and files shown with no terminal session after them to run them."""
    problems, pending = [], []
    for block in blocks(page.read_text(encoding="utf-8")):
        where = f"{page.name}:{block.lineno}"
        if is_session(block):
            pending = []  # run, or not run with the reason why
        elif block.note:
            continue
        elif file_name(block):
            pending.append(where)
        elif block.language == "python":
            problems.append(f"{where}: a python block with neither a file name on its "
                            "first line nor a <!-- fragment: why --> note before it")
    problems += [f"{where}: a file shown but never run (no terminal session after it)"
                 for where in pending]
    first = sessions(page)[:1]
    if first and not first[0].files:
        problems.append(f"{first[0].id}: a terminal session with no example files before it")
    return problems


def mask(text: str) -> list[str]:
    """The lines of an output, with what varies between runs masked (module doc)."""
    masked = []
    for line in text.splitlines():
        if ENVIRONMENT.match(line):
            continue
        for pattern, replacement in MASKS:
            line = pattern.sub(replacement, line)
        masked.append(line.strip())
    while masked and not masked[-1]:
        masked.pop()
    return masked


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether the masked lines match, a ``...`` line standing for any lines."""
    reachable = {0}  # how many actual lines the expected lines so far can have used
    for line in expected:
        if line == "...":
            reachable = set(range(min(reachable), len(actual) + 1)) if reachable else set()
        else:
            reachable = {n + 1 for n in reachable if n < len(actual) and actual[n] == line}
        if not reachable:
            return False
    return len(actual) in reachable


def environment() -> dict[str, str]:
    """The examples' environment: this one, without what the running session set."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("PYTEST_", "COV_CORE_", "GITHUB_"))}
    # pytest-asyncio, installed for the suite, warns in every session that does not
    # choose a fixture loop scope; the manual's examples that use it choose one
    env["PYTEST_ADDOPTS"] = "-o asyncio_default_fixture_loop_scope=function"
    env["COLUMNS"] = "80"  # the width the pages show
    env.pop("NO_COLOR", None)
    return env


def run(command: str, directory: pathlib.Path, last: int) -> tuple[str, int]:
    """Run one command of a page in ``directory``; its output and exit status."""
    if command == "echo $?":
        return f"{last}\n", 0
    argv = _split(command)
    if argv[0] == "pytest":
        argv = [sys.executable, "-m", "pytest", *argv[1:]]
    elif argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    else:
        raise ValueError(f"cannot run {command!r}: only pytest, python and echo $? run")
    done = subprocess.run(argv, cwd=directory, env=environment(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    return done.stdout, done.returncode


def _split(command: str) -> list[str]:
    import shlex

    return shlex.split(command)


def play(session: Session, directory: pathlib.Path) -> list[tuple[Command, str]]:
    """Write the session's files into ``directory`` and run its commands."""
    for name, text in session.files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    results, last = [], 0
    for command in session.commands:
        output, last = run(command.line, directory, last)
        results.append((command, output))
    return results


def differences(results: list[tuple[Command, str]]) -> list[str]:
    """For each command whose output does not match the page, both, masked."""
    problems = []
    for command, output in results:
        expected, actual = mask("\n".join(command.output)), mask(output)
        if not matches(expected, actual):
            problems.append(f"$ {command.line}\n--- the page shows (masked):\n"
                            + "\n".join(expected) + "\n--- the run printed (masked):\n"
                            + "\n".join(actual))
    return problems


def _rewrite(page: pathlib.Path, write: str) -> int:
    text = page.read_text(encoding="utf-8")
    lines, failed, cursor = text.splitlines(), 0, 0
    directory: pathlib.Path | None = None
    with tempfile.TemporaryDirectory() as scratch:
        for number, session in enumerate(sessions(page)):
            if not session.continues or directory is None:
                directory = pathlib.Path(scratch) / str(number)
                directory.mkdir()
            results = play(session, directory)
            for command, output in results:
                at = next(n for n in range(cursor, len(lines))
                          if lines[n].strip() == f"$ {command.line}")
                indent = lines[at][:len(lines[at]) - len(lines[at].lstrip())]
                cursor = at + 1 + len(command.output)
                if differences([(command, output)]):
                    failed += 1
                    print(f"{session.id}: $ {command.line}\n{output}")
                    real = elide_advice(output.rstrip("\n").splitlines())
                    if "..." in command.output:
                        real = keep_shown(real, command.output)
                    real = [indent + line if line else line for line in real]
                    if write == "--write-all" or write and "..." not in command.output:
                        lines[at + 1:cursor] = real
                        cursor = at + 1 + len(real)
    if write:
        page.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return failed


def keep_shown(lines: list[str], shown: list[str]) -> list[str]:
    """Of a real output, the lines the page showed (masked alike), the rest made
    ``...``: a page that elides keeps its choice of lines, and a line that changed
    becomes ``...`` for the author to look at."""
    wanted = {line for line in mask("\n".join(shown)) if line != "..."}
    kept: list[str] = []
    for line in lines:
        masked = mask(line)
        if ENVIRONMENT.match(line) or masked and masked[0] not in wanted:
            if not kept or kept[-1] != "...":
                kept.append("...")
        elif masked or kept and kept[-1] != "...":
            kept.append(line)
    while kept and not kept[-1]:
        kept.pop()
    return kept


def elide_advice(lines: list[str]) -> list[str]:
    """The advice section's lines made ``...``: which mode suits a test is measured,
    and a busy machine changes it (docs/budgets.md), so a page shows it only where the
    advice is the point, with the numbers the workload makes certain."""
    kept, inside = [], False
    for line in lines:
        if line.startswith("=") and line.rstrip("=").strip():
            inside = "concurrency advice" in line
            kept.append(line)
        elif not inside:
            kept.append(line)
        elif kept[-1] != "...":
            kept.append("...")
    return kept


if __name__ == "__main__":
    flags = [arg for arg in sys.argv[1:] if arg.startswith("--")]
    failures = sum(_rewrite(pathlib.Path(arg).resolve(), flags[0] if flags else "")
                   for arg in sys.argv[1:] if not arg.startswith("--"))
    sys.exit(1 if failures else 0)
