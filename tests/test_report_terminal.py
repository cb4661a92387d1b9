"""The plain-text report table and failure list (report/terminal.py)."""

import copy
import json
import os

import pytest
from terminal_screen import screen

from pytest_concurrency.report import document, terminal

SAMPLE = os.path.join(os.path.dirname(__file__), "data", "sample_report.json")


@pytest.fixture
def tests():
    return document.load(SAMPLE)["tests"]


def by_nodeid(lines, nodeid):
    (line,) = [line for line in lines if line.startswith(nodeid + " ")]
    return line


def cells(line):
    return line.split()


def test_regressions_first_then_failures_then_the_rest(tests):
    lines = terminal.table(tests)
    rows = [line.split()[0] for line in lines[1:]]
    assert rows[0] == "tests/test_hashing.py::test_digest_many[process]"  # regressed
    failing = {e["nodeid"] for e in tests if e["outcome"] in ("failed", "error")}
    assert set(rows[1:1 + len(failing)]) == failing
    assert rows[1 + len(failing):] == sorted(rows[1 + len(failing):])
    assert len(rows) == len(tests)


def test_compact_columns(tests):
    lines = terminal.table(tests)
    assert cells(lines[0]) == ["test", "outcome", "wall", "speedup", "budget", "baseline"]
    row = by_nodeid(lines, "tests/test_hashing.py::test_digest_many[process]")
    assert cells(row) == ["tests/test_hashing.py::test_digest_many[process]", "passed",
                          "198ms", "1.73x", "pass", "+31%", "regressed"]
    assert "advice" not in "\n".join(lines)
    assert "MiB" not in "\n".join(lines)  # no memory column


def test_verbose_columns_and_advice_line(tests):
    lines = terminal.table(tests, verbose=True)
    assert cells(lines[0]) == ["test", "outcome", "workers", "iterations", "wall", "cpu",
                               "memory", "throughput", "speedup", "budget", "baseline"]
    index = lines.index(by_nodeid(lines, "tests/test_hashing.py::test_digest_many[process]"))
    assert cells(lines[index])[1:9] == ["passed", "2", "1", "198ms", "390ms", "79.2MiB",
                                        "10.1/s", "1.73x"]
    assert lines[index + 1] == (f"{terminal.INDENT}advice: CPU-bound: process mode ran 2.1x "
                                "faster than thread mode; use processes")
    hybrid = by_nodeid(lines, "tests/test_cache.py::test_cache_budget[hybrid]")
    assert cells(hybrid)[2] == "2x2"
    # an entry without advice has no continuation line
    index = lines.index(by_nodeid(lines, "tests/test_pool.py::test_skipped[thread]"))
    assert index == len(lines) - 1


def test_missing_values_print_as_dash(tests):
    compact = by_nodeid(terminal.table(tests), "tests/test_pool.py::test_skipped[thread]")
    assert cells(compact)[1:] == ["skipped", "-", "-", "-", "-"]
    verbose = by_nodeid(terminal.table(tests, verbose=True),
                        "tests/test_ledger.py::test_transfer[thread]")
    assert cells(verbose)[1:] == ["passed", "4", "1", "3.1ms", "2.9ms", "-", "1.29k/s", "-",
                                  "-", "-"]
    entry = {"nodeid": "t.py::t[thread]", "test": "t.py::t", "mode": "thread"}
    assert cells(terminal.table([entry], verbose=True)[1])[1:] == ["-"] * 10


def test_budget_and_baseline_cells(tests):
    lines = terminal.table(tests)
    assert "FAIL memory, inconclusive wall" in by_nodeid(
        lines, "tests/test_cache.py::test_cache_budget[hybrid]")
    assert cells(by_nodeid(lines, "tests/test_fetch.py::test_fetch_all[thread]"))[-3:] == \
        ["pass", "-19%", "improved"]
    assert cells(by_nodeid(lines, "tests/test_fetch.py::test_fetch_all[process]"))[-1] == "new"
    assert cells(by_nodeid(lines, "tests/test_hashing.py::test_digest_many[thread]"))[-1] == "+2%"


