"""spec.py: marker + CLI + ini -> RunSpec, and the errors users see."""

import pytest

from pytest_concurrency import spec
from pytest_concurrency.spec import Settings, SpecError, resolve, settings_from_values


def test_defaults_one_spec_per_mode():
    specs = resolve({"modes": ["thread", "process", "hybrid", "explore"]}, Settings())
    assert [s.mode for s in specs] == ["thread", "process", "hybrid", "explore"]
    thread, process, hybrid, explore = specs
    assert (thread.workers, thread.iterations, thread.timeout) == (4, 1, 60.0)
    assert (process.processes, process.threads) == (4, 1)
    assert (hybrid.processes, hybrid.threads, hybrid.workers) == (2, 2, 4)
    assert explore.workers == 2
    assert thread.start_method == spec.default_start_method()


def test_hybrid_layout_from_workers_and_explicit():
    (h,) = resolve({"modes": ["hybrid"], "workers": 8}, Settings())
    assert (h.processes, h.threads, h.layout) == (2, 4, "2x4")
    (h,) = resolve({"modes": ["hybrid"], "processes": 3, "threads": 5}, Settings())
    assert (h.processes, h.threads, h.workers) == (3, 5, 15)


def test_precedence_marker_over_cli_over_ini_over_default():
    ini_only = settings_from_values({"workers": "3", "iterations": "7"})
    assert resolve({}, ini_only)[0].workers == 3
    assert resolve({"workers": 5}, ini_only)[0].workers == 5
    assert resolve({}, Settings())[0].iterations == 1
    assert resolve({}, ini_only)[0].iterations == 7


def test_workers_auto_is_usable_cpus():
    assert settings_from_values({"workers": "auto"}).workers == spec.usable_cpus()


def test_lock_order_is_explores_and_fails_there_by_default():
    thread, explore = resolve({"modes": ["thread", "explore"]}, Settings())
    assert (thread.lock_order, explore.lock_order) == ("ignore", "fail")
    thread, explore = resolve({"modes": ["thread", "explore"], "lock_order": "warn"},
                              Settings())
    assert (thread.lock_order, explore.lock_order) == ("ignore", "warn")


def test_spec_is_frozen():
    (s,) = resolve({}, Settings())
    with pytest.raises(AttributeError):
        s.workers = 9


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"modes": ["thred"]}, ["modes=['thred']", "unknown mode 'thred'", "'thread', 'process'"]),
        ({"modes": []}, ["modes=[]", "non-empty list"]),
        ({"workerz": 3}, ["'workerz'=3", "valid arguments are modes, workers"]),
        ({"workers": 0}, ["workers=0", ">= 1"]),
        ({"workers": "4"}, ["workers='4'", "expected an integer", "got str"]),
        ({"workers": True}, ["workers=True", "got bool"]),
        ({"iterations": -1}, ["iterations=-1", ">= 1"]),
        ({"timeout": 0}, ["timeout=0", "> 0"]),
        ({"timeout": "1s"}, ["timeout='1s'", "got str"]),
        ({"start_method": "vfork"}, ["start_method='vfork'", "'fork', 'forkserver', 'spawn'"]),
        ({"strategy": "bfs"}, ["strategy='bfs'", "'pct', 'random', 'dfs'"]),
        ({"leaks": "maybe"}, ["leaks='maybe'", "'fail', 'warn', 'ignore'"]),
        ({"seed": -3}, ["seed=-3", ">= 0"]),
        ({"instrument": [1]}, ["instrument=[1]", "package names"]),
        ({"processes": 0}, ["processes=0"]),
        ({"modes": ["explore"], "lock_order": "strict"},
         ["lock_order='strict'", "'fail', 'warn', 'ignore'"]),
        ({"modes": ["thread"], "lock_order": "warn"},
         ["lock_order='warn'", "explore mode only", "add 'explore' to modes"]),
    ],
)
def test_bad_marker_input_names_argument_value_and_choices(kwargs, expected):
    with pytest.raises(SpecError) as info:
        resolve(kwargs, Settings())
    for text in expected:
        assert text in str(info.value)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"workers": "many"}, "--concurrency-workers='many': expected an integer or 'auto'"),
        ({"timeout": "-1"}, "--concurrency-timeout='-1': must be a number of seconds > 0"),
        ({"start_method": "vfork"}, "--concurrency-start-method='vfork'"),
        ({"apply": "thread,bogus"}, "--concurrency-apply='thread,bogus': unknown mode 'bogus'"),
    ],
)
def test_bad_options(values, expected):
    with pytest.raises(SpecError) as info:
        settings_from_values(values)
    assert expected in str(info.value)


