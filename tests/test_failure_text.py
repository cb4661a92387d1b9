"""What a failure says when the code under test makes saying it hard: exceptions
whose ``__str__``/``__repr__`` raise, that cannot be pickled, that are
BaseExceptions, or chains and groups too long or deep to format; and text too
big to carry whole (a 5 MB message, 20 MB of stderr on one line), which every
report bounds, saying how much it cut."""

import json
import xml.etree.ElementTree as ET

import pytest

MODES = ["thread", "process", "hybrid", "explore"]

UNRULY = f"""
import pytest

MODES = {MODES!r}


class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("str is broken")

    def __repr__(self):
        raise RuntimeError("repr is broken")


class ExitsWhenPickled(Exception):
    def __reduce__(self):
        raise SystemExit("pickling exits")


class Stop(BaseException):
    pass


def chained(links):
    exc = None
    for i in range(links):
        try:
            raise ValueError(f"link {{i}}") from exc
        except ValueError as caught:
            exc = caught
    return exc


@pytest.mark.concurrency(modes=MODES, workers=2)
def test_bad_str():
    raise BadStr("real")


@pytest.mark.concurrency(modes=MODES, workers=2)
def test_exits_when_pickled():
    raise ExitsWhenPickled("cannot cross")


@pytest.mark.concurrency(modes=MODES, workers=2)
def test_base_exception():
    raise Stop("stopped")


@pytest.mark.concurrency(modes=MODES, workers=2)
def test_long_chain():
    raise chained(20_000)


@pytest.mark.concurrency(modes=MODES, workers=2)
def test_deep_group():
    exc = ValueError("leaf")
    for i in range(3000):
        exc = ExceptionGroup(f"level {{i}}", [exc])
    raise exc
"""

# test -> (exception type, the source line its traceback shows, a word of its message)
EXPECTED = {
    "test_bad_str": ("BadStr", 'raise BadStr("real")', "its message could not be formatted"),
    "test_exits_when_pickled": ("ExitsWhenPickled", 'raise ExitsWhenPickled("cannot cross")',
                                "cannot cross"),
    "test_base_exception": ("Stop", 'raise Stop("stopped")', "stopped"),
    "test_long_chain": ("ValueError", "raise chained(20_000)", "link 19999"),
    "test_deep_group": ("ExceptionGroup", "raise exc", "level 2999"),
}


def sections(text):
    """The FAILURES section of each item: nodeid part -> its text."""
    found, name = {}, None
    for line in text.splitlines():
        stripped = line.strip("_ ")
        if line.startswith("____") and stripped.startswith("test_") and "[" in stripped:
            name = stripped
            found[name] = []
        elif line.startswith("=====") and name:
            name = None
        elif name:
            found[name].append(line)
    return {key: "\n".join(lines) for key, lines in found.items()}


def test_the_real_failure_survives_whatever_the_exception_does(pytester, run):
    pytester.makepyfile(test_unruly=UNRULY)
    result = run("--concurrency-report", "r.json", timeout=300)
    result.assert_outcomes(failed=len(EXPECTED) * len(MODES))
    output = result.stdout.str()
    assert "INTERNALERROR" not in output and "pytest_concurrency/" not in output
    shown = sections(output)
    report = {e["nodeid"]: e for e in json.loads((pytester.path / "r.json").read_text())["tests"]}
    for test, (name, line, message) in EXPECTED.items():
        for mode in MODES:
            text = shown[f"{test}[{mode}]"]
            assert "exited with status" not in text, (test, mode)
            assert f"{name}" in text and line in text and message in text, (test, mode, text)
            worker = "workers 0-1" if mode != "explore" else "worker "
            assert worker in text, (test, mode)
            if mode != "explore":
                assert "in iteration 0" in text, (test, mode)
            (failure,) = report[f"test_unruly.py::{test}[{mode}]"]["failures"]
            assert failure["kind"] in ("exception", "race"), (test, mode)
            assert name in failure["summary"] and line in failure["message"], (test, mode)
    # the chain and the group are cut, saying how much was left out
    assert "19,983 more chained exceptions not shown" in shown["test_long_chain[thread]"]
    assert "max_group_depth" in shown["test_deep_group[thread]"] or \
        "nested more than 10 groups deep" in shown["test_deep_group[thread]"]


