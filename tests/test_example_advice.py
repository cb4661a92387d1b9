"""The advisor is right on example_project's CPU-bound and I/O-bound tests.

Runs ``example_project/tests/test_performance.py`` the way the example project's
own suite does (from ``example_project``, with ``ledger`` importable from
``example_project/src``), then reads the advice in the JSON report and in the
terminal summary.
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from pytest_concurrency import advisor, rounds, spec
from pytest_concurrency.report import document

pytestmark = pytest.mark.serial  # measures speedups: needs both cores to itself

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"
CPU_TEST = "tests/test_performance.py::test_audit_digest_of_a_large_ledger"
IO_TEST = "tests/test_performance.py::test_round_trips_to_a_slow_service"


def _run_example(report):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT")}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(EXAMPLE / "src"), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_performance.py",
         "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:cov",
         "--concurrency-report", str(report)],
        cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=180)


def _advice_lines(stdout):
    """The ``nodeid: advice`` lines of the terminal summary's "concurrency advice"
    section (it ends at the next section; the report path may follow the advice)."""
    _, found, rest = stdout.partition(" concurrency advice ")
    assert found, stdout
    lines = rest.splitlines()[1:]
    end = next((i for i, line in enumerate(lines) if line.startswith("==")), len(lines))
    return [line for line in lines[:end] if "::" in line]


def _advice_from(entries, test, run):
    """The advice the advisor gives on what the report says ``test`` measured (on a
    free-threaded build whose GIL stayed off, as the report's ``run`` says)."""
    measured = {e["mode"]: advisor.ModeMeasurement(
        e["mode"], e["workers"], e["metrics"]["wall"]["value"], e["metrics"]["cpu"]["value"],
        None, e["metrics"]["speedup"]["value"], e["metrics"]["availability"]["value"])
        for e in entries if e["test"] == test}
    return advisor.advise(measured, spec.usable_cpus(),
                          free_threaded=run["gil_disabled_build"] and not run["gil_enabled"])


def test_advice_on_the_example_projects_workloads(tmp_path):
    report = tmp_path / "r.json"
    done = _run_example(report)
    output = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, output

    loaded = document.load(str(report))
    entries, run = loaded["tests"], loaded["run"]
    free_threaded = run["gil_disabled_build"] and not run["gil_enabled"]
    advice = {}
    for entry in entries:
        assert entry["outcome"] == "passed", entry
        advice.setdefault(entry["test"], set()).add(entry["advice"])
    assert set(advice) == {CPU_TEST, IO_TEST}, advice
    assert all(len(texts) == 1 for texts in advice.values()), advice  # same on each mode
    (cpu,), (io,) = advice[CPU_TEST], advice[IO_TEST]

    speedup = {e["mode"]: e["metrics"]["speedup"] for e in entries if e["test"] == CPU_TEST}
    if speedup["process"]["low"] > speedup["thread"]["high"] * advisor.TIE:
        assert cpu.startswith("CPU-bound: "), output
        assert cpu.endswith("; use processes"), output
    else:
        # A busy machine gives processes no free core: then "use processes" would be
        # a guess, and the advice must follow what was measured instead.
        warnings.warn(UserWarning(
            f"processes had no free cores to run {CPU_TEST} in parallel (speedup "
            f"{speedup['process']['value']:.2f}x against threads' "
            f"{speedup['thread']['value']:.2f}x): checked that the advice follows the "
            f"measurement instead of 'use processes'"), stacklevel=1)
        assert cpu == _advice_from(entries, CPU_TEST, run), output
    if not free_threaded:  # under the GIL threads cannot speed the CPU-bound body up
        assert not cpu.endswith("; use threads"), output
    shares = [e["metrics"]["availability"]["value"] for e in entries if e["test"] == IO_TEST]
    if min(shares) >= rounds.BUSY:
        assert io.startswith("I/O-bound: threads reach "), output
    else:
        # On a busy machine the waiting body's little CPU is measured against the share
        # of a CPU a thread got, which can read as partly computing: the advice must
        # then follow the measurement, and threads still win on speedup.
        warnings.warn(UserWarning(
            f"the machine was busy while {IO_TEST} ran (a thread got {min(shares):.0%} of "
            f"a CPU): checked that the advice follows the measurement"), stacklevel=1)
        assert io == _advice_from(entries, IO_TEST, run), output
    assert io.endswith("; use threads"), output

    expected = [f"{CPU_TEST}: {cpu}", f"{IO_TEST}: {io}"]
    assert sorted(_advice_lines(done.stdout)) == expected, output