def test_positional_marker_arguments_are_refused():
    class Mark:
        args, kwargs = ("thread",), {}

    with pytest.raises(SpecError, match=r"modes=\['thread'\]"):
        spec.marker_kwargs([Mark()])


def test_closest_marker_wins_per_key():
    class Mark:
        def __init__(self, **kwargs):
            self.args, self.kwargs = (), kwargs

    # iter_markers yields the closest (function) marker first
    merged = spec.marker_kwargs([Mark(workers=2), Mark(workers=8, iterations=3)])
    assert merged == {"workers": 2, "iterations": 3}


def test_bad_marker_is_an_error_on_that_test_only(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrency(modes=["thread", "warp"])
        def test_bad_mode():
            pass

        @pytest.mark.concurrency(workers=0)
        def test_bad_workers():
            pass

        @pytest.mark.concurrency(modes=["thread"], worker=2)
        def test_typo():
            pass

        @pytest.mark.concurrency(timeout=0)
        def test_bad_timeout():
            pass

        @pytest.mark.concurrency(start_method="vfork")
        def test_bad_start_method():
            pass

        @pytest.mark.concurrency(iterations="10")
        def test_wrong_type():
            pass

        @pytest.mark.concurrency_budget(wal="1s")
        @pytest.mark.concurrency(modes=["thread"])
        def test_bad_budget_key():
            pass

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_good():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=7)
    out = result.stdout.str()
    for line in [
        "ERROR at setup of test_bad_mode",
        "@pytest.mark.concurrency on test_bad_mode: modes=['thread', 'warp']: unknown mode"
        " 'warp'; valid modes are 'thread', 'process', 'hybrid', 'explore'",
        "@pytest.mark.concurrency on test_bad_workers: workers=0: must be an integer >= 1",
        "test_typo: unknown argument 'worker'=2; valid arguments are modes, workers",
        "test_bad_timeout: timeout=0: must be a number of seconds > 0",
        "test_bad_start_method: start_method='vfork': valid choices are 'fork', "
        "'forkserver', 'spawn'",
        "test_wrong_type: iterations='10': expected an integer >= 1, got str",
        "test_bad_budget_key: concurrency_budget: unknown key 'wal'='1s' (did you mean "
        "'wall'?); expected one of wall, cpu, memory, speedup, efficiency, throughput, "
        "regression",
    ]:
        assert line in out
    # never a traceback from inside the plugin
    result.stdout.no_fnmatch_line("*pytest_concurrency*.py*")


def test_bad_cli_option_is_a_usage_error(pytester):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--concurrency-workers=lots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--concurrency-workers='lots': expected an integer or 'auto'*"])


