"""Tests that cannot run concurrently in a mode run once, serially, and say why:
pytest-run-parallel's thread_unsafe marker, and thread-unsafe techniques found in
the test's fixtures and source.  Process mode isolates memory and runs them."""

import io
import json
import os
import sys
import unittest.mock as um
import warnings as w
from os import environ

from pytest_concurrency import unsafe

SUITE = """
import os
import warnings
from unittest import mock
import pytest

def test_monkeypatch(monkeypatch):
    monkeypatch.setenv("X", "1")
    assert os.environ["X"] == "1"

def test_capfd(capfd):
    os.write(1, b"x")
    assert capfd.readouterr().out == "x"

def test_mock_patch():
    with mock.patch("os.getcwd", return_value="/nowhere"):
        assert os.getcwd() == "/nowhere"

@mock.patch("os.getcwd", return_value="/elsewhere")
def test_mock_decorator(getcwd):
    assert os.getcwd() == "/elsewhere"

def helper():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")

def test_calls_a_helper_that_catches_warnings():
    helper()

def test_pytest_warns():
    with pytest.warns(UserWarning):
        warnings.warn("w", UserWarning)

@pytest.mark.thread_unsafe(reason="uses a global registry")
def test_marked():
    pass

def test_plain():
    pass
"""

REASONS = {
    "test_monkeypatch": "uses monkeypatch",
    "test_capfd": "uses capfd",
    "test_mock_patch": "uses unittest.mock.patch",
    "test_mock_decorator": "uses unittest.mock.patch",
    "test_calls_a_helper_that_catches_warnings": "uses warnings.catch_warnings",
    "test_pytest_warns": "uses pytest.warns",
    "test_marked": "marked thread_unsafe: uses a global registry",
}


def test_thread_unsafe_tests_run_serially_and_say_why(pytester):
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--concurrency-apply=thread,process", "-v",
        "--concurrency-report=r.json", "--strict-markers")
    result.assert_outcomes(passed=16)
    entries = {e["nodeid"].split("::")[1]: e
               for e in json.loads((pytester.path / "r.json").read_text())["tests"]}
    for name, reason in REASONS.items():
        assert (entries[f"{name}[thread]"]["outcome"], entries[f"{name}[thread]"]["serial"]) \
            == ("serial", reason)
        assert entries[f"{name}[process]"]["outcome"] == "passed"  # memory is isolated
    assert entries["test_plain[thread]"]["outcome"] == "passed"
    result.stdout.fnmatch_lines([
        "7 items ran serially, once, not concurrently:*",
        "  test_suite.py::test_marked[[]thread[]]: serial: marked thread_unsafe: uses a "
        "global registry"])


GLOBAL_HOOKS = """
import contextlib
import io
import os
import sys
import threading
from os import environ

def test_replaces_stderr():
    saved, sys.stderr = sys.stderr, io.StringIO()
    try:
        print("to the test's own stream", file=sys.stderr)
        assert sys.stderr.getvalue() == "to the test's own stream\\n"
    finally:
        sys.stderr = saved

def test_replaces_the_excepthook():
    seen = []
    saved = sys.excepthook
    sys.excepthook = lambda *args: seen.append(args[0])
    try:
        sys.excepthook(ValueError, ValueError(), None)
        assert seen == [ValueError]
    finally:
        sys.excepthook = saved

def install(hook):  # a helper of the test's module, as traceback tests have
    setattr(threading, "excepthook", hook)

def test_replaces_the_threading_excepthook():
    saved = threading.excepthook
    install(lambda args: None)
    install(saved)

def test_sets_the_environment():
    environ["H1_SETTING"] = "on"
    try:
        assert os.environ["H1_SETTING"] == "on"
    finally:
        del os.environ["H1_SETTING"]

def test_changes_directory(tmp_path):
    saved = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert os.getcwd() == str(tmp_path)
    finally:
        os.chdir(saved)

def test_redirects_stdout():
    with contextlib.redirect_stdout(io.StringIO()) as out:
        print("captured")
    assert out.getvalue() == "captured\\n"

def test_only_reads_them():
    assert sys.stderr is not None and sys.excepthook is not None and "PATH" in os.environ
"""

HOOK_REASONS = {
    "test_replaces_stderr": "assigns sys.stderr",
    "test_replaces_the_excepthook": "assigns sys.excepthook",
    "test_replaces_the_threading_excepthook": "assigns threading.excepthook",
    "test_sets_the_environment": "sets os.environ[...]",
    "test_changes_directory": "uses os.chdir",
    "test_redirects_stdout": "uses contextlib.redirect_stdout",
}