@pytest.mark.parametrize(("baseline", "text"), [
    (None, "-"),
    ({"status": "new", "ratio": None, "metric": "wall"}, "new"),
    ({"status": "unchanged", "ratio": 1.001, "metric": "wall"}, "="),
    ({"status": "unchanged", "ratio": 0.97, "metric": "wall"}, "-3%"),
    ({"status": "regressed", "ratio": 2.5, "metric": "wall"}, "+150% regressed"),
    ({"status": "regressed", "ratio": 0.8, "metric": "throughput"},
     "-20% throughput regressed"),
])
def test_baseline_text(baseline, text):
    assert terminal.baseline_text(baseline) == text


@pytest.mark.parametrize(("checks", "text"), [
    ([], "-"),
    (None, "-"),
    ([{"key": "wall", "verdict": "pass"}], "pass"),
    ([{"key": "wall", "verdict": "inconclusive"}, {"key": "cpu", "verdict": "fail"}],
     "FAIL cpu, inconclusive wall"),
    ([{"key": "memory", "verdict": "unmeasured"}], "unmeasured memory"),
])
def test_budget_text(checks, text):
    assert terminal.budget_text(checks) == text


@pytest.mark.parametrize("verbose", [False, True])
def test_columns_are_aligned(tests, verbose):
    lines = [line for line in terminal.table(tests, verbose) if not line.startswith(" ")]
    header = lines[0]
    names = cells(header)
    ends = {name: header.index(name) + len(name) for name in names}
    starts = {name: header.index(name) for name in names}
    for line in lines[1:]:
        for name in ("outcome", "budget", "baseline"):  # left-aligned: same start
            assert line[starts[name] - 2:starts[name]] == "  "
            assert line[starts[name]] != " "
        for name in ("wall", "speedup"):  # right-aligned: same end
            assert line[ends[name] - 1] != " "
            assert line[ends[name]] == " "
    assert all(line == line.rstrip() for line in lines)


def test_long_nodeids_cut_from_the_left_only_in_compact(tests):
    entry = copy.deepcopy(tests[0])
    entry["nodeid"] = "tests/" + "deep/" * 30 + "test_x.py::test_long[thread]"
    compact = terminal.table([entry])[1]
    first = compact.split("  ")[0]
    assert len(first) == terminal.MAX_TEST_WIDTH
    assert first.startswith("\u2026") and first.endswith("test_x.py::test_long[thread]")
    assert terminal.table([entry], verbose=True)[1].startswith(entry["nodeid"] + " ")


def test_no_entries_no_table():
    assert terminal.table([]) == []
    assert terminal.failures([]) == []


def test_failures(tests):
    lines = terminal.failures(tests)
    assert lines[0] == ("tests/test_cache.py::test_cache_budget[hybrid]: budget: "
                        "memory 143.1MiB (142.1MiB-144.0MiB) exceeds memory <= 128MiB")
    race = lines.index("tests/test_ledger.py::test_transfer[explore]: race: "
                       "AssertionError: assert 150 == 200")
    assert lines[race + 1] == (
        f"{terminal.INDENT}replay: pytest 'tests/test_ledger.py::test_transfer[explore]' "
        "--concurrency-replay=c1.eJyrVkrOz0vOz0vOz0vOz0vOz0")
    crash = lines.index("tests/test_native.py::test_parse[process]: crash: worker 3 (pid 1234) "
                        "killed by SIGSEGV (signal 11) in iteration 17 after 0.42s")
    assert lines[crash + 1].startswith("tests/test_native.py::test_parse[process]: exception:")
    failures = sum(len(e["failures"]) for e in tests)
    replays = sum(bool(f["replay_command"]) for e in tests for f in e["failures"])
    assert len(lines) == failures + replays


