"""Explore items in the reports, through pytest: the exploration in the JSON entry
and JUnit properties, the failing schedule as an HTML swimlane, the verdict in the
Markdown and terminal tables, and the progress of a long exploration on a terminal."""

import os
import pty
import re
import select
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

from terminal_screen import screen

from pytest_concurrency.report import document, terminal

# A lost update: two workers do `self.value += 1` on a fixture's counter; the twin
# holds a lock around it and passes.
SUITE = """
import threading
import pytest


class Counter:
    def __init__(self):
        self.value = 0

    def increment(self):
        self.value += 1


class LockedCounter(Counter):
    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()

    def increment(self):
        with self.lock:
            self.value += 1


@pytest.fixture
def counter():
    return Counter()


@pytest.fixture
def locked():
    return LockedCounter()


@pytest.mark.concurrency(modes=["explore"], workers=2, seed=0)
def test_lost_update(counter, barrier):
    counter.increment()
    barrier.wait()
    assert counter.value == 2


@pytest.mark.concurrency(modes=["explore"], workers=2, seed=0, schedules=50)
def test_locked(locked, barrier):
    locked.increment()
    barrier.wait()
    assert locked.value == 2
"""
LOST = "test_suite.py::test_lost_update[explore]"
LOCKED = "test_suite.py::test_locked[explore]"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def junit_properties(path):
    """testcase name -> {property name: value}."""
    found = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        found[case.get("name")] = {p.get("name"): p.get("value") for p in case.iter("property")}
    return found


def check_common(exploration, schedules, budget):
    assert exploration["strategy"] == "pct" and exploration["seed"] == 0
    assert exploration["workers"] == 2
    assert exploration["schedules"] == schedules and exploration["budget"] == budget
    assert exploration["complete"] is False  # pct samples; it never claims completeness
    assert exploration["verdict"].startswith(f"{schedules} schedule")
    assert "strategy=pct, seed=0, 2 workers" in exploration["verdict"]
    assert exploration["schedules_per_second"] > 0
    assert isinstance(exploration["switch_points"], str) and exploration["switch_points"]
    assert exploration["python"] == PYTHON
    counts = exploration["outcome_counts"]
    assert exploration["outcomes"] == len(counts) >= 1
    assert all(isinstance(n, int) and n > 0 for n in counts.values())


def test_json_junit_and_terminal_carry_the_exploration(pytester, run):
    pytester.makepyfile(test_suite=SUITE)
    result = run("-v", "--concurrency-report", "r.json", "--junitxml", "junit.xml",
                 "--concurrency-junit")
    result.assert_outcomes(passed=1, failed=1)
    tests = {e["nodeid"]: e for e in document.load(str(pytester.path / "r.json"))["tests"]}

    lost = tests[LOST]["exploration"]
    schedules = lost["schedules"]
    assert 1 <= schedules <= 200
    check_common(lost, schedules, 200)
    # every schedule before the failing one passed, and was counted
    assert sum(lost["outcome_counts"].values()) == schedules - 1
    interleaving = lost["interleaving"]
    assert interleaving["schedule"] == schedules - 1  # the last one run
    assert interleaving["kind"] == "assertion" and interleaving["worker"] in (0, 1)
    assert "AssertionError" in interleaving["message"]
    steps = interleaving["steps"]
    assert 0 < len(steps) <= interleaving["total_steps"]
    for step in steps:
        assert set(step) == {"worker", "file", "line", "function", "what", "source"}
        assert step["worker"] in (0, 1) and step["line"] > 0
    updates = [s for s in steps if s["function"] == "increment"]
    assert {s["source"] for s in updates} == {"self.value += 1"}
    assert all(s["file"].endswith("test_suite.py") for s in updates)
    # the lost update: both workers read .value before either wrote it back
    writes = {s["worker"] for s in updates if s["what"] == "writes .value"}
    assert writes == {0, 1}
    first_write = next(i for i, s in enumerate(steps) if s["what"] == "writes .value")
    assert {s["worker"] for s in steps[:first_write] if s["what"] == "reads .value"} == {0, 1}
    last = [s for s in steps if s["worker"] == interleaving["worker"]][-1]
    assert last["source"] == "assert counter.value == 2"
    assert tests[LOST]["failures"][0]["kind"] == "race"

    locked = tests[LOCKED]["exploration"]
    check_common(locked, 50, 50)
    assert sum(locked["outcome_counts"].values()) == 50
    assert locked["interleaving"] is None

    props = junit_properties(pytester.path / "junit.xml")
    for name, exploration in (("test_lost_update[explore]", lost),
                              ("test_locked[explore]", locked)):
        assert {key: value for key, value in props[name].items()
                if key.startswith("concurrency.explore.")} == {
            "concurrency.explore.strategy": "pct", "concurrency.explore.seed": "0",
            "concurrency.explore.schedules": str(exploration["schedules"]),
            "concurrency.explore.complete": "false",
            "concurrency.explore.outcomes": str(exploration["outcomes"])}

    out = result.stdout.str()
    table = out[out.index("= concurrency ="):]
    row = next(line for line in table.splitlines() if line.startswith(LOCKED))
    # the rate the JSON recorded, in the table's words ("160 sched/s" on one machine,
    # "1.8k sched/s" on a faster one): what load cannot change is that they agree
    assert f" {terminal.schedules_rate(tests[LOCKED])} " in f" {row} "
    verdict = table.splitlines()[table.splitlines().index(row) + 1]
    assert verdict.startswith("    explore: 50 schedules explored (strategy=pct, seed=0")
    assert verdict.endswith("bounded: not every interleaving was explored")
    assert not re.search(r"\[explore \d", out)  # no progress where it is not a terminal


