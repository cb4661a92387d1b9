"""advisor.py: a mode recommendation from measured CPU/wall ratios and speedups."""

import pytest

from pytest_concurrency.advisor import ModeMeasurement, advise, advise_from_runs

MB = 10**6

# Pure-Python spinning, 2 workers on 2 CPUs: the GIL serialises threads (one CPU
# busy, no speedup); processes keep both CPUs busy.
CPU_THREAD = ModeMeasurement("thread", 2, wall=2.0, cpu=2.0, peak_rss=30 * MB, speedup=1.0)
CPU_PROCESS = ModeMeasurement("process", 2, wall=1.05, cpu=2.1, peak_rss=60 * MB, speedup=1.9)

# Sleeping/waiting, 8 workers: almost no CPU, threads overlap the waits.
IO_THREAD = ModeMeasurement("thread", 8, wall=0.13, cpu=0.0065, peak_rss=20 * MB, speedup=7.6)
IO_PROCESS = ModeMeasurement("process", 8, wall=0.14, cpu=0.014, peak_rss=200 * MB, speedup=7.1)


def test_cpu_bound_body_gets_processes_with_the_measured_factor():
    advice = advise({"thread": CPU_THREAD, "process": CPU_PROCESS}, usable_cpus=2)
    assert advice == "CPU-bound: process mode ran 1.9x faster than thread mode; use processes"


def test_cpu_bound_factor_is_measured_not_fixed():
    process = ModeMeasurement("process", 2, wall=1.4, cpu=2.0, peak_rss=None, speedup=1.5)
    thread = ModeMeasurement("thread", 2, wall=2.0, cpu=2.0, peak_rss=None, speedup=1.0)
    advice = advise({"process": process, "thread": thread}, usable_cpus=2)
    assert "process mode ran 1.5x faster than thread mode; use processes" in advice


def test_io_bound_body_gets_threads_and_their_memory_advantage():
    advice = advise({"thread": IO_THREAD, "process": IO_PROCESS}, usable_cpus=2)
    assert advice == (
        "I/O-bound: threads reach 7.6x with 8 workers at a tenth of the memory of processes;"
        " use threads"
    )


def test_io_bound_without_memory_compares_speedups_instead():
    thread = ModeMeasurement("thread", 8, wall=0.13, cpu=0.0065, peak_rss=None, speedup=7.6)
    advice = advise({"thread": thread, "process": IO_PROCESS}, usable_cpus=2)
    assert (
        advice == "I/O-bound: threads reach 7.6x with 8 workers (process mode: 7.1x); use threads"
    )


@pytest.mark.parametrize(
    ("thread_rss", "words"), [(100 * MB, "half the"), (74 * MB, "37% of the"), (None, None)]
)
def test_memory_share_wording(thread_rss, words):
    thread = ModeMeasurement("thread", 8, wall=0.13, cpu=0.0065, peak_rss=thread_rss, speedup=7.6)
    advice = advise({"thread": thread, "process": IO_PROCESS}, usable_cpus=2)
    if words is None:
        assert "memory" not in advice
    else:
        assert f"at {words} memory of processes" in advice


def test_threads_win_a_near_tie_because_they_are_cheaper():
    process = ModeMeasurement("process", 8, wall=0.125, cpu=0.014, peak_rss=None, speedup=8.0)
    thread = ModeMeasurement("thread", 8, wall=0.13, cpu=0.0065, peak_rss=None, speedup=7.6)
    advice = advise({"thread": thread, "process": process}, usable_cpus=2)
    assert advice.endswith("; use threads")


def test_io_bound_but_processes_much_faster_follows_the_measurement():
    thread = ModeMeasurement("thread", 8, wall=0.5, cpu=0.02, peak_rss=None, speedup=2.0)
    advice = advise({"thread": thread, "process": IO_PROCESS}, usable_cpus=2)
    assert advice == "I/O-bound: process mode ran 3.5x faster than thread mode; use processes"


