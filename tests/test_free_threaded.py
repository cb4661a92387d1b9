"""Free-threaded CPython, for real: the build and the GIL in the header and the reports,
and an extension module without the free-threading slot turning the GIL back on in a
worker (built here, from C, with the interpreter's own compiler settings).

CI runs this file on python3.13t and on builds with a GIL; what only one kind of build
can show is skipped on the other, saying so.  Python 3.14 (forkserver by default) cannot
be built on these machines: its one difference that matters here is given to the plugin.
"""

import json
import shlex
import shutil
import subprocess
import sys
import sysconfig

import pytest

from pytest_concurrency import advisor, gil, spec
from pytest_concurrency.advisor import ModeMeasurement

GIL_WARNING = ("The global interpreter lock (GIL) has been enabled to load module "
               "'fastext._speedups', which has not declared that it can run safely without "
               "the GIL. To override this behavior and keep the GIL disabled (at your own "
               "risk), run with PYTHON_GIL=0 or -Xgil=0.")

needs_free_threading = pytest.mark.skipif(
    not gil.FREE_THREADED, reason="only a free-threaded build (python3.13t) can turn its GIL "
                                  "back on at run time; CI runs this on 3.13t")


def test_the_header_and_the_reports_say_which_build_this_is(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_x():
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           "--concurrency-report=r.json",
                                           "--concurrency-report=r.html")
    result.assert_outcomes(passed=1)
    run = json.loads((pytester.path / "r.json").read_text())["run"]
    html = (pytester.path / "r.html").read_text()
    if gil.FREE_THREADED:
        result.stdout.fnmatch_lines(["concurrency: free-threaded CPython (Py_GIL_DISABLED); "
                                     "the GIL is disabled"])
        assert (run["gil_disabled_build"], run["gil_enabled"], run["gil_reenabled_by"]) == \
            (True, False, [])
        assert "disabled (free-threaded build)" in html
    else:
        assert "free-threaded" not in result.stdout.str()
        assert (run["gil_disabled_build"], run["gil_enabled"], run["gil_reenabled_by"]) == \
            (False, True, [])
        assert "free-threaded" not in html


OLD_EXTENSION = """
#include <Python.h>

/* Single-phase initialisation and no Py_mod_gil slot: it has not declared that it
   can run without the GIL, so a free-threaded build turns the GIL on to load it. */
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "oldext", NULL, -1, NULL};

PyMODINIT_FUNC PyInit_oldext(void) { return PyModule_Create(&module); }
"""


@pytest.fixture
def old_extension(pytester, on_ci):
    """``oldext``, a C extension module without the free-threading slot, built in the
    test's directory with this interpreter's compiler settings."""
    source = pytester.path / "oldext.c"
    source.write_text(OLD_EXTENSION)
    target = pytester.path / f"oldext{sysconfig.get_config_var('EXT_SUFFIX')}"
    link = shlex.split(sysconfig.get_config_var("LDSHARED") or "cc -shared")
    if shutil.which(link[0]) is None:
        message = f"no C compiler ({link[0]}) to build the extension module with"
        if on_ci:
            pytest.fail(message)  # CI has one: a missing compiler is a broken CI
        pytest.skip(message)
    subprocess.run([*link, *shlex.split(sysconfig.get_config_var("CCSHARED") or ""),
                    "-I", sysconfig.get_path("include"), str(source), "-o", str(target)],
                   check=True, capture_output=True)
    return target


@needs_free_threading
@pytest.mark.parametrize("warnings", [[], ["-W", "error"], ["-W", "ignore::RuntimeWarning"]],
                         ids=["warned", "W-error", "W-ignored"])
def test_an_extension_without_the_slot_re_enables_the_gil_and_is_named(
        pytester, old_extension, warnings):
    """Whatever becomes of CPython's warning (shown, raised by -W error, or dropped), the
    terminal and the report name the import and the test it happened in."""
    pytester.makepyfile(test_imports="""
        import pytest

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_imports_an_old_extension(worker):
            if worker.index == 0:
                import oldext
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *warnings,
                                           "--concurrency-report=r.json")
    nodeid = "test_imports.py::test_imports_an_old_extension[thread]"
    if warnings == ["-W", "error"]:
        result.assert_outcomes(failed=1)  # the warning, raised by the import
        result.stdout.fnmatch_lines(["*RuntimeWarning: The global interpreter lock (GIL) "
                                     "has been enabled to load module 'oldext'*"])
    else:
        result.assert_outcomes(passed=1)
    pattern = nodeid.replace("[thread]", "[[]thread[]]")  # fnmatch's brackets
    result.stdout.fnmatch_lines([
        f"the GIL was re-enabled at run time by importing 'oldext' (during {pattern}): "
        "threads ran one at a time from then on*"])
    run = json.loads((pytester.path / "r.json").read_text())["run"]
    assert run["gil_disabled_build"] is True
    assert run["gil_enabled"] is True
    assert run["gil_reenabled_by"] == [{"module": "oldext", "during": nodeid}]


def test_the_warning_names_the_module():
    assert gil.reenabled_by(GIL_WARNING) == "fastext._speedups"
    assert gil.reenabled_by("some other RuntimeWarning") is None


def test_the_terminal_line_names_at_most_three_imports():
    events = [{"module": f"ext{i}", "during": "t.py::test_x[thread]"} for i in range(5)]
    line = gil.describe(events)
    assert line.startswith("the GIL was re-enabled at run time by importing 'ext0' (during "
                           "t.py::test_x[thread]), importing 'ext1'")
    assert "'ext3'" not in line and "and 2 more" in line


def test_the_advisor_keeps_cpu_bound_work_on_threads_that_run_in_parallel():
    """With the GIL off, threads as fast as processes: no 'use processes'.  (The
    advisor's reading of given measurements; on 3.13t, test_budget_checks.py measures
    real ones.)"""
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