def test_failure_summary_kept_to_one_line():
    entry = {"nodeid": "t.py::t[thread]", "failures": [
        {"kind": "exception", "summary": "ValueError: x\nmore", "replay_command": None}]}
    assert terminal.failures([entry]) == ["t.py::t[thread]: exception: ValueError: x"]


def test_run_line_and_totals():
    data = document.load(SAMPLE)
    assert terminal.run_line(data) == (
        "CPython 3.11.7, machine Linux-x86_64-CPython3.11-2cpu, commit 3e3dd8f0c1a2, "
        "created 2026-11-22T09:10:00+00:00")
    assert terminal.run_line({"run": {}}) == (
        "python -, machine -, commit -, created -")
    assert terminal.totals(data["tests"]) == (
        "12 entries: 5 passed, 5 failed, 1 skipped, 1 error; 1 regressed")


def test_compact_table_leaves_out_columns_nobody_filled():
    entry = {"nodeid": "t.py::test_a[thread]", "test": "t.py::test_a", "mode": "thread",
             "layout": "4", "outcome": "passed", "metrics": {"wall": {"value": 0.02}},
             "budget": [], "baseline": None, "failures": []}
    lines = terminal.table([entry])
    assert lines[0].split() == ["test", "outcome", "wall"]
    assert lines[1].split() == ["t.py::test_a[thread]", "passed", "20ms"]
    assert terminal.table([entry], verbose=True)[0].split()[-3:] == ["speedup", "budget",
                                                                    "baseline"]


# -- a whole suite under --concurrency-apply --------------------------------------------------


def plain(name, outcome="passed", wall=0.01, **fields):
    entry = {"nodeid": f"t.py::{name}[thread]", "test": f"t.py::{name}", "mode": "thread",
             "layout": "4", "outcome": outcome, "metrics": {"wall": {"value": wall}},
             "budget": [], "baseline": None, "failures": []}
    entry.update(fields)
    return entry


def suite(count=300):
    return [plain(f"test_{i:03d}", wall=0.01 + i * 1e-5) for i in range(count)]


def test_a_whole_suite_shows_what_needs_a_look_and_counts_the_rest():
    entries = suite() + [
        plain("test_failed", "failed"), plain("test_serial", "serial", serial="uses capsys"),
        plain("test_interrupted", "interrupted"), plain("test_skipped", "skipped"),
        plain("test_slow", wall=3.0),
        plain("test_budget", budget=[{"key": "wall", "verdict": "pass"}]),
        plain("test_regressed", baseline={"status": "regressed", "ratio": 1.5}),
        plain("test_leaked", failures=[{"kind": "leak", "summary": "thread left running"}]),
        explored(), plain("test_marked"),
    ]
    countable = {e["nodeid"] for e in entries} - {"t.py::test_marked[thread]"}
    lines = terminal.table(entries, countable=countable)
    shown = {line.split()[0] for line in lines[1:-1]}
    assert shown == {f"t.py::test_{name}[thread]" for name in (
        "failed", "serial", "interrupted", "slow", "budget", "regressed", "leaked",
        "marked")} | {"t.py::test_passed[explore]"}
    assert lines[-1] == ("... and 301 more items with nothing to look at: 300 passed, "
                         "1 skipped (-v lists them)")
    verbose = terminal.table(entries, verbose=True, countable=countable)
    assert len([line for line in verbose if line.startswith("t.py::")]) == len(entries)
    assert "nothing to look at" not in "\n".join(verbose)
    # without countable entries (no --concurrency-apply, or `show` of a report file)
    assert len(terminal.table(entries)) == len(entries) + 1
    # a run that went on past its timeout (making progress) is slow whatever the others
    lines = terminal.table(entries, countable=countable, overran={"t.py::test_007[thread]"})
    assert "t.py::test_007[thread]" in {line.split()[0] for line in lines}
    assert lines[-1].startswith("... and 300 more items")