def test_without_speedups_wall_times_of_the_same_work_are_compared():
    thread = ModeMeasurement("thread", 2, wall=2.0, cpu=2.0, peak_rss=None, speedup=None)
    process = ModeMeasurement("process", 2, wall=1.0, cpu=2.0, peak_rss=None, speedup=None)
    advice = advise({"thread": thread, "process": process}, usable_cpus=2)
    assert advice == "CPU-bound: process mode ran 2.0x faster than thread mode; use processes"


def test_hybrid_is_chosen_only_when_clearly_faster_than_processes():
    hybrid = ModeMeasurement("hybrid", 4, wall=1.0, cpu=2.0, peak_rss=None, speedup=1.95)
    advice = advise({"thread": CPU_THREAD, "process": CPU_PROCESS, "hybrid": hybrid}, 2)
    assert advice.endswith("use processes")
    faster = ModeMeasurement("hybrid", 4, wall=0.6, cpu=2.0, peak_rss=None, speedup=3.0)
    advice = advise({"thread": CPU_THREAD, "process": CPU_PROCESS, "hybrid": faster}, 2)
    assert advice == "CPU-bound: hybrid mode ran 3.0x faster than thread mode; use hybrid mode"


def test_no_mode_faster_than_serial_is_said_plainly():
    process = ModeMeasurement("process", 2, wall=2.1, cpu=2.1, peak_rss=None, speedup=0.95)
    advice = advise({"thread": CPU_THREAD, "process": process}, usable_cpus=1)
    assert advice.startswith("CPU-bound: no mode ran it faster than serial")
    assert "use" not in advice


def test_single_thread_mode_cpu_bound_suggests_processes():
    advice = advise({"thread": CPU_THREAD}, usable_cpus=2)
    assert advice == (
        "CPU-bound (CPU 1.0 s per 1.0 s of wall in thread mode): "
        "threads cannot run it in parallel under the GIL; try process mode"
    )


def test_single_thread_mode_on_one_cpu_does_not_suggest_processes():
    advice = advise({"thread": CPU_THREAD}, usable_cpus=1)
    assert "process" not in advice
    assert "1 usable CPU" in advice


def test_single_thread_mode_releasing_the_gil_is_parallel():
    thread = ModeMeasurement("thread", 2, wall=1.0, cpu=1.9, peak_rss=None, speedup=1.9)
    advice = advise({"thread": thread}, usable_cpus=2)
    assert advice.startswith("CPU-bound (CPU 1.9 s per 1.0 s of wall in thread mode)")
    assert "in parallel" in advice and "cannot" not in advice


def test_single_thread_mode_io_bound():
    advice = advise({"thread": IO_THREAD}, usable_cpus=2)
    assert advice == (
        "I/O-bound (CPU 0.05 s per 1.0 s of wall in thread mode): "
        "threads reach 7.6x with 8 workers; threads suit it"
    )


def test_single_process_mode_says_what_it_shows_without_comparing():
    cpu = advise({"process": CPU_PROCESS}, usable_cpus=2)
    assert (
        cpu == "CPU-bound (CPU 2.0 s per 1.0 s of wall in process mode): processes reach 1.9x"
        " with 2 workers"
    )
    io = advise({"process": IO_PROCESS}, usable_cpus=2)
    assert io.startswith("I/O-bound (CPU 0.10 s per 1.0 s of wall in process mode)")
    assert "try thread mode" in io


def test_process_load_is_relative_to_the_cpus_it_could_use():
    # 2 CPUs busy of 2 usable is CPU-bound; 2 busy of 8 usable with 8 workers is not
    busy = ModeMeasurement("process", 8, wall=1.0, cpu=2.0, peak_rss=None, speedup=None)
    assert advise({"process": busy}, usable_cpus=2).startswith("CPU-bound")
    assert advise({"process": busy}, usable_cpus=8).startswith("I/O-bound")