def test_ini_and_cli_reach_the_spec(pytester):
    pytester.makeini("[pytest]\nconcurrency_workers = 3\nconcurrency_iterations = 2\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrency(modes=["thread"])
        def test_sizes(concurrency):
            print("LAYOUT", concurrency.workers, concurrency.iterations)
        """
    )
    result = pytester.runpytest("-s", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*LAYOUT 3 2*"])
    result = pytester.runpytest("-s", "-p", "no:cacheprovider", "--concurrency-workers=5")
    result.stdout.fnmatch_lines(["*LAYOUT 5 2*"])


def test_budget_values_of_a_wrong_type_are_refused():
    class Mark:
        args, kwargs = (), {"memory": ["64MiB"]}

    with pytest.raises(SpecError, match=r"memory=\['64MiB'\]: expected bytes like"):
        spec.parse_budget([Mark()])


@pytest.mark.parametrize("given", [float("inf"), 1e10, 10**7, spec.MAX_TIMEOUT * 3])
def test_huge_timeouts_are_clamped_to_what_every_wait_accepts(given):
    for s in resolve({"modes": list(spec.MODES), "timeout": given}, Settings()):
        assert s.timeout == spec.MAX_TIMEOUT
    assert settings_from_values({"timeout": str(given)}).timeout == spec.MAX_TIMEOUT


def test_a_nan_timeout_is_refused():
    with pytest.raises(SpecError, match=r"timeout=nan: must be a number of seconds > 0"):
        resolve({"timeout": float("nan")}, Settings())
    with pytest.raises(SpecError, match=r"--concurrency-timeout='nan': expected a number of "
                                        r"seconds > 0"):
        settings_from_values({"timeout": "nan"})


def test_huge_timeouts_run_in_every_mode(pytester):
    """They used to end in OverflowError inside the runners."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrency(modes=["thread", "process", "hybrid", "explore"], workers=2,
                                 timeout=float("inf"))
        def test_inf(worker):
            pass

        @pytest.mark.concurrency(modes=["thread", "process", "hybrid"], workers=2,
                                 timeout=1e10)
        def test_big(worker):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=7)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           "--concurrency-timeout=inf", "-k", "test_big")
    result.assert_outcomes(passed=3)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"modes": ["thread"], "workers": 10**9},
         "workers=1000000000: more threads in one process than can be run at once (at most "),
        ({"modes": ["explore"], "workers": 10**9},
         "workers=1000000000: more threads in one process"),
        ({"modes": ["process"], "workers": 10**6},
         "workers=1000000: more processes than can be run at once (at most "),
        ({"modes": ["hybrid"], "processes": 2, "threads": 10**9},
         "threads=1000000000: more threads in one process"),
        ({"modes": ["hybrid"], "processes": 10**6, "threads": 1},
         "processes=1000000: more processes"),
    ],
)
def test_counts_that_cannot_be_honoured_are_refused(kwargs, expected):
    with pytest.raises(SpecError) as info:
        resolve(kwargs, Settings())
    assert expected in str(info.value)


def test_a_huge_worker_count_from_the_command_line_names_the_option():
    settings = settings_from_values({"workers": str(10**9)})
    with pytest.raises(SpecError, match=r"--concurrency-workers=1000000000: more threads"):
        resolve({"modes": ["thread"]}, settings)


def test_limits_say_where_they_come_from():
    most, why = spec.thread_limit()
    assert 1 < most <= spec.MAX_THREADS and why
    most, why = spec.process_limit()
    assert most >= spec.MIN_PROCESS_LIMIT and "per usable CPU" in why


def test_a_huge_worker_count_is_an_error_at_setup_not_a_crash(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrency(modes=["thread"], workers=10**9)
        def test_huge():
            pass

        @pytest.mark.concurrency(modes=["hybrid"], processes=2, threads=10**9)
        def test_huge_hybrid():
            pass

        def test_other():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines([
        "*test_huge: workers=1000000000: more threads in one process than can be run at "
        "once (at most *",
        "*test_huge_hybrid: threads=1000000000: more threads in one process*"])


def test_a_bad_boolean_ini_value_names_the_key(pytester):
    pytester.makeini("[pytest]\nconcurrency_strict = maybe\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest-concurrency: concurrency_strict in the ini file: "
                                 "invalid truth value 'maybe'; expected true or false*"])