def test_a_suite_with_nothing_to_look_at_is_one_line():
    entries = suite(5000)
    assert terminal.table(entries, countable={e["nodeid"] for e in entries}) == [
        "5,000 items with nothing to look at: 5,000 passed (-v lists them)"]


def test_slow_is_ten_times_the_median_one_percent_of_the_total_and_a_second():
    entries = [plain(f"test_{i:03d}", wall=0.15) for i in range(300)]  # 45 s together
    assert terminal.slow(entries) == set()
    entries.append(plain("test_long", wall=3.0))  # 20x the median, 6% of the total
    entries.append(plain("test_longish", wall=1.4))  # 9x
    assert terminal.slow(entries) == {"t.py::test_long[thread]"}
    few = [plain("a", wall=0.1), plain("b", wall=0.1), plain("c", wall=1.1)]
    assert terminal.slow(few) == {"t.py::c[thread]"}
    # a trivial test a busy machine held up is not slow
    assert terminal.slow([*suite(300), plain("test_held_up", wall=0.5)]) == set()
    # in a suite of a thousand, a test ten times the median is not 1% of the time
    many = [plain(f"test_{i}", wall=0.2) for i in range(1000)] + [plain("ten", wall=2.0)]
    assert terminal.slow(many) == set()
    assert terminal.slow([plain("alone", wall=5.0)]) == set()
    assert terminal.slow([explored(), plain("x", wall=0.001), plain("y", wall=0.001)]) == set()


def test_needs_a_look():
    assert not terminal.needs_a_look(plain("a"))
    assert not terminal.needs_a_look(plain("a", "skipped"))
    assert not terminal.needs_a_look(plain("a", "xfailed"))
    for outcome in ("failed", "error", "interrupted", "serial", "xpassed"):
        assert terminal.needs_a_look(plain("a", outcome))
    assert terminal.needs_a_look(plain("a"), {"t.py::a[thread]"})
    assert terminal.needs_a_look(explored())
    assert not terminal.needs_a_look(plain("a", baseline={"status": "unchanged"}))


def test_the_session_table_of_an_applied_suite(pytester):
    """300 passing tests under --concurrency-apply: one line; a failure, a serial test
    and a marked test each keep a row; -v lists every item."""
    tests = "\n".join(f"def test_{i:03d}():\n    pass\n" for i in range(300))
    pytester.makepyfile(test_suite=tests + """
import pytest

def test_fails():
    assert False

@pytest.mark.thread_unsafe(reason="changes the process's umask")
def test_serial():
    pass

@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_marked():
    pass
""")
    args = ("-p", "no:cacheprovider", "-p", "no:randomly", "--concurrency-apply", "thread")
    result = pytester.runpytest(*args, "--concurrency-report", "r.json")
    result.assert_outcomes(passed=302, failed=1)
    # a busy machine may hold a trivial test up for a second now and then: that run
    # is slow (terminal.slow), and its row is the one a reader must see; on a quiet
    # machine there is none
    entries = json.loads((pytester.path / "r.json").read_text())["tests"]
    slow = terminal.slow(entries)
    assert all(e["metrics"]["wall"]["value"] >= terminal.SLOW_MIN
               for e in entries if e["nodeid"] in slow)
    section = result.stdout.str().split("= concurrency =")[1]
    rows = [line.split()[0] for line in section.splitlines() if line.startswith("test_")]
    looked_at = {"test_suite.py::test_fails[thread]", "test_suite.py::test_marked[thread]",
                 "test_suite.py::test_serial[thread]"}
    assert sorted(rows) == sorted(looked_at | slow)
    rest = 300 - len(slow - looked_at)
    result.stdout.fnmatch_lines([f"... and {rest} more items with nothing to look at: "
                                 f"{rest} passed (-v lists them)"])
    verbose = pytester.runpytest(*args, "-v")
    section = verbose.stdout.str().split("= concurrency =")[1]
    assert len([line for line in section.splitlines() if line.startswith("test_")]) == 303
    assert "nothing to look at" not in section