def test_html_swimlane_and_markdown_verdict(pytester, run):
    pytester.makepyfile(test_suite=SUITE)
    run("--concurrency-report", "r.html", "--concurrency-report", "r.md",
        "--concurrency-report", "r.json").assert_outcomes(passed=1, failed=1)
    page = (pytester.path / "r.html").read_text()
    (svg_text,) = re.findall(r'<svg id="swimlane-1".*?</svg>', page, re.DOTALL)
    assert page.index(svg_text) > page.index(f"{LOST}</span></h3>")  # under its failure
    svg = ET.fromstring(svg_text)
    assert [t.text for t in svg.iter("text") if t.get("class") == "group"] == [
        "worker 0", "worker 1"]
    steps = [r for r in svg.iter("rect") if "step" in (r.get("class") or "").split()]
    classes = [set(r.get("class").split()) for r in steps]
    workers = {r.get("data-worker") for r in steps}
    assert workers == {"0", "1"}
    # .value: written by both workers and read by the failing assert
    written = {r.get("data-worker") for r, c in zip(steps, classes, strict=True)
               if "step-write" in c}
    assert written == {"0", "1"}
    assert any("step-read" in c for c in classes)
    (failing,) = [r for r, c in zip(steps, classes, strict=True) if "step-failing" in c]
    assert "assert counter.value == 2" in failing.findtext("title")
    assert "reads and writes of .value highlighted" in page
    markdown = (pytester.path / "r.md").read_text()
    lost = document.load(str(pytester.path / "r.json"))["tests"]
    schedules = next(e for e in lost if e["nodeid"] == LOST)["exploration"]["schedules"]
    assert (f"explore: schedule {schedules - 1} failed, {schedules} of 200 run "
            "(pct, seed 0)") in markdown
    assert "explore: bounded: 50 of 50 schedules, 1 distinct outcome (pct, seed 0)" in markdown
    locked = next(e for e in lost if e["nodeid"] == LOCKED)
    assert f"| {terminal.schedules_rate(locked)} |" in markdown


SLOW = """
import time
import pytest

from time import sleep as real_sleep  # explore makes time.sleep virtual; this one is not


def test_before():
    pass


@pytest.mark.concurrency(modes=["explore"], workers=2, seed=0, schedules=120)
def test_slow():
    real_sleep(0.01)  # 120 schedules x 2 workers: at least 2.4s


def test_after():
    pass
"""


def in_a_terminal(args, cwd, columns=100, timeout=120):
    """Everything pytest writes to a pseudo-terminal ``columns`` wide."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = dict(os.environ, COLUMNS=str(columns), TERM="xterm")
    env.pop("CI", None)  # no CI-specific terminal handling
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                             "--color=no", *args], cwd=cwd, stdin=slave, stdout=slave,
                            stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
    return out.decode()


def test_a_long_exploration_shows_its_progress_on_a_terminal(pytester):
    pytester.makepyfile(test_slow=SLOW)
    started = time.monotonic()
    raw = in_a_terminal([], pytester.path)
    took = time.monotonic() - started  # the whole session: longer than the exploration
    updates = re.findall(r"\[explore (\d+)/120 schedules, 1 distinct outcome\]", raw)
    assert updates, raw
    done = [int(n) for n in updates]
    assert done == sorted(done) and 0 < done[0] < 120
    # every half second from the first second on, not more: as many as the time it
    # took allows, however long a busy machine made that
    most = 1 + (took - terminal.PROGRESS_AFTER) / terminal.PROGRESS_EVERY
    assert len(done) <= most, (done, took)
    # ... written in place and wiped: pytest's own line reads as if it had not been there
    lines, _ = screen(raw)
    (line,) = [line for line in lines if line.startswith("test_slow.py ")]
    assert re.fullmatch(r"test_slow\.py \.\.\. +\[100%\]", line), line
    assert not re.search(r"\[explore \d", "\n".join(lines))
    assert "3 passed" in lines[-2] or "3 passed" in lines[-1]
