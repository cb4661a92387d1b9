"""Per-worker fixtures: under --concurrency-apply (or fixtures="per-worker") every
call of the body gets its own function-scoped fixtures, as in a plain run, so an
ordinary single-threaded test is not failed by the harness."""

import json

import pytest

ORDINARY = """
import logging
import pytest

def test_tmp_path(tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("hello")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.txt"]
    data.unlink()

def test_tmpdir(tmpdir):
    tmpdir.join("x").write("1")
    assert tmpdir.listdir()[0].read() == "1"

def test_capsys(capsys):
    print("hi")
    assert capsys.readouterr().out == "hi\\n"
    print("again", end="")
    assert capsys.readouterr() == ("again", "")

def test_caplog(caplog):
    logging.getLogger("app").warning("careful")
    assert caplog.messages == ["careful"]
    caplog.clear()
    assert caplog.records == []
"""


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_ordinary_tests_pass_under_apply(pytester, mode):
    pytester.makepyfile(test_ordinary=ORDINARY)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--concurrency-apply={mode}", "--concurrency-workers=4",
        "--concurrency-iterations=3", "--concurrency-report=r.json")
    result.assert_outcomes(passed=4)
    entries = json.loads((pytester.path / "r.json").read_text())["tests"]
    assert sorted(e["outcome"] for e in entries) == ["passed"] * 4  # concurrently, not serially


COUNTED = """
import os
import pytest

@pytest.fixture
def resource(worker):  # the worker it is set up for is known during its setup
    box = {"owner": None}
    with open(os.path.join(os.environ["LOG"], f"setup-{os.getpid()}-{id(box)}"), "w") as f:
        f.write(f"setup {worker.index} {worker.iteration}")
    yield box
    with open(os.path.join(os.environ["LOG"], f"teardown-{os.getpid()}-{id(box)}"), "w") as f:
        f.write("teardown")

@pytest.fixture(scope="module")
def shared():
    return []

@pytest.mark.concurrency(modes=["MODE"], workers=4, iterations=2, fixtures="per-worker")
def test_own(resource, shared, worker, barrier):
    assert resource["owner"] is None  # nobody else's
    resource["owner"] = (worker.index, worker.iteration)
    shared.append(worker.index)
    barrier.wait()
    assert resource["owner"] == (worker.index, worker.iteration)
"""


@pytest.mark.parametrize("mode", ["thread", "process", "hybrid", "explore"])
def test_a_function_fixture_is_set_up_once_per_call(pytester, tmp_path, monkeypatch, mode):
    log = tmp_path / "log"
    log.mkdir()
    monkeypatch.setenv("LOG", str(log))
    pytester.makepyfile(test_counted=COUNTED.replace("MODE", mode))
    # explore: one schedule, whose every call (each worker, each iteration) gets its own
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--concurrency-schedules=1")
    result.assert_outcomes(passed=1)
    setups = sorted(path.read_text().strip() for path in log.iterdir()
                    if path.name.startswith("setup"))
    expected = sorted(f"setup {w} {i}" for w in range(4) for i in range(2))
    assert setups == expected  # one instance per worker and iteration, no spare one
    assert len([p for p in log.iterdir() if p.name.startswith("teardown")]) == 8


def test_marked_tests_share_fixtures_unless_asked(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.fixture
        def box():
            return []

        @pytest.mark.concurrency(modes=["thread"], workers=3)
        def test_shared(box, barrier):
            box.append(1)
            barrier.wait()
            assert len(box) == 3
    """)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           "--concurrency-fixtures=per-worker")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert 1 == 3*"])


def test_a_fixture_that_fails_to_set_up_is_an_error_naming_it_and_the_worker(pytester):
    pytester.makepyfile("""
        import itertools
        import pytest

        CALLS = itertools.count()

        @pytest.fixture
        def flaky():
            if next(CALLS) == 2:
                raise ConnectionError("no more connections")
            return 1

        @pytest.mark.concurrency(modes=["thread"], workers=3, fixtures="per-worker")
        def test_uses(flaky):
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_uses[[]thread[]]*",
        ">*raise ConnectionError(\"no more connections\")",
        "E*ConnectionError: no more connections",
        "E*fixture 'flaky' failed to set up for worker 2 in iteration 0",
    ])
    # the user's fixture and its error, not the plugin's hook that set it up
    result.stdout.no_fnmatch_line("*def pytest_runtest_setup*")
    result.stdout.no_fnmatch_line("*direct cause*")


def test_wider_scopes_stay_shared(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.fixture(scope="module")
        def registry():
            return []

        def test_registers(registry, worker, barrier):
            registry.append(worker.index)
            barrier.wait()
            assert sorted(registry) == [0, 1, 2, 3]
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           "--concurrency-apply=thread")
    result.assert_outcomes(passed=1)


def test_leak_check_finds_descendants_from_proc_and_by_scanning(monkeypatch):
    """Descendants come from /proc/<pid>/task/*/children (cheap); without it, from
    psutil's scan of every process: both see the same processes."""
    import subprocess

    from pytest_concurrency import leaks

    child = subprocess.Popen(["sleep", "30"])
    try:
        from_proc = leaks._descendant_keys()
        monkeypatch.setattr(leaks, "_PROC_CHILDREN", False)
        scanned = leaks._descendant_keys()
        assert child.pid in {pid for pid, _ in from_proc}
        assert from_proc == scanned
    finally:
        child.kill()
        child.wait()


def test_a_test_without_fixtures_needs_no_per_call_sets(monkeypatch):
    """Only the mode's parameter: no per-call setup, decided without asking
    pytest which fixtures are wider-scoped; anything more is looked up."""
    from types import SimpleNamespace

    from pytest_concurrency import compat, items, spec

    looked = []

    @compat.contextlib.contextmanager
    def without(item):  # as pytest would answer: tmp_path is function-scoped
        looked.append(item)
        names, item.fixturenames = item.fixturenames, [spec.SPEC_ARG]
        yield
        item.fixturenames = names

    monkeypatch.setattr(compat, "without_function_fixtures", without)
    assert items._fresh_per_call(SimpleNamespace(fixturenames=[spec.SPEC_ARG])) is False
    assert looked == []
    item = SimpleNamespace(fixturenames=[spec.SPEC_ARG, "tmp_path"])
    assert items._fresh_per_call(item) is True
    assert looked == [item]
