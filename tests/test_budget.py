"""budget.py: parsing concurrency_budget limits and checking estimates against them."""

import pytest

from pytest_concurrency.budget import KEYS, BudgetError, Limit, check, format_value, parse
from pytest_concurrency.stats import Estimate

MIB = 2**20


def one(key, value):
    (limit,) = parse({key: value})
    return limit


@pytest.mark.parametrize(
    ("key", "value", "op", "canonical"),
    [
        ("wall", 0.25, "<=", 0.25),
        ("wall", 2, "<=", 2.0),
        ("wall", "250ms", "<=", 0.25),
        ("wall", "1.5s", "<=", 1.5),
        ("wall", "2min", "<=", 120.0),
        ("wall", "500us", "<=", 500e-6),
        ("wall", "500\u00b5s", "<=", 500e-6),
        ("cpu", "< 1.5 s", "<", 1.5),
        ("memory", 1000, "<=", 1000),
        ("memory", "64MiB", "<=", 64 * MIB),
        ("memory", "500MB", "<=", 500_000_000),
        ("memory", "1.5KiB", "<=", 1536),
        ("memory", "2GiB", "<=", 2 * 2**30),
        ("memory", "3KB", "<=", 3000),
        ("throughput", 5000, ">=", 5000.0),
        ("throughput", ">=5000/s", ">=", 5000.0),
        ("throughput", "5000/s", ">=", 5000.0),
        ("throughput", "5k/s", ">=", 5000.0),
        ("throughput", ">2M/s", ">", 2e6),
        ("speedup", 1.5, ">=", 1.5),
        ("speedup", ">=1.5", ">=", 1.5),
        ("speedup", "1.5x", ">=", 1.5),
        ("efficiency", 0.8, ">=", 0.8),
        ("efficiency", ">=80%", ">=", 0.8),
        ("efficiency", "80%", ">=", 0.8),
        ("regression", "10%", "<=", 0.1),
        ("regression", 0.1, "<=", 0.1),
        ("regression", 0, "<=", 0.0),
    ],
)
def test_parse_accepts_numbers_and_units(key, value, op, canonical):
    limit = one(key, value)
    assert limit.key == key
    assert limit.op == op
    assert limit.value == pytest.approx(canonical)
    assert limit.text == (value if isinstance(value, str) else repr(value))


def test_parse_returns_every_key_in_canonical_order():
    limits = parse({"regression": "5%", "memory": "1MiB", "wall": "1s", "speedup": 2})
    assert [limit.key for limit in limits] == ["wall", "memory", "speedup", "regression"]
    assert parse({}) == ()
    assert KEYS == ("wall", "cpu", "memory", "speedup", "efficiency", "throughput", "regression")


def test_bad_unit_names_key_value_and_what_is_accepted():
    with pytest.raises(BudgetError) as info:
        parse({"wall": "250xs"})
    assert str(info.value) == (
        "concurrency_budget: wall='250xs': expected seconds like 0.25, '250ms', '1.5s' or '2min'"
    )


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"wall": True}, "wall"),
        ({"cpu": -1}, "cpu"),
        ({"memory": "-5MiB"}, "memory"),
        ({"memory": "64 MiBs"}, "memory"),
        ({"memory": "64ms"}, "memory"),
        ({"throughput": "fast"}, "throughput"),
        ({"speedup": [1.5]}, "speedup"),
        ({"speedup": None}, "speedup"),
        ({"speedup": "==1.5"}, "speedup"),
        ({"efficiency": 80}, "efficiency"),
        ({"regression": "10"}, "regression"),
        ({"wall": 0}, "wall"),
        ({"wall": float("nan")}, "wall"),
        ({"wall": float("inf")}, "wall"),
        ({"wall": "1s", "speedup": "1.5y"}, "speedup"),
    ],
)
def test_bad_values_are_budget_errors_naming_the_key(kwargs, key):
    with pytest.raises(BudgetError, match=rf"^concurrency_budget: {key}="):
        parse(kwargs)


def test_bare_percentage_number_suggests_the_percent_form():
    with pytest.raises(BudgetError, match="write '80%'"):
        parse({"efficiency": 80})


def test_unknown_key_is_named_with_a_suggestion():
    with pytest.raises(BudgetError) as info:
        parse({"walltime": "1s"})
    message = str(info.value)
    assert "unknown key 'walltime'" in message
    assert "did you mean 'wall'" in message
    assert "regression" in message  # lists what is accepted
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("wall", 0.312, "312ms"),
        ("wall", 1.5, "1.5s"),
        ("wall", 0.9996, "1s"),
        ("wall", 42e-6, "42\u00b5s"),
        ("cpu", 125.0, "125s"),
        ("memory", 512, "512B"),
        ("memory", 64 * MIB, "64MiB"),
        ("memory", 1.5 * 2**30, "1.5GiB"),
        ("throughput", 850, "850/s"),
        ("throughput", 12345, "12.3k/s"),
        ("throughput", 2.5e6, "2.5M/s"),
        ("speedup", 1.9, "1.9x"),
        ("efficiency", 0.8, "80%"),
        ("regression", 0.125, "12.5%"),
    ],
)
def test_format_value_uses_readable_units(key, value, text):
    assert format_value(key, value) == text


def est(*values):
    return Estimate.of(values)


WALL = one("wall", "250ms")