# -- explore items ---------------------------------------------------------------------------


def explored(outcome="passed", **fields):
    exploration = {"strategy": "pct", "seed": 3, "workers": 2, "schedules": 200,
                   "budget": 200, "complete": False,
                   "verdict": "200 schedules explored (strategy=pct, seed=3, 2 workers, "
                              "Python 3.12, sys.monitoring)",
                   "outcomes": 2, "outcome_counts": {"1": 150, "2": 50},
                   "schedules_per_second": 160.2, "switch_points": "sys.monitoring",
                   "python": "3.12", "interleaving": None}
    exploration.update(fields)
    return {"nodeid": f"t.py::test_{outcome}[explore]", "test": f"t.py::test_{outcome}",
            "mode": "explore", "layout": "2", "workers": 2, "iterations": 1,
            "outcome": outcome, "metrics": {"wall": {"value": 1.25},
                                            "throughput": {"value": 1.6}},
            "budget": [], "baseline": None, "failures": [], "exploration": exploration}


def test_explore_throughput_is_schedules_per_second():
    entries = [explored(), explored("failed", schedules_per_second=None),
               explored("skipped", schedules_per_second=1234.5)]
    lines = terminal.table(entries, verbose=True)
    throughput = cells(lines[0]).index("throughput")
    row = by_nodeid(lines, "t.py::test_passed[explore]")
    assert "160 sched/s" in row and "1.6/s" not in row
    assert "1.23k sched/s" in by_nodeid(lines, "t.py::test_skipped[explore]")
    assert cells(by_nodeid(lines, "t.py::test_failed[explore]"))[throughput] == "-"
    thread = {"nodeid": "t.py::t[thread]", "metrics": {"throughput": {"value": 1.6}}}
    assert "1.6/s" in terminal.table([thread], verbose=True)[1]


def test_verbose_table_gives_the_verdict_under_an_explore_row():
    complete = explored(complete=True, strategy="dpor", verdict="12 schedules explored "
                        "(strategy=dpor, seed=3, 2 workers, Python 3.12, sys.monitoring); "
                        "all interleavings with <= 2 preemptions explored")
    complete["nodeid"] = "t.py::test_verified[explore]"
    lines = terminal.table([explored(), complete], verbose=True)
    index = lines.index(by_nodeid(lines, "t.py::test_passed[explore]"))
    assert lines[index + 1] == (
        f"{terminal.INDENT}explore: 200 schedules explored (strategy=pct, seed=3, 2 workers, "
        "Python 3.12, sys.monitoring); bounded: not every interleaving was explored")
    index = lines.index(by_nodeid(lines, "t.py::test_verified[explore]"))
    assert lines[index + 1].endswith("all interleavings with <= 2 preemptions explored")
    assert "explore:" not in "\n".join(terminal.table([explored()]))  # only with -v


@pytest.mark.parametrize(("fields", "text"), [
    ({}, "bounded: 200 of 200 schedules, 2 distinct outcomes (pct, seed 3)"),
    ({"complete": True, "schedules": 12, "outcomes": 1, "strategy": "dpor"},
     "verified: all 12 interleavings explored, 1 distinct outcome (dpor, seed 3)"),
    ({"schedules": 9, "interleaving": {"schedule": 8, "steps": []}},
     "schedule 8 failed, 9 of 200 run (pct, seed 3)"),
])
def test_exploration_text(fields, text):
    assert terminal.exploration_text(explored(**fields)["exploration"]) == text
    assert terminal.exploration_text(None) is None


# -- an exploration's progress ---------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def shown():
    """A Progress on a fake terminal: (progress, clock, everything written)."""
    written, clock = [], Clock()
    progress = terminal.Progress(written.append, lambda: 60, clock)
    return progress, clock, written


