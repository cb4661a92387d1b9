"""Report files, baselines and JUnit properties through pytest: what a user's CI
gets from ``--concurrency-report``, ``--concurrency-baseline`` and friends."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from pytest_concurrency.report import baseline, document

SUITE = """
import os
import threading
import time
import pytest

@pytest.mark.concurrency(modes=["thread", "process"], workers=2)
def test_fine():
    time.sleep(0.001)

@pytest.mark.concurrency_budget(wall="10s", cpu="10s")
@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_budgeted():
    time.sleep(0.002)

@pytest.mark.concurrency_budget(cpu="1us")
@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_over_budget():
    sum(range(200_000))

class Counter:
    value = 0

@pytest.mark.concurrency(modes=["explore"], workers=2, seed=0)
def test_race():
    c = Counter()
    def bump():
        v = c.value
        c.value = v + 1
    ts = [threading.Thread(target=bump) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert c.value == 2

@pytest.mark.concurrency(modes=["process"], workers=2)
def test_crash(worker):
    if worker.index == 1:
        os._exit(3)

@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_two_ways(worker):
    if worker.index == 0:
        raise ValueError("zero")
    raise KeyError("one")

EVENT = threading.Event()

@pytest.mark.concurrency(modes=["thread"], workers=1, leaks="fail")
def test_leak():
    threading.Thread(target=EVENT.wait, name="left-behind", daemon=True).start()

def test_plain():
    pass
"""


def entries_by_id(report):
    return {e["nodeid"]: e for e in report["tests"]}


def kinds(entry):
    return sorted(f["kind"] for f in entry["failures"])


def test_json_report_holds_metrics_verdicts_and_every_failure(pytester, run):
    pytester.makepyfile(test_suite=SUITE)
    result = run("--concurrency-report", "out/report.json")
    result.assert_outcomes(passed=5, failed=4, errors=1)
    report = document.load(str(pytester.path / "out" / "report.json"))
    assert report["schema"] == 2
    for key in ("python", "platform", "cpu_count", "cpu_affinity", "usable_cpus",
                "git_commit", "xdist_workers", "machine"):
        assert key in report["run"], key
    assert report["run"]["xdist_workers"] == 0
    tests = entries_by_id(report)
    assert "test_suite.py::test_plain" not in tests  # only concurrent items
    fine = tests["test_suite.py::test_fine[process]"]
    assert (fine["outcome"], fine["mode"], fine["layout"], fine["test"]) == \
        ("passed", "process", "2", "test_suite.py::test_fine")
    assert fine["metrics"]["wall"]["unit"] == "s" and fine["metrics"]["wall"]["better"] == "lower"
    assert fine["metrics"]["throughput"]["better"] == "higher"
    assert fine["metrics"]["wall"]["rounds"] == 1 and fine["metrics"]["wall"]["value"] > 0
    budgeted = tests["test_suite.py::test_budgeted[thread]"]
    assert budgeted["metrics"]["wall"]["rounds"] >= 5
    assert [(b["key"], b["verdict"]) for b in budgeted["budget"]] == [("wall", "pass"),
                                                                     ("cpu", "pass")]
    over = tests["test_suite.py::test_over_budget[thread]"]
    assert over["outcome"] == "failed" and kinds(over) == ["budget"]
    assert over["failures"][0]["summary"].startswith("cpu <= 1µs: measured")
    race = tests["test_suite.py::test_race[explore]"]
    assert kinds(race) == ["race"]
    token = race["failures"][0]["replay"]
    assert token and race["failures"][0]["replay_command"] == (
        f"pytest 'test_suite.py::test_race[explore]' --concurrency-replay={token}")
    crash = tests["test_suite.py::test_crash[process]"]
    assert kinds(crash) == ["crash"] and "exited with status 3" in crash["failures"][0]["summary"]
    assert crash["failures"][0]["workers"] == [1]
    two = tests["test_suite.py::test_two_ways[thread]"]
    assert kinds(two) == ["exception", "exception"]
    assert sorted(f["summary"] for f in two["failures"]) == ["KeyError: 'one'",
                                                              "ValueError: zero"]
    leak = tests["test_suite.py::test_leak[thread]"]
    assert leak["outcome"] == "error" and kinds(leak) == ["leak"]
    assert "left-behind" in leak["failures"][0]["message"]
    # the terminal summary has one row per test x mode
    table = result.stdout.str().split("concurrency ==")[1]
    for nodeid in tests:
        assert nodeid in table
    result.stdout.fnmatch_lines(["concurrency report written to *report.json"])


def test_markdown_and_html_reports_and_the_step_summary(pytester, run, monkeypatch):
    pytester.makepyfile(test_suite=SUITE)
    summary = pytester.path / "step_summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run("--concurrency-report", "r.md", "--concurrency-report", "r.html")
    md = (pytester.path / "r.md").read_text()
    assert md.startswith("## pytest-concurrency")
    assert "`test_suite.py::test_race[explore]`" in md and "--concurrency-replay=" in md
    assert summary.read_text() == "earlier step\n\n" + md  # appended, GitHub's contract
    page = (pytester.path / "r.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "test_suite.py::test_crash[process]" in page and "<svg" in page


def test_unknown_report_format_is_a_usage_error(pytester, run):
    pytester.makepyfile(test_suite="def test_x(): pass")
    result = run("--concurrency-report", "r.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--concurrency-report=*r.txt*unknown format '.txt'*"
                                 "use a path ending in .json, .md, .html*"])


def comparable(report):
    """What must match between a serial and a pytest-xdist run: all but values."""
    return sorted(
        (e["nodeid"], e["outcome"], e["mode"], e["layout"], kinds(e),
         sorted(e["metrics"]), [(b["key"], b["verdict"]) for b in e["budget"]])
        for e in report["tests"])


def test_xdist_run_reports_the_same_as_a_serial_run(pytester, run):
    pytester.makepyfile(test_suite=SUITE)
    run("--concurrency-report", "serial.json")
    result = run("-n", "2", "--concurrency-report", "xdist.json")
    result.assert_outcomes(passed=5, failed=4, errors=1)
    serial = document.load(str(pytester.path / "serial.json"))
    xdist = document.load(str(pytester.path / "xdist.json"))
    assert comparable(xdist) == comparable(serial)
    assert xdist["run"]["xdist_workers"] == 2
    assert not [p for p in pytester.path.iterdir() if p.name.startswith(".xdist")]


def test_an_xdist_worker_dying_loses_only_its_own_test(pytester, run):
    pytester.makepyfile(test_suite="""
        import os
        import pytest

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_kills_the_xdist_worker(worker):
            if worker.index == 0:
                os._exit(9)

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        @pytest.mark.parametrize("n", range(6))
        def test_fine(n):
            pass
    """)
    result = run("-n", "2", "--concurrency-report", "r.json")
    result.assert_outcomes(passed=6, failed=1)
    tests = entries_by_id(document.load(str(pytester.path / "r.json")))
    assert sorted(tests) == [f"test_suite.py::test_fine[thread-{n}]" for n in range(6)] + [
        "test_suite.py::test_kills_the_xdist_worker[thread]"]
    dead = tests["test_suite.py::test_kills_the_xdist_worker[thread]"]
    assert dead["outcome"] == "failed" and kinds(dead) == ["crash"]
    assert "crashed" in dead["failures"][0]["message"]


SLOW = """
import os
import time
import pytest

DELAY = float(os.environ.get("DELAY", "0.01"))
STEADY = float(os.environ.get("STEADY", "0.01"))

@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_timed():
    time.sleep(DELAY)

@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_steady():
    time.sleep(STEADY)
"""


def test_baseline_saved_then_a_slowdown_fails_the_test(pytester, run, monkeypatch):
    # Sleeps long beside what a busy machine adds to them: at a load of 10 on 2 CPUs
    # waking up took 10-15 ms more, so a baseline of 10 ms sleeps was saved as 24 ms,
    # the 5x slower run then read as 2x (and the load excused it), and the steady
    # test as 'improved'. Load lengthens a sleep, never shortens it: against 100 ms
    # it cannot make 5x look like less than 3x, nor a steady test change by 50%.
    monkeypatch.setenv("DELAY", "0.1")
    monkeypatch.setenv("STEADY", "0.1")
    pytester.makepyfile(test_suite=SLOW)
    saved = run("--concurrency-save-baseline", "--concurrency-baseline", "base.json")
    saved.assert_outcomes(passed=2)
    stored = baseline.load(str(pytester.path / "base.json"))
    (machine, tests), = stored["machines"].items()
    assert sorted(tests) == ["test_suite.py::test_steady|thread|2",
                             "test_suite.py::test_timed|thread|2"]
    assert tests["test_suite.py::test_timed|thread|2"]["metrics"]["wall"]["rounds"] >= 5
    monkeypatch.setenv("DELAY", "0.5")  # five times slower
    pytester.makepyfile(test_new="""
        import pytest

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_new():
            pass
    """)
    # 50%: the unchanged test must not fail it on a loaded machine (its interval may
    # straddle the limit there: a warning, which --concurrency-strict would make a
    # failure); 5x slower must, busy machine or not: a sleep is not slowed by load
    result = run("--concurrency-baseline", "base.json", "--concurrency-compare-fail",
                 "median:50%", "--concurrency-report", "r.json")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*concurrency budget exceeded*", "*regression <= 50%*"])
    tests = entries_by_id(document.load(str(pytester.path / "r.json")))
    timed = tests["test_suite.py::test_timed[thread]"]
    assert timed["baseline"]["status"] == "regressed" and timed["baseline"]["ratio"] > 2
    assert kinds(timed) == ["budget"]
    assert tests["test_suite.py::test_steady[thread]"]["baseline"]["status"] == "unchanged"
    assert tests["test_new.py::test_new[thread]"]["baseline"]["status"] == "new"


def test_a_corrupt_baseline_is_a_clear_error(pytester, run):
    pytester.makepyfile(test_suite=SLOW)
    (pytester.path / "base.json").write_text('{"schema": 1, "kind": "baseline", "machi')
    result = run("--concurrency-baseline", "base.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest-concurrency: *base.json: corrupt baseline (not JSON*"])
    (pytester.path / "base.json").write_text('{"schema": 7, "machines": {}}')
    result = run("--concurrency-baseline", "base.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*base.json: baseline schema 7 is not supported*"])


def test_concurrent_sessions_saving_one_baseline_lose_nothing(pytester):
    tests = "\n".join(f"""
@pytest.mark.concurrency(modes=["thread"], workers=1)
def test_{n}():
    pass
""" for n in range(8))
    pytester.makepyfile(test_suite="import pytest\n" + tests)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    sessions = [subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", f"test_{n}",
         "--concurrency-save-baseline", "--concurrency-baseline", "base.json"],
        cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for n in range(8)]
    for session in sessions:
        out, _ = session.communicate(timeout=120)
        assert session.returncode == 0, out.decode()
    stored = baseline.load(str(pytester.path / "base.json"))
    (machine, saved), = stored["machines"].items()
    assert sorted(saved) == [f"test_suite.py::test_{n}|thread|1" for n in range(8)]


def test_baseline_writers_in_threads_serialize_under_the_lock(tmp_path):
    path = str(tmp_path / "base.json")
    run = document.platform_info() | {"git_commit": None, "xdist_workers": 0}

    def save(n):
        entry = {"test": f"t.py::test_{n}", "mode": "thread", "layout": "2",
                 "outcome": "passed", "metrics": {"wall": document.metric("wall", n + 1.0)}}
        baseline.save(path, {"run": run, "created": "now", "tests": [entry]})

    import threading

    threads = [threading.Thread(target=save, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    saved = baseline.load(path)["machines"][run["machine"]]
    assert len(saved) == 16
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_junit_user_properties_are_opt_in(pytester, run):
    pytester.makepyfile(test_suite=SLOW)
    run("--junitxml", "plain.xml")
    run("--junitxml", "props.xml", "--concurrency-junit")
    plain = ET.parse(pytester.path / "plain.xml").getroot()
    assert not [p for p in plain.iter("property") if p.get("name").startswith("concurrency.")]
    props = ET.parse(pytester.path / "props.xml").getroot()
    case = next(c for c in props.iter("testcase") if c.get("name") == "test_timed[thread]")
    names = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert names["concurrency.mode"] == "thread" and names["concurrency.layout"] == "2"
    assert float(names["concurrency.wall"]) > 0.01
    assert "concurrency.cpu" in names and "concurrency.throughput" in names


def test_report_json_is_valid_when_written(tmp_path):
    """The file is replaced atomically: no temp file or partial JSON remains."""
    from pytest_concurrency.report import files

    path = tmp_path / "sub" / "r.json"
    files.write(str(path), json.dumps({"schema": 1, "tests": []}))
    assert json.loads(path.read_text()) == {"schema": 1, "tests": []}
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]


def test_the_lock_file_is_kept_out_of_the_reports_directory(tmp_path, pytester, run):
    """Nothing but the report lands beside it: the lock file lives in the user's
    lock directory, one per report path, and concurrent writers still serialize."""
    import threading

    from pytest_concurrency.report import files

    path = tmp_path / "counter.json"
    lock = files.lock_path(str(path))
    assert not lock.startswith(str(tmp_path)) and lock.endswith(".lock")
    assert files.lock_path(str(tmp_path / "." / "counter.json")) == lock
    assert files.lock_path(str(tmp_path / "other.json")) != lock

    def bump():
        for _ in range(20):
            files.update(str(path), lambda old: str(int(old or 0) + 1))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert path.read_text() == "80"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter.json"]

    pytester.makepyfile(test_suite="""
        import pytest

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_x():
            pass
    """)
    run("--concurrency-report=X.json", "--concurrency-report=X.html").assert_outcomes(
        passed=1)
    assert sorted(p.name for p in pytester.path.iterdir() if p.name.startswith("X")) == [
        "X.html", "X.json"]


def test_a_report_is_written_even_when_nothing_concurrent_ran(pytester, run):
    """CI steps that upload the report must find it."""
    pytester.makepyfile(test_suite="def test_plain(): pass")
    result = run("--concurrency-report", "r.json")
    result.assert_outcomes(passed=1)
    assert document.load(str(pytester.path / "r.json"))["tests"] == []
    assert "== concurrency ==" not in result.stdout.str()


def test_plain_suites_do_not_load_the_runtime(pytester):
    """Without concurrent items the runners, psutil, the report writers, the item
    hooks, unittest support and explore stay unimported and their per-test hooks
    unregistered: what every session imports is the options, the settings and the
    fixtures' names."""
    pytester.makepyfile(test_suite="""
        import sys

        def test_plain(request):
            pass

        def test_nothing_heavy_is_loaded(request):
            loaded = [m for m in ("psutil", "multiprocessing", "filelock",
                                  "pytest_concurrency.runners", "pytest_concurrency.running",
                                  "pytest_concurrency.report.collector",
                                  "pytest_concurrency.report.files",
                                  "pytest_concurrency.report.document",
                                  "pytest_concurrency.report.html",
                                  "pytest_concurrency.report.markdown",
                                  "pytest_concurrency.report.compare",
                                  "pytest_concurrency.items", "pytest_concurrency.testcase",
                                  "pytest_concurrency.unsafe", "pytest_concurrency.context",
                                  "pytest_concurrency.results", "pytest_concurrency.explore")
                      if m in sys.modules]
            assert loaded == []
            manager = request.config.pluginmanager
            assert manager.has_plugin("concurrency")
            assert not manager.has_plugin("concurrency-items")
            assert not manager.has_plugin("concurrency-report")
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:cov",
                                           "-p", "no:xdist", "-p", "no:benchmark")
    result.assert_outcomes(passed=2)


def test_a_regression_budget_is_checked_against_the_baseline(pytester, run, monkeypatch):
    pytester.makepyfile(test_suite="""
        import os
        import time
        import pytest

        @pytest.mark.concurrency_budget(regression="50%")
        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_timed():
            time.sleep(float(os.environ.get("DELAY", "0.01")))
    """)
    run("--concurrency-save-baseline", "--concurrency-baseline", "base.json").assert_outcomes(
        passed=1)
    unchanged = run("--concurrency-baseline", "base.json")
    unchanged.assert_outcomes(passed=1)
    monkeypatch.setenv("DELAY", "0.05")
    # strict: on a busy machine a failing wall-clock limit only warns without it
    slower = run("--concurrency-baseline", "base.json", "--concurrency-strict")
    slower.assert_outcomes(failed=1)
    slower.stdout.fnmatch_lines(["*concurrency budget exceeded*",
                                 "regression <= 50%: measured *: over budget"])
    no_baseline = run()  # nothing to compare with: the limit is not checked
    no_baseline.assert_outcomes(passed=1)


def test_serial_rounds_give_the_body_its_worker_and_a_barrier(pytester, run):
    """A speedup budget runs the body serially too: worker and barrier still work,
    with every worker's index and iteration seen once per round."""
    pytester.makepyfile(test_suite="""
        import collections
        import pytest

        SEEN = collections.Counter()

        @pytest.mark.concurrency_budget(speedup=">=0.0001")
        @pytest.mark.concurrency(modes=["thread"], workers=3, iterations=2)
        def test_uses_worker(worker, barrier):
            SEEN[worker.index, worker.iteration] += 1
            barrier.wait()

        def test_every_worker_and_iteration_ran_serially_and_concurrently():
            assert sorted(SEEN) == [(w, i) for w in range(3) for i in range(2)]
            assert len(set(SEEN.values())) == 1 and SEEN[0, 0] >= 10  # 5+ rounds, twice
    """)
    run("-p", "no:randomly").assert_outcomes(passed=2)


def test_files_get_the_usual_permissions(tmp_path):
    from pytest_concurrency.report import files

    old = os.umask(0o022)
    try:
        files.write(str(tmp_path / "r.json"), "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644


def test_a_corrupt_default_baseline_stops_a_saving_session_at_once(pytester, run):
    pytester.makepyfile(test_suite=SLOW)
    (pytester.path / "concurrency-baseline.json").write_text('{"schema": 1, "machines": {')
    result = run("--concurrency-save-baseline")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*concurrency-baseline.json: corrupt baseline*"])


def test_an_unwritable_report_is_one_clear_line_at_the_start(pytester, run):
    pytester.makepyfile(test_suite=SLOW)
    (pytester.path / "taken.json").write_text("a file, not a directory")
    result = run("--concurrency-report", "taken.json/r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest-concurrency: --concurrency-report='*taken.json/r.json'"
                                 ": *taken.json is not a directory"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_report_where_no_file_can_be_made_fails_at_once(pytester, run):
    """/proc takes no new files: a session learns it before its first test, not
    after waiting a minute for a file lock after its last one."""
    pytester.makepyfile(test_suite=SLOW)
    for option in ("--concurrency-report=/proc/r.json",
                   "--concurrency-baseline=/proc/base.json"):
        result = run(option, "--concurrency-save-baseline", timeout=30)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"*pytest-concurrency: {option.split('=')[0]}='/proc/*': "
                                     "cannot create a file in /proc: *"])
        result.stdout.no_fnmatch_line("*passed*")


BROKEN_HTML = """
import pytest_concurrency.report.html as html

def broken(report):
    raise RuntimeError("the HTML writer broke")

html.render = broken
"""


def test_one_failing_writer_costs_no_other_report_nor_junit(pytester, run):
    pytester.makepyfile(test_suite=SLOW)
    pytester.makeconftest(BROKEN_HTML)
    result = run("--concurrency-report=r.json", "--concurrency-report=r.html",
                 "--concurrency-report=r.md", "--junitxml=junit.xml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines([
        "pytest-concurrency: could not write *r.html: RuntimeError: the HTML writer broke",
        "concurrency report written to *r.json",
        "concurrency report written to *r.md",
        "*2 passed*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert len(document.load(str(pytester.path / "r.json"))["tests"]) == 2
    assert (pytester.path / "r.md").read_text().startswith("## pytest-concurrency")
    assert not (pytester.path / "r.html").exists()
    cases = ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    assert len(list(cases)) == 2


@pytest.mark.parametrize("entry", ['"oops"', "7", '{"t|thread|2": 7}',
                                   '{"t|thread|2": {"metrics": {"wall": {"value": "fast"}}}}'])
def test_a_malformed_baseline_entry_is_a_clear_error(pytester, run, entry):
    pytester.makepyfile(test_suite=SLOW)
    text = '{"schema": 1, "kind": "baseline", "machines": {"m": ENTRY}}'
    (pytester.path / "base.json").write_text(text.replace("ENTRY", entry))
    result = run("--concurrency-baseline", "base.json", "--concurrency-compare-fail", "10%",
                 "--concurrency-report", "r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    (line,) = [line for line in result.stderr.lines if line.strip()]
    assert line.startswith("ERROR: pytest-concurrency: malformed baseline: ")
    assert "base.json: machines['m']" in line
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_the_step_summary_is_written_without_asking_for_markdown(pytester, run, monkeypatch):
    pytester.makepyfile(test_suite=SLOW)
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run()
    assert summary.read_text().startswith("## pytest-concurrency")
    assert "test_suite.py::test_timed[thread]" in summary.read_text()
    summary.unlink()
    run("--concurrency-step-summary=off")
    assert not summary.exists()
    pytester.makeini("[pytest]\nconcurrency_step_summary = false\n")
    run()
    assert not summary.exists()
    run("--concurrency-step-summary=on")  # the command line beats the ini file
    assert summary.exists()


def test_no_step_summary_for_a_session_without_concurrent_items(pytester, run,
                                                                 monkeypatch):
    pytester.makepyfile(test_plain="def test_plain(): pass")
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run()
    assert not summary.exists()


def test_the_step_summary_is_written_once_by_the_xdist_controller(pytester, run,
                                                                   monkeypatch):
    pytester.makepyfile(test_suite=SLOW)
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run("-n", "2")
    assert summary.read_text().count("## pytest-concurrency") == 1


def test_a_unittest_skip_in_a_concurrent_testcase_skips(pytester, run):
    pytester.makepyfile(test_suite="""
        import unittest
        import pytest

        class TC(unittest.TestCase):
            @pytest.mark.concurrency(workers=2)
            @unittest.skip("not today")
            def test_skipped(self):
                raise AssertionError("must not run")
    """)
    result = run("-rs", "--concurrency-report", "r.json")
    result.assert_outcomes(skipped=1)
    (e,) = document.load(str(pytester.path / "r.json"))["tests"]
    assert e["outcome"] == "skipped" and e["failures"] == []


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs a directory no file can be made in")
def test_the_reports_are_written_when_pytests_junit_writer_fails(pytester, run):
    """pytest's own JUnit writer raising (it cannot make /proc/j.xml) costs it
    its file, not the concurrency reports."""
    pytester.makepyfile(test_suite=SUITE)
    result = run("--junitxml=/proc/j.xml", "--concurrency-report=r.json",
                 "--concurrency-report=r.md")
    tests = entries_by_id(document.load(str(pytester.path / "r.json")))
    assert tests["test_suite.py::test_fine[process]"]["outcome"] == "passed"
    assert tests["test_suite.py::test_crash[process]"]["outcome"] == "failed"
    assert "test_suite.py::test_fine[thread]" in (pytester.path / "r.md").read_text()
    assert "/proc/j.xml" in result.stdout.str() + result.stderr.str()