def test_whole_interval_over_an_upper_limit_fails_with_a_full_message():
    (verdict,) = check([WALL], {"wall": est(0.312, 0.298, 0.330, 0.305, 0.320)})
    assert verdict.status == "fail"
    assert verdict.limit == WALL
    assert verdict.measured.median == 0.312
    assert verdict.message == (
        "wall <= 250ms: measured 312ms [298ms, 330ms] "
        "(median of 5 rounds, 94% interval): over budget"
    )


def test_whole_interval_within_an_upper_limit_passes():
    (verdict,) = check([WALL], {"wall": est(0.20, 0.21, 0.22, 0.19, 0.249)})
    assert verdict.status == "pass"
    assert verdict.message.endswith(": within budget")


def test_interval_straddling_the_limit_is_inconclusive_not_a_failure():
    # the median is over the limit, but one round was under it
    (verdict,) = check([WALL], {"wall": est(0.26, 0.27, 0.24, 0.265, 0.27)})
    assert verdict.status == "inconclusive"
    assert verdict.message.endswith(": interval straddles the limit: inconclusive")
    assert "265ms [240ms, 270ms]" in verdict.message


@pytest.mark.parametrize(
    ("op", "measured", "status"),
    [
        ("<=", (1.0, 1.0, 1.0), "pass"),
        ("<", (1.0, 1.0, 1.0), "fail"),
        (">=", (1.0, 1.0, 1.0), "pass"),
        (">", (1.0, 1.0, 1.0), "fail"),
        ("<", (0.9, 0.95, 1.0), "inconclusive"),
        ("<=", (1.0, 1.05, 1.1), "inconclusive"),
        (">=", (0.9, 0.95, 1.0), "inconclusive"),
        (">", (1.0, 1.05, 1.1), "inconclusive"),
    ],
)
def test_strict_and_inclusive_operators_differ_at_the_boundary(op, measured, status):
    limit = one("speedup", f"{op}1.0")
    (verdict,) = check([limit], {"speedup": est(*measured)})
    assert verdict.status == status


def test_lower_limits_mirror_upper_ones():
    speedup = one("speedup", ">=1.5x")
    slow, fast, noisy = est(1.1, 1.2, 1.3), est(1.6, 1.7, 1.9), est(1.3, 1.6, 1.7)
    assert [check([speedup], {"speedup": e})[0].status for e in (slow, fast, noisy)] == [
        "fail",
        "pass",
        "inconclusive",
    ]
    message = check([speedup], {"speedup": slow})[0].message
    assert message.startswith("speedup >= 1.5x: measured 1.2x [1.1x, 1.3x]")
    assert message.endswith(": below the limit")


def test_messages_use_the_units_of_each_key():
    limits = parse({"memory": "64MiB", "efficiency": ">=80%", "throughput": "5k/s"})
    measured = {
        "memory": est(70 * MIB, 72 * MIB, 71 * MIB),
        "efficiency": est(0.9, 0.92, 0.95),
        "throughput": est(4000, 4100, 4200),
    }
    messages = [v.message for v in check(limits, measured)]
    assert messages[0].startswith("memory <= 64MiB: measured 71MiB [70MiB, 72MiB]")
    assert messages[1].startswith("efficiency >= 80%: measured 92% [90%, 95%]")
    assert messages[2].startswith("throughput >= 5k/s: measured 4.1k/s [4k/s, 4.2k/s]")


def test_single_round_says_so_instead_of_an_interval():
    (verdict,) = check([WALL], {"wall": est(0.3)})
    assert verdict.status == "fail"
    assert verdict.message == "wall <= 250ms: measured 300ms (1 round): over budget"


def test_missing_measurement_is_unmeasured_and_keeps_order():
    limits = parse({"wall": 1, "regression": "10%"})
    verdicts = check(limits, {"wall": est(0.5, 0.6, 0.55)})
    assert [v.status for v in verdicts] == ["pass", "unmeasured"]
    assert verdicts[1].measured is None
    assert verdicts[1].message == "regression <= 10%: no baseline to compare with"


def test_limit_is_a_frozen_value():
    limit = Limit("wall", "<=", 0.25, "250ms")
    assert limit == one("wall", "250ms")
    with pytest.raises(AttributeError):
        limit.value = 1.0


def test_every_run_of_a_budgeted_body_gets_fresh_fixtures(pytester):
    """A body keeping state in a function-scoped fixture passes with a budget as it
    does without one: every serial and concurrent run starts on fresh fixtures."""
    pytester.makepyfile("""
        import pytest

        @pytest.fixture
        def seen():
            return []

        @pytest.mark.concurrency_budget(wall="10s", speedup=">=0.01")
        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_counts(seen, worker):
            seen.append(worker.index)
            assert len(seen) <= 2  # one run: two calls, serial or concurrent
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_budget_failure_is_summed_up_by_the_verdict_that_failed():
    from pytest_concurrency.report import entry

    data = {"budget": [
        {"key": "wall", "verdict": "inconclusive", "message": "wall <= 1s: inconclusive"},
        {"key": "speedup", "verdict": "fail", "message": "speedup >= 2x: below the limit"}]}
    exc = pytest.fail.Exception("concurrency budget exceeded:\nspeedup >= 2x: below",
                                pytrace=False)
    (found,) = entry.failures_of(exc, "t.py::t[thread]", data)
    assert (found["kind"], found["summary"]) == ("budget", "speedup >= 2x: below the limit")