def test_a_short_exploration_shows_nothing(shown):
    progress, clock, written = shown
    for done in range(1, 200):
        clock.now += 0.004  # 200 schedules in 0.8s
        progress(done, 200, 1)
    progress.clear()
    assert written == []


def test_progress_after_a_second_at_most_every_half_second(shown):
    progress, clock, written = shown
    for done in range(1, 301):
        clock.now += 0.01  # 3s in all
        progress(done, 300, 1 + done // 100)
    # at 1.0s, then every 0.5s: 1.5, 2.0, 2.5, 3.0
    assert len(written) == 5
    lines, col = screen("".join(written), "test_x.py ..")
    assert lines == ["test_x.py .. [explore 300/300 schedules, 4 distinct outcomes]"]
    assert screen(written[0], "test_x.py ..")[0] == [
        "test_x.py .. [explore 100/300 schedules, 2 distinct outcomes]"]
    progress.clear()
    lines, col = screen("".join(written), "test_x.py ..")
    assert lines == ["test_x.py .."] and col == len("test_x.py ..")  # where pytest left it
    progress.clear()  # twice is harmless
    assert screen("".join(written), "test_x.py ..") == (["test_x.py .."], 12)


def test_progress_shrinking_text_leaves_nothing_behind(shown):
    progress, clock, written = shown
    clock.now += 1
    progress(1000, 1000, 10)
    clock.now += 1
    progress(2, 1000, 1)  # shorter: the rest of the old text is blanked
    assert screen("".join(written), "t ")[0] == [
        "t  [explore 2/1000 schedules, 1 distinct outcome]"]


def test_progress_never_wraps_the_line():
    written, clock = [], Clock()
    room = [30]
    progress = terminal.Progress(written.append, lambda: room[0], clock)
    clock.now += 1
    progress(5, 200, 1)
    assert written == [" [5/200, 1 outcome]"]  # the short form fits
    written.clear()
    room[0] = 5
    progress = terminal.Progress(written.append, lambda: room[0], clock)
    clock.now += 1
    progress(5, 200, 1)
    progress.clear()
    assert written == []


def test_progress_only_from_the_main_thread(shown):
    import threading

    progress, clock, written = shown
    clock.now += 2
    thread = threading.Thread(target=progress, args=(1, 2, 1))
    thread.start()
    thread.join()
    assert written == []


class FakeConfig:
    """Just what terminal.progress asks of a pytest config."""

    def __init__(self, tty=True, capture="fd", log_cli=False, log_cli_level=None,
                 worker=False):
        self.plugins = {"terminalreporter": type("R", (), {"isatty": tty})(),
                        "capturemanager": object()}
        self.options = {"capture": capture, "log_cli_level": log_cli_level}
        self.ini = {"log_cli": log_cli}
        self.registered = {}
        if worker:
            self.workerinput = {"workerid": "gw0"}
        self.pluginmanager = self

    def get_plugin(self, name):
        return self.plugins.get(name) or self.registered.get(name)

    def register(self, plugin, name):
        self.registered[name] = plugin

    def getoption(self, name, default=None):
        return self.options.get(name, default)

    def getini(self, name):
        return self.ini[name]

    def get_terminal_writer(self):
        return object()


@pytest.mark.parametrize(("kwargs", "on"), [
    ({}, True),
    ({"tty": False}, False),  # piped to a file or CI log
    ({"worker": True}, False),  # a pytest-xdist worker
    ({"capture": "no"}, False),  # -s: the body writes to the terminal too
    ({"log_cli": True}, False),  # live logging writes during the test
    ({"log_cli_level": "INFO"}, False),
])
def test_progress_is_off_where_it_would_garble_the_output(kwargs, on):
    config = FakeConfig(**kwargs)
    assert (terminal.progress(config) is not None) is on
    assert bool(config.registered) is on  # the plugin that wipes it before the outcome
