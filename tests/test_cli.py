"""``python -m pytest_concurrency``: show, compare and merge, and their exit codes;
plus the plain functions behind compare (report/diff.py) and merge (report/merge.py)."""

import copy
import json
import os
import subprocess
import sys

import pytest

from pytest_concurrency.report import compare, diff, document, merge

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SAMPLE = os.path.join(HERE, "data", "sample_report.json")
REGRESSING = "tests/test_hashing.py::test_digest_many[process]"


def cli(*args, cwd):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "pytest_concurrency", *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def sample():
    return document.load(SAMPLE)


def scaled(data, factor, nodeids=None, metric="wall"):
    """A copy of ``data`` with ``metric`` of ``nodeids`` (all if None) times ``factor``."""
    data = copy.deepcopy(data)
    for entry in data["tests"]:
        measured = entry["metrics"].get(metric)
        if measured and (nodeids is None or entry["nodeid"] in nodeids):
            for field in ("value", "low", "high"):
                measured[field] *= factor
    return data


def save(path, data):
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def row_of(stdout, test, mode):
    (line,) = [line for line in stdout.splitlines()
               if line.startswith(test + " ") and line.split()[1] == mode]
    return line


# show


def test_show(tmp_path):
    done = cli("show", SAMPLE, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == ("CPython 3.11.7, machine Linux-x86_64-CPython3.11-2cpu, "
                        "commit 3e3dd8f0c1a2, created 2026-11-22T09:10:00+00:00")
    assert lines[2].split() == ["test", "outcome", "wall", "speedup", "budget", "baseline"]
    assert lines[3].startswith(REGRESSING + " ") and lines[3].endswith("+31% regressed")
    assert "failures:" in lines
    assert ("tests/test_ledger.py::test_transfer[explore]: race: "
            "AssertionError: assert 150 == 200") in lines
    assert lines[-1] == "12 entries: 5 passed, 5 failed, 1 skipped, 1 error; 1 regressed"
    assert "advice:" not in done.stdout
    assert done.stderr == ""


def test_show_verbose(tmp_path):
    done = cli("show", "-v", SAMPLE, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "throughput" in done.stdout.splitlines()[2]
    assert "    advice: I/O-bound: threads reach 7.6x" in done.stdout


def test_show_corrupt_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"schema": 1, "tests": [', encoding="utf-8")
    done = cli("show", path, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"pytest-concurrency: {path}: corrupt report")


def test_show_wrong_schema(tmp_path):
    path = save(tmp_path / "future.json", {"schema": 3, "tests": []})
    done = cli("show", path, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"pytest-concurrency: {path}: report schema 3 is not supported "
        "(this version reads schema 2 (and 1); a newer pytest-concurrency wrote it)"]


@pytest.mark.parametrize("data", [{"schema": 1, "tests": [{"nodeid": "x"}]},
                                  {"schema": 1, "tests": ["x"]},
                                  {"schema": 1, "run": [], "tests": []}])
def test_show_malformed_entries(tmp_path, data):
    path = save(tmp_path / "bad.json", data)
    done = cli("show", path, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"pytest-concurrency: malformed report: {path}: ")


def test_show_missing_file_and_usage_errors(tmp_path):
    done = cli("show", tmp_path / "nope.json", cwd=tmp_path)
    assert done.returncode == 2
    assert "nope.json: no such file" in done.stderr
    assert cli(cwd=tmp_path).returncode == 2
    assert cli("frobnicate", cwd=tmp_path).returncode == 2


def test_show_empty_report(tmp_path):
    path = save(tmp_path / "empty.json", {"schema": 1, "tests": []})
    done = cli("show", path, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no test entries" in done.stdout


# compare


def test_compare_with_a_regression(tmp_path):
    old = save(tmp_path / "old.json", sample())
    new = save(tmp_path / "new.json", scaled(sample(), 1.5, {REGRESSING}))
    done = cli("compare", old, new, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["test", "mode", "layout", "old", "wall", "new", "wall",
                                "change", "status"]
    row = row_of(done.stdout, "tests/test_hashing.py::test_digest_many", "process")
    assert lines[1] == row  # regressions first
    assert row.split()[3:] == ["198ms", "297ms", "+50%", "regressed"]
    assert row_of(done.stdout, "tests/test_hashing.py::test_digest_many",
                  "thread").split()[-2:] == ["=", "unchanged"]
    assert lines[-1] == "wall, median:10%: 1 regressed, 8 unchanged, 1 unmeasured"
    assert "explore" not in done.stdout  # a traced run's time is no benchmark
    assert done.stderr == ""


def test_compare_without_a_regression(tmp_path):
    old = save(tmp_path / "old.json", sample())
    new = save(tmp_path / "new.json", scaled(sample(), 0.5, {REGRESSING}))
    done = cli("compare", old, new, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    row = row_of(done.stdout, "tests/test_hashing.py::test_digest_many", "process")
    assert row.split()[-2:] == ["-50%", "improved"]
    assert "regressed" not in done.stdout


def test_compare_threshold_from_fail_on(tmp_path):
    old = save(tmp_path / "old.json", sample())
    new = save(tmp_path / "new.json", scaled(sample(), 1.5, {REGRESSING}))
    done = cli("compare", old, new, "--fail-on", "median:60%", cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[-1].startswith("wall, median:60%: ")


def test_compare_other_metric(tmp_path):
    old = save(tmp_path / "old.json", sample())
    new = save(tmp_path / "new.json", scaled(sample(), 0.5, metric="throughput"))
    done = cli("compare", old, new, "--metric", "throughput", cwd=tmp_path)
    assert done.returncode == 1
    row = row_of(done.stdout, "tests/test_fetch.py::test_fetch_all", "thread")
    assert row.split()[-2:] == ["-50%", "regressed"]
    assert cli("compare", old, new, cwd=tmp_path).returncode == 0  # wall did not change


def test_compare_bad_fail_on(tmp_path):
    old = save(tmp_path / "old.json", sample())
    done = cli("compare", old, old, "--fail-on", "lots", cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("pytest-concurrency: --fail-on='lots': expected a threshold")


def test_compare_bad_input(tmp_path):
    old = save(tmp_path / "old.json", sample())
    done = cli("compare", old, tmp_path / "missing.json", cwd=tmp_path)
    assert done.returncode == 2
    assert "missing.json: no such file" in done.stderr
    assert cli("compare", old, "--metric", "latency", cwd=tmp_path).returncode == 2


def test_compare_removed_new_and_machine_warning(tmp_path):
    old_data, new_data = sample(), sample()
    new_data["run"]["machine"] = "Linux-x86_64-CPython3.12-8cpu"
    new_data["tests"] = [e for e in new_data["tests"]
                         if e["nodeid"] != "tests/test_pool.py::test_pool_timeout[process]"]
    added = copy.deepcopy(new_data["tests"][0])
    added.update(nodeid="tests/test_new.py::test_added[thread]",
                 test="tests/test_new.py::test_added")
    new_data["tests"].append(added)
    done = cli("compare", save(tmp_path / "a.json", old_data), save(tmp_path / "b.json", new_data),
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert row_of(done.stdout, "tests/test_pool.py::test_pool_timeout", "process").split()[-4:] \
        == ["5.02s", "-", "-", "removed"]
    assert row_of(done.stdout, "tests/test_new.py::test_added", "thread").split()[-4:] == \
        ["-", "412ms", "-", "new"]
    assert done.stdout.splitlines()[-3].endswith("removed")  # removed entries last
    (warning,) = done.stderr.splitlines()
    assert warning.startswith("pytest-concurrency: warning: the reports ran on different "
                              "machines (Linux-x86_64-CPython3.11-2cpu and "
                              "Linux-x86_64-CPython3.12-8cpu)")


def test_diff_rows():
    old, new = sample(), scaled(sample(), 1.5, {REGRESSING})
    rows = diff.diff(old, new, 0.1)
    assert [r["status"] for r in rows][:1] == ["regressed"]
    assert rows[0]["key"] == compare.key(old["tests"][1])
    assert rows[0]["old"] == 0.198 and rows[0]["new"] == pytest.approx(0.297)
    assert rows[0]["ratio"] == pytest.approx(1.5)
    assert diff.regressed(rows)
    (unmeasured,) = [r for r in rows if r["status"] == "unmeasured"]
    assert unmeasured["test"] == "tests/test_pool.py::test_skipped"  # no wall in either
    assert not diff.regressed(diff.diff(old, old, 0.1))
    assert diff.table([]) == []
    assert diff.summary([], compare.Rule("median", 0.1)) == "wall, median:10%: no entries"


# merge


def test_merge_two_shards(tmp_path):
    data = sample()
    half = len(data["tests"]) // 2
    first, second = copy.deepcopy(data), copy.deepcopy(data)
    first["tests"], second["tests"] = data["tests"][:half], data["tests"][half:]
    second["created"] = "2026-11-22T09:12:00+00:00"
    out = tmp_path / "out" / "all.json"
    done = cli("merge", save(tmp_path / "a.json", first), save(tmp_path / "b.json", second),
               "-o", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (f"merged {len(data['tests'])} entries from 2 reports "
                                   f"into {out}")
    assert done.stderr == ""
    merged = document.load(str(out))
    assert json.loads(out.read_text())["schema"] == 2  # schema 1 inputs, brought up to date
    assert [e["nodeid"] for e in merged["tests"]] == [e["nodeid"] for e in data["tests"]]
    assert merged["run"]["machine"] == data["run"]["machine"]
    assert merged["run"]["merged_from"] == [
        {"created": "2026-11-22T09:10:00+00:00", "machine": "Linux-x86_64-CPython3.11-2cpu",
         "git_commit": data["run"]["git_commit"]},
        {"created": "2026-11-22T09:12:00+00:00", "machine": "Linux-x86_64-CPython3.11-2cpu",
         "git_commit": data["run"]["git_commit"]}]
    assert cli("show", out, cwd=tmp_path).returncode == 0


def test_merge_duplicate_keeps_the_last(tmp_path):
    first, second = sample(), sample()
    second["tests"] = [e for e in second["tests"] if e["nodeid"] == REGRESSING]
    second["tests"][0]["outcome"] = "failed"
    out = tmp_path / "all.json"
    a, b = save(tmp_path / "a.json", first), save(tmp_path / "b.json", second)
    done = cli("merge", a, b, "-o", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"pytest-concurrency: warning: {REGRESSING} is in {a}, {b}; keeping the entry from {b}"]
    merged = document.load(str(out))
    assert len(merged["tests"]) == len(first["tests"])
    (entry,) = [e for e in merged["tests"] if e["nodeid"] == REGRESSING]
    assert entry["outcome"] == "failed"


def test_merge_missing_input(tmp_path):
    out = tmp_path / "all.json"
    done = cli("merge", SAMPLE, tmp_path / "gone.json", "-o", out, cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line == f"pytest-concurrency: {tmp_path / 'gone.json'}: no such file"
    assert not out.exists()
    assert cli("merge", SAMPLE, cwd=tmp_path).returncode == 2  # -o is required


def test_merge_function_flattens_merged_inputs():
    a, b, c = sample(), sample(), sample()
    for data, day in ((a, "20"), (b, "21"), (c, "22")):
        data["created"] = f"2026-11-{day}T00:00:00+00:00"
    ab = merge.merge([a, b])
    abc = merge.merge([ab, c])
    assert [s["created"][:10] for s in abc["run"]["merged_from"]] == [
        "2026-11-20", "2026-11-21", "2026-11-22"]
    assert abc["schema"] == document.SCHEMA
    assert document.check(json.loads(document.dumps(abc)), "merged") == abc
    assert merge.duplicates([a]) == {}
    assert merge.duplicates([a, b])[REGRESSING] == [0, 1]
    assert "merged_from" not in a["run"]  # inputs are not modified
    with pytest.raises(ValueError):
        merge.merge([])


def test_help_documents_exit_status(tmp_path):
    done = cli("compare", "--help", cwd=tmp_path)
    assert done.returncode == 0
    assert "1 compare found a regression" in " ".join(done.stdout.split())


@pytest.mark.parametrize(("field", "value"), [("value", "fast"), ("low", None),
                                              ("high", [1]), ("value", True)])
def test_a_metric_that_is_not_a_number_is_malformed_for_every_command(tmp_path, field, value):
    data = sample()
    data["tests"][0]["metrics"]["wall"][field] = value
    bad = save(tmp_path / "bad.json", data)
    expected = [f"pytest-concurrency: malformed report: {bad}: "
                f"tests[0].metrics.wall.{field} is not a number"]
    for args in (("show", bad), ("compare", SAMPLE, bad),
                 ("merge", SAMPLE, bad, "-o", tmp_path / "all.json")):
        done = cli(*args, cwd=tmp_path)
        assert (done.returncode, done.stderr.splitlines()) == (2, expected), args
    assert not (tmp_path / "all.json").exists()  # merge copies nothing bad on
