"""The comparison rules baselines, --concurrency-compare-fail and the CLI share,
and the baseline file's merge, checked directly."""

import json

import pytest

from pytest_concurrency.report import baseline, compare, document


@pytest.mark.parametrize(("text", "threshold"), [
    ("median:10%", 0.10), ("10%", 0.10), ("0.25", 0.25), (" median : 5 % ", 0.05),
])
def test_parse_rule_accepts_the_documented_forms(text, threshold):
    rule = compare.parse_rule(text)
    assert rule.stat == "median" and rule.threshold == pytest.approx(threshold)


@pytest.mark.parametrize(("text", "message"), [
    ("mean:10%", "'mean' is not a statistic it can compare"),
    ("ten percent", "expected a threshold like 'median:10%'"),
    ("0%", "the threshold must be above 0"),
])
def test_parse_rule_names_the_option_and_the_problem(text, message):
    with pytest.raises(compare.CompareError) as excinfo:
        compare.parse_rule(text)
    assert str(excinfo.value).startswith(f"--concurrency-compare-fail={text!r}: ")
    assert message in str(excinfo.value)


def wall(value, low=None, high=None):
    return document.metric("wall", value, low, high, 5)


@pytest.mark.parametrize(("new", "status"), [
    (wall(1.30, 1.20, 1.40), "regressed"),  # even the low end is > 10% slower
    (wall(1.30, 1.05, 1.40), "unchanged"),  # the interval reaches within the threshold
    (wall(0.80, 0.75, 0.85), "improved"),
    (wall(0.95, 0.85, 1.05), "unchanged"),
])
def test_judge_needs_the_whole_interval_beyond_the_threshold(new, status):
    verdict = compare.judge(wall(1.0), new, 0.10)
    assert verdict["status"] == status
    assert verdict["ratio"] == pytest.approx(new["value"])


def test_judge_turns_higher_is_better_around():
    old = document.metric("throughput", 1000.0)
    slower = document.metric("throughput", 500.0, 450.0, 550.0, 5)
    assert compare.judge(old, slower, 0.10, "throughput")["status"] == "regressed"
    faster = document.metric("throughput", 2000.0, 1900.0, 2100.0, 5)
    assert compare.judge(old, faster, 0.10, "throughput")["status"] == "improved"


def test_judge_without_a_baseline_is_new():
    assert compare.judge(None, wall(1.0), 0.1)["status"] == "new"


RUN = {"machine": "Linux-x86_64-CPython3.11-2cpu", "git_commit": "abc"}


def entry(test, mode="thread", outcome="passed", value=1.0):
    return {"test": test, "mode": mode, "layout": "2", "outcome": outcome,
            "metrics": {"wall": wall(value)}}


def test_saving_merges_passing_measured_entries_only():
    text = baseline.merged(None, "b.json", RUN, "t0", [
        entry("t.py::a"), entry("t.py::b", outcome="failed"), entry("t.py::c", mode="explore")])
    text = baseline.merged(text, "b.json", RUN, "t1", [entry("t.py::d", value=2.0)])
    saved = json.loads(text)["machines"][RUN["machine"]]
    assert sorted(saved) == ["t.py::a|thread|2", "t.py::d|thread|2"]
    assert saved["t.py::d|thread|2"]["saved"] == "t1"


def test_saving_into_a_corrupt_baseline_is_an_error_not_an_overwrite():
    with pytest.raises(document.ReportError, match="b.json: corrupt baseline"):
        baseline.merged("{not json", "b.json", RUN, "t", [entry("t.py::a")])
    with pytest.raises(document.ReportError, match="schema 2 is not supported"):
        baseline.merged('{"schema": 2, "machines": {}}', "b.json", RUN, "t", [])


def test_judging_marks_entries_new_or_compared_on_the_same_machine_kind():
    stored = json.loads(baseline.merged(None, "b.json", RUN, "t", [entry("t.py::a")]))
    tests = [entry("t.py::a", value=2.0), entry("t.py::b"), entry("t.py::a", mode="explore")]
    for e in tests:
        e["baseline"] = None
    baseline.judge(tests, stored, RUN["machine"], 0.1)
    assert [e["baseline"] and e["baseline"]["status"] for e in tests] == [
        "regressed", "new", None]
    baseline.judge(tests[:1], stored, "Linux-aarch64-CPython3.13-8cpu", 0.1)
    assert tests[0]["baseline"]["status"] == "new"