def test_mixed_work_between_the_thresholds():
    thread = ModeMeasurement("thread", 4, wall=1.0, cpu=0.5, peak_rss=None, speedup=1.6)
    advice = advise({"thread": thread}, usable_cpus=2)
    assert advice == (
        "Mixed CPU and I/O (CPU 0.5 s per 1.0 s of wall in thread mode): "
        "threads reach 1.6x with 4 workers; compare with process mode"
    )


def test_modes_reading_cpu_and_io_bound_make_the_work_mixed():
    process = ModeMeasurement("process", 2, wall=1.0, cpu=0.2, peak_rss=None, speedup=1.9)
    advice = advise({"thread": CPU_THREAD, "process": process}, usable_cpus=2)
    assert advice.startswith("Mixed CPU and I/O: ")


def test_advice_does_not_depend_on_mapping_order():
    one = advise({"thread": CPU_THREAD, "process": CPU_PROCESS}, usable_cpus=2)
    other = advise({"process": CPU_PROCESS, "thread": CPU_THREAD}, usable_cpus=2)
    assert one == other


@pytest.mark.parametrize(
    "by_mode",
    [
        {},
        {"explore": ModeMeasurement("explore", 2, wall=1.0, cpu=1.0, peak_rss=None, speedup=None)},
        {"thread": ModeMeasurement("thread", 2, wall=0.0, cpu=0.0, peak_rss=None, speedup=None)},
    ],
)
def test_nothing_to_go_on_gives_none(by_mode):
    assert advise(by_mode, usable_cpus=2) is None


# advise_from_runs: one run per mode, no speedups (tests without a budget)

def one_run(mode, workers, wall, cpu):
    return ModeMeasurement(mode, workers, wall=wall, cpu=cpu, peak_rss=None, speedup=None)


def test_single_runs_of_waiting_get_threads():
    advice = advise_from_runs({"thread": one_run("thread", 8, 0.06, 0.004),
                               "process": one_run("process", 8, 0.09, 0.03)}, usable_cpus=2)
    assert advice == ("I/O-bound (CPU 0.07 s per 1.0 s of wall in thread mode): mostly "
                      "waiting; use threads")


def test_single_runs_of_gil_bound_work_that_processes_ran_in_parallel_get_processes():
    advice = advise_from_runs({"thread": one_run("thread", 2, 0.4, 0.39),
                               "process": one_run("process", 2, 0.21, 0.4)}, usable_cpus=2)
    assert advice == ("CPU-bound (CPU 1.0 s per 1.0 s of wall in thread mode; process mode "
                      "kept 1.9 CPUs busy): threads cannot run it in parallel under the GIL; "
                      "use processes")


def test_single_runs_that_no_mode_ran_in_parallel_are_not_enough_evidence():
    """On a busy machine process mode keeps one CPU busy too: no claim is made."""
    advice = advise_from_runs({"thread": one_run("thread", 2, 0.4, 0.39),
                               "process": one_run("process", 2, 0.4, 0.38)}, usable_cpus=2)
    assert advice.startswith("not enough evidence: CPU-bound (CPU 1.0 s per 1.0 s of wall "
                             "in thread mode), but no mode kept more than one CPU busy")
    assert advice.endswith("budget the test (@pytest.mark.concurrency_budget) for advice "
                           "measured in rounds")


def test_single_runs_of_threads_running_in_parallel_get_threads():
    """A free-threaded build, or a body that releases the GIL."""
    advice = advise_from_runs({"thread": one_run("thread", 2, 0.2, 0.39),
                               "process": one_run("process", 2, 0.21, 0.4)}, usable_cpus=2)
    assert advice.endswith("threads run it in parallel, the GIL is released or absent; "
                           "use threads")


