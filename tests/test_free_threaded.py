"""Free-threaded builds and Python 3.14, simulated: these machines have neither, so
the tests give the plugin the answers such an interpreter would."""

import json
import sys

import pytest

from pytest_concurrency import advisor, gil, spec
from pytest_concurrency.advisor import ModeMeasurement

GIL_WARNING = ("The global interpreter lock (GIL) has been enabled to load module "
               "'fastext._speedups', which has not declared that it can run safely without "
               "the GIL. To override this behavior and keep the GIL disabled (at your own "
               "risk), run with PYTHON_GIL=0 or -Xgil=0.")


@pytest.fixture
def free_threaded(monkeypatch):
    """A free-threaded build whose GIL is off until something turns it on."""
    state = {"enabled": False}
    monkeypatch.setattr(gil, "FREE_THREADED", True)
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: state["enabled"], raising=False)
    return state


def test_the_report_records_the_build_and_the_gil(pytester, free_threaded):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_x():
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--concurrency-report=r.json",
                                "--concurrency-report=r.html")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["concurrency: free-threaded CPython (Py_GIL_DISABLED); the "
                                 "GIL is disabled"])
    run = json.loads((pytester.path / "r.json").read_text())["run"]
    assert (run["gil_disabled_build"], run["gil_enabled"], run["gil_reenabled_by"]) == \
        (True, False, [])
    assert "disabled (free-threaded build)" in (pytester.path / "r.html").read_text()


def test_an_import_that_re_enables_the_gil_is_named(pytester, free_threaded):
    pytester.makepyfile(f"""
        import warnings
        import pytest

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_imports_an_old_extension(worker):
            if worker.index == 0:
                warnings.warn({GIL_WARNING!r}, RuntimeWarning)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--concurrency-report=r.json")
    result.stdout.fnmatch_lines([
        "the GIL was re-enabled at run time by importing 'fastext._speedups' (during "
        "test_an_import_that_re_enables_the_gil_is_named.py::test_imports_an_old_extension"
        "[[]thread[]]): threads ran one at a time from then on*"])
    run = json.loads((pytester.path / "r.json").read_text())["run"]
    assert run["gil_reenabled_by"][0]["module"] == "fastext._speedups"


def test_a_build_with_the_gil_reports_it_and_prints_no_header(pytester):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", "--concurrency-report=r.json")
    assert "free-threaded" not in result.stdout.str()
    run = json.loads((pytester.path / "r.json").read_text())["run"]
    assert run["gil_disabled_build"] is gil.FREE_THREADED
    assert run["gil_enabled"] is True


def test_the_advisor_keeps_cpu_bound_work_on_threads_that_run_in_parallel():
    """With the GIL off, threads as fast as processes: no 'use processes'."""
    thread = ModeMeasurement("thread", 2, wall=1.05, cpu=2.0, peak_rss=None, speedup=1.9)
    process = ModeMeasurement("process", 2, wall=1.1, cpu=2.1, peak_rss=None, speedup=1.85)
    advice = advisor.advise({"thread": thread, "process": process}, 2, free_threaded=True)
    assert advice.startswith("CPU-bound: threads reach 1.9x with 2 workers")
    assert advice.endswith("use threads")
    from_runs = advisor.advise_from_runs({"thread": thread, "process": process}, 2,
                                         free_threaded=True)
    assert from_runs.endswith("threads run it in parallel, the GIL is released or absent; "
                              "use threads")


def test_python_3_14s_forkserver_default_does_not_change_ours(monkeypatch):
    """3.14 makes forkserver multiprocessing's default on Linux; the plugin asks for
    fork explicitly there (and the explicit methods keep working: test_process.py)."""
    import multiprocessing

    monkeypatch.setattr(multiprocessing, "get_start_method", lambda allow_none=False:
                        "forkserver")
    monkeypatch.setattr(sys, "platform", "linux")
    assert spec.default_start_method() == "fork"
    (run_spec,) = spec.resolve({"modes": ["process"]}, spec.Settings())
    assert run_spec.start_method == "fork"


def test_the_build_is_told_by_its_abi_flags_as_sysconfig_tells_it():
    """Read at every pytest start: the ABI flags' ``t`` (PEP 703), not the build's whole
    configuration, which sysconfig loads in a few milliseconds."""
    import sysconfig

    assert gil._free_threaded() is bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    assert gil.FREE_THREADED is gil._free_threaded()
