"""The advisor is right on example_project's CPU-bound and I/O-bound tests: run
them as the example project's own suite does, and read the report."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_concurrency.report import document

pytestmark = pytest.mark.serial  # measures speedups: needs both cores to itself

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"


def test_advice_on_the_example_projects_workloads(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(EXAMPLE / "src"), env.get("PYTHONPATH")]))
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_performance.py", "-p", "no:cacheprovider",
         "-p", "no:xdist", "-p", "no:cov", "--concurrency-report", str(report)],
        cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    advice = {e["test"]: e["advice"] for e in document.load(str(report))["tests"]}
    cpu = advice["tests/test_performance.py::test_audit_digest_of_a_large_ledger"]
    io = advice["tests/test_performance.py::test_round_trips_to_a_slow_service"]
    assert cpu.startswith("CPU-bound: process mode ran ") and cpu.endswith("; use processes")
    assert io.startswith("I/O-bound: threads reach ") and io.endswith("; use threads")
    section = done.stdout.split("concurrency advice")[1]
    assert f"test_audit_digest_of_a_large_ledger: {cpu}" in section
    assert f"test_round_trips_to_a_slow_service: {io}" in section