def test_tests_that_replace_process_wide_streams_and_hooks_run_serially(pytester, run):
    pytester.makepyfile(test_hooks=GLOBAL_HOOKS)
    result = run("--concurrency-apply=thread", "--concurrency-workers=4",
                 "--concurrency-report=r.json")
    result.assert_outcomes(passed=7)
    entries = {e["nodeid"].split("::")[1]: e
               for e in json.loads((pytester.path / "r.json").read_text())["tests"]}
    assert {name[:-len("[thread]")]: entry["serial"] for name, entry in entries.items()
            if entry["outcome"] == "serial"} == HOOK_REASONS
    assert entries["test_only_reads_them[thread]"]["outcome"] == "passed"


def test_detection_can_be_turned_off_but_the_marker_still_counts(pytester):
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--concurrency-apply=thread", "--concurrency-workers=1",
        "--concurrency-detect-unsafe=off", "--concurrency-report=r.json")
    result.assert_outcomes(passed=8)  # one worker each: nothing to race with
    entries = {e["nodeid"].split("::")[1]: e
               for e in json.loads((pytester.path / "r.json").read_text())["tests"]}
    assert entries["test_monkeypatch[thread]"]["serial"] is None
    assert entries["test_marked[thread]"]["serial"] == \
        "marked thread_unsafe: uses a global registry"


def test_the_markdown_lists_what_ran_serially(pytester):
    pytester.makepyfile(test_suite=SUITE)
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--concurrency-apply=thread",
                                  "--concurrency-report=r.md")
    markdown = (pytester.path / "r.md").read_text()
    assert "### Ran serially" in markdown
    assert "`test_suite.py::test_monkeypatch[thread]`: uses monkeypatch" in markdown


def test_source_detection_resolves_aliases():
    def aliased():
        with um.patch.object(w, "warn"):
            pass

    def clean():
        return 1

    assert unsafe.unsafe_call(aliased) == "uses unittest.mock.patch.object"
    assert unsafe.unsafe_call(clean) is None
    assert unsafe.unsafe_call(print) is None  # no source: assumed safe


def test_source_detection_parses_a_module_once_and_finds_decorated_defs(monkeypatch):
    """Every test of a module is found in one parse of the module (decorated ones
    by their first decorator's line, as their code says), not read again."""
    def marked(function):
        return function

    @marked
    @marked
    def decorated():
        with um.patch("os.getcwd"):
            pass

    def other():
        w.warn("x", stacklevel=2)

    parsed = []
    real_parse = unsafe.ast.parse
    monkeypatch.setattr(unsafe.ast, "parse",
                        lambda *a, **k: parsed.append(a) or real_parse(*a, **k))
    unsafe._defs.cache_clear()
    assert unsafe._definition(decorated).name == "decorated"
    assert unsafe._definition(other).name == "other"
    assert unsafe._definition(lambda: 0) is None  # not a def: read from its own source
    assert len(parsed) == 1
    assert unsafe._scan.__wrapped__(decorated, 0) == "uses unittest.mock.patch"
    assert unsafe._scan.__wrapped__(other, 0) is None
    assert len(parsed) == 1


def test_source_detection_finds_what_replaces_process_wide_state():
    def streams():
        sys.stdout, sys.stderr = io.StringIO(), io.StringIO()

    def hook():
        sys.unraisablehook = print

    def deleted():
        del environ["H1_SETTING"]

    def environment():
        os.environ.setdefault("H1_SETTING", "on")

    def through_setattr():
        setattr(sys, "stdin", io.StringIO())  # noqa: B010 - the form it must see through

    def reads():
        print(sys.stdout, os.environ.get("H1_SETTING"), environ["PATH"], sys.path)
        setattr(io, "x", 1)  # noqa: B010 - not a process-wide hook
        return getattr(sys, "stderr")  # noqa: B009 - a read

    assert unsafe.unsafe_call(streams) in ("assigns sys.stdout", "assigns sys.stderr")
    assert unsafe.unsafe_call(hook) == "assigns sys.unraisablehook"
    assert unsafe.unsafe_call(deleted) == "deletes os.environ[...]"
    assert unsafe.unsafe_call(environment) == "uses os.environ.setdefault"
    assert unsafe.unsafe_call(through_setattr) == "assigns sys.stdin"
    assert unsafe.unsafe_call(reads) is None