HUGE = """
import os
import sys

import pytest


@pytest.mark.concurrency(modes=["thread", "process", "explore"], workers=2)
def test_huge_message():
    raise ValueError("x" * 5_000_000)


@pytest.mark.concurrency(modes=["thread", "process"], workers=2)
def test_many_lines():
    raise ValueError("line\\n" * 1_000_000)


@pytest.mark.concurrency(modes=["process"], workers=1)
def test_huge_stderr_then_crash():
    sys.stderr.write("y" * 20_000_000)
    sys.stderr.flush()
    os._exit(3)


@pytest.mark.concurrency(modes=["process"], workers=1)
def test_huge_stdout_then_fail():
    print("z" * 20_000_000)
    raise AssertionError("after printing")
"""


def test_huge_texts_are_bounded_in_every_report(pytester, run):
    pytester.makepyfile(test_huge=HUGE)
    result = run("--concurrency-report", "r.json", "--junitxml", "j.xml", timeout=300)
    result.assert_outcomes(failed=7)
    output = result.stdout.str()
    assert len(output) < 5_000_000  # whole, the items' text is over 100 MB
    for path in ("r.json", "j.xml"):
        assert (pytester.path / path).stat().st_size < 5_000_000, path
    assert output.count("4.9 MB more not shown") >= 3  # the message, in each mode
    assert "lines (" in output and "more not shown" in output  # a million lines, cut
    shown = sections(output)
    crash = shown["test_huge_stderr_then_crash[process]"]
    assert "exited with status 3" in crash
    assert "before this not shown" in crash  # the tail of 20 MB on one line
    assert "20.0 MB" in crash or "19.9 MB" in crash
    failed = shown["test_huge_stdout_then_fail[process]"]
    assert "AssertionError: after printing" in failed and "before this not shown" in failed
    entries = {e["nodeid"]: e for e in json.loads((pytester.path / "r.json").read_text())["tests"]}
    for entry in entries.values():
        for failure in entry["failures"]:
            assert len(failure["message"]) < 300_000 and len(failure["summary"]) <= 1000
    junit = ET.parse(pytester.path / "j.xml").getroot()
    assert all(len(case.findtext("failure") or "") < 2_000_000 for case in junit.iter("testcase"))


@pytest.mark.parametrize("mode", ["thread", "explore"])
def test_an_outcome_whose_repr_raises_is_tallied(pytester, run, mode):
    pytester.makepyfile(test_tally=f"""
        import pytest

        class Odd:
            def __repr__(self):
                raise RuntimeError("no repr")

            def __eq__(self, other):
                return isinstance(other, Odd)

            def __hash__(self):
                return 1

        @pytest.mark.concurrency(modes=["{mode}"], workers=2)
        def test_actors(concurrency):
            outcomes = concurrency.run_actors(lambda: 1, lambda: 2, arbiter=lambda _: Odd(),
                                              rounds=3)
            outcomes.expect(0)
        """)
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*<Odd object; repr() raised RuntimeError: no repr>*"])
    assert "INTERNALERROR" not in result.stdout.str()


def test_unruly_exceptions_and_names_outside_the_body_are_reported_too(pytester, run):
    """A per-worker fixture's error, a return value whose pickling raises, and a
    leaked thread with a megabyte of name."""
    pytester.makepyfile(test_around="""
        import threading

        import pytest

        class BadStr(Exception):
            def __str__(self):
                raise RuntimeError("str is broken")

        @pytest.fixture
        def broken():
            raise BadStr("fixture")

        @pytest.mark.concurrency(modes=["thread"], workers=2, fixtures="per-worker")
        def test_fixture(broken):
            pass

        class Unsendable:
            def __reduce__(self):
                raise BadStr("reduce")

        @pytest.mark.concurrency(modes=["process"], workers=2)
        def test_return_value():
            return Unsendable()

        STOP = threading.Event()

        @pytest.mark.concurrency(modes=["thread"], workers=1)
        def test_leaked_thread():
            threading.Thread(target=STOP.wait, name="n" * 1_000_000, daemon=True).start()

        def test_stop():
            STOP.set()
        """)
    result = run("--concurrency-report", "r.json")
    result.assert_outcomes(failed=1, passed=2, errors=2)
    output = result.stdout.str()
    assert len(output) < 100_000
    assert "exited with status" not in output and "RuntimeError: str is broken\n" not in output
    result.stdout.fnmatch_lines_random([
        "*a return value could not be sent to the parent: BadStr (its message could not be "
        "formatted: str() raised RuntimeError: str is broken)*",
        "*BadStr*",
        "*daemon thread 'nnnnnnnn*...*",
    ])