def test_short_or_mixed_single_runs_are_not_enough_evidence():
    short = advise_from_runs({"thread": one_run("thread", 4, 0.0012, 0.001),
                              "process": one_run("process", 4, 0.03, 0.01)}, usable_cpus=2)
    assert short.startswith("not enough evidence: a run of 1.2 ms in thread mode is too short")
    mixed = advise_from_runs({"thread": one_run("thread", 2, 0.1, 0.05),
                              "process": one_run("process", 2, 0.1, 0.1)}, usable_cpus=2)
    assert mixed.startswith("not enough evidence: mixed computing and waiting")


def test_single_runs_ignore_explore_and_need_something():
    assert advise_from_runs({"explore": one_run("explore", 2, 0.1, 0.1)}, 2) is None


def test_the_terminal_shows_at_most_20_advice_lines():
    from pytest_concurrency.report.collector import advice_lines

    tests = [{"test": f"t.py::test_{i:02}", "advice": f"advice {i}"} for i in range(25)]
    tests += [{"test": "t.py::test_00", "advice": "advice 0"}, {"test": "x", "advice": None}]
    lines = advice_lines(tests)
    assert len(lines) == 21
    assert lines[0] == "t.py::test_00: advice 0"
    assert lines[-1] == ("... and 5 more (all of them are in the JSON and HTML reports: "
                         "--concurrency-report)")
    assert advice_lines(tests[:3]) == ["t.py::test_00: advice 0", "t.py::test_01: advice 1",
                                       "t.py::test_02: advice 2"]


