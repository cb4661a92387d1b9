"""The plain-text report table and failure list (report/terminal.py)."""

import copy
import os

import pytest

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