def test_a_test_in_two_modes_gets_advice_without_a_budget(pytester):
    """Waiting reads as waiting on any machine, busy or not."""
    pytester.makepyfile("""
        import time
        import pytest

        @pytest.mark.concurrency(modes=["thread", "process"], workers=4)
        def test_waits():
            time.sleep(0.05)

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_one_mode():
            time.sleep(0.05)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           "--concurrency-report=r.json")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "*= concurrency advice =*",
        "test_a_test_in_two_modes_gets_advice_without_a_budget.py::test_waits: I/O-bound "
        "(CPU * s per 1.0 s of wall in thread mode): mostly waiting; use threads"])
    import json

    report = json.loads((pytester.path / "r.json").read_text())
    advice = {e["nodeid"].split("::")[1]: e["advice"] for e in report["tests"]}
    assert advice["test_waits[thread]"] == advice["test_waits[process]"]
    assert advice["test_waits[thread]"].endswith("use threads")
    assert advice["test_one_mode[thread]"] is None  # one mode: nothing to choose between


def test_cpu_bound_work_on_a_busy_machine_is_still_cpu_bound():
    """Two busy programs share the CPUs: the GIL-bound body gets 60% of a CPU, and
    so does any thread; measured against what was there, it kept its CPU busy."""
    thread = ModeMeasurement("thread", 2, wall=2.0, cpu=1.2, peak_rss=None, speedup=1.0,
                             availability=0.62)
    process = ModeMeasurement("process", 2, wall=1.9, cpu=1.3, peak_rss=None, speedup=1.05,
                              availability=0.62)
    busy = advise({"thread": thread, "process": process}, usable_cpus=2)
    assert busy.startswith("CPU-bound: no mode ran it faster than serial")
    idle_reading = advise({"thread": ModeMeasurement("thread", 2, 2.0, 1.2, None, 1.0),
                           "process": ModeMeasurement("process", 2, 1.9, 1.3, None, 1.05)},
                          usable_cpus=2)
    assert idle_reading.startswith("Mixed CPU and I/O")  # what it said before


def test_waiting_in_thread_mode_is_io_bound_whatever_process_start_up_costs():
    """Eight children's start and end cost CPU that the waiting body does not."""
    process = ModeMeasurement("process", 8, wall=0.27, cpu=0.4, peak_rss=None, speedup=1.6)
    advice = advise({"thread": IO_THREAD, "process": process}, usable_cpus=2)
    assert advice.startswith("I/O-bound: threads reach 7.6x with 8 workers")


def test_free_threaded_cpu_bound_threads_on_a_busy_machine_are_not_said_to_serialize():
    """Without the GIL, two threads that each got 30% of a CPU kept 0.45 of a CPU busy
    between them: as parallel as the machine allowed (3.13t's advice said 'the body
    serializes on something else (a lock?)')."""
    busy = ModeMeasurement("thread", 2, wall=1.0, cpu=0.45, peak_rss=None, speedup=1.0,
                           availability=0.3)
    advice = advise({"thread": busy}, 2, free_threaded=True)
    assert advice.startswith("CPU-bound (CPU 0.5 s per 1.0 s of wall in thread mode)")
    assert advice.endswith("threads ran it in parallel as far as the busy machine let them "
                           "(a thread got 30% of a CPU)")
    # under the GIL no measurement of threads is read as parallel that way
    gil_bound = ModeMeasurement("thread", 2, wall=1.0, cpu=0.3, peak_rss=None, speedup=1.0,
                                availability=0.3)
    assert advise({"thread": gil_bound}, 2).endswith(
        "threads cannot run it in parallel under the GIL; try process mode")


# What the interpreter allows: under the GIL a CPU-bound body gets no thread speedup

# A busy machine (load 12 on 2 CPUs): the serial rounds ran while other programs took
# the CPUs, the concurrent ones while they paused. Threads kept one CPU busy at most.
LOADED_THREAD = ModeMeasurement("thread", 2, wall=1.0, cpu=0.9, peak_rss=None, speedup=2.3,
                                availability=0.45)
LOADED_PROCESS = ModeMeasurement("process", 2, wall=3.0, cpu=2.7, peak_rss=None, speedup=0.7,
                                 availability=0.45)


def test_a_thread_speedup_the_gil_rules_out_is_inconclusive():
    advice = advise({"thread": LOADED_THREAD, "process": LOADED_PROCESS}, usable_cpus=2)
    assert advice == (
        "inconclusive: CPU-bound, and threads cannot run it in parallel under the GIL (CPU "
        "0.9 s per 1.0 s of wall in thread mode), yet they reached 2.3x with 2 workers "
        "(process mode: 0.7x): an artefact of the machine's load, which changed between "
        "the serial and the concurrent rounds (a thread got 45% of a CPU); measure again "
        "on a quieter machine")
    alone = advise({"thread": LOADED_THREAD}, usable_cpus=2)
    assert alone.startswith("inconclusive: CPU-bound") and "use" not in alone.split(": ")[-1]
    # also when processes came out ahead: the factor against threads means nothing
    faster = ModeMeasurement("process", 2, wall=0.5, cpu=0.95, peak_rss=None, speedup=3.9)
    assert advise({"thread": LOADED_THREAD, "process": faster}, 2).startswith("inconclusive")


def test_threads_that_ran_in_parallel_can_speed_up_under_the_gil_or_without_it():
    """The speedup stands where the CPU time shows the threads ran at once (a body
    that releases the GIL: load cannot raise CPUs busy), or on a free-threaded
    build with the GIL off."""
    released = ModeMeasurement("thread", 2, wall=1.0, cpu=1.9, peak_rss=None, speedup=1.9)
    process = ModeMeasurement("process", 2, wall=1.05, cpu=2.0, peak_rss=None, speedup=1.8)
    assert advise({"thread": released, "process": process}, 2) == \
        "CPU-bound: threads reach 1.9x with 2 workers (process mode: 1.8x); use threads"
    free = ModeMeasurement("thread", 2, wall=1.0, cpu=0.9, peak_rss=None, speedup=1.9,
                           availability=0.45)
    assert advise({"thread": free, "process": process}, 2, free_threaded=True) \
        .endswith("; use threads")
    assert advise({"thread": free, "process": process}, 2).startswith("inconclusive")

