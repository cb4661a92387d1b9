"""Bad input, fed from tables: marker arguments and budgets, command-line and ini
values, replay tokens, report and baseline files.  Whatever the value, the
answer is a result or one clear sentence naming the argument, option or file
(a SpecError, a usage error, exit status 2 from the command line), never a
traceback; and no file the plugin writes holds Infinity or NaN."""

import decimal
import fractions
import json
import math
import os
import subprocess
import sys

import pytest

from pytest_concurrency import __main__ as cli
from pytest_concurrency import options, parsing, spec
from pytest_concurrency.explore import token
from pytest_concurrency.report import compare, document, schema
from pytest_concurrency.spec import Settings, SpecError

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "data", "sample_report.json")

# Values no argument takes, or takes only within a range.
ODD_VALUES = [
    10**400, -(10**400), 2**1024, 2**63, float("inf"), float("-inf"), float("nan"), -1, 0,
    0.5, 1e-320, True, "", "x", "1" * 5000, [], {}, (), object(), b"4", 3 + 0j,
    decimal.Decimal("NaN"), decimal.Decimal("1e400"), fractions.Fraction(10**400, 3),
]
MARKER_ARGS = [name for name in spec.MARKER_ARGS if name != "modes"]


def ids(values):
    """Test ids that are the same in every process (no addresses, no 5,000 digits)."""
    return [f"{index}-{type(value).__name__}" for index, value in enumerate(values)]


def one_sentence(message, name):
    """A message of one line that names ``name`` and is short enough to read."""
    assert "\n" not in message, message
    assert name in message, (name, message)
    assert len(message) < 600, message


@pytest.mark.parametrize("name", MARKER_ARGS)
@pytest.mark.parametrize("value", ODD_VALUES, ids=ids(ODD_VALUES))
def test_a_marker_argument_is_taken_or_refused_naming_it(name, value):
    modes = ["explore"] if name == "lock_order" else ["thread", "explore"]
    try:
        specs = spec.resolve({"modes": modes, name: value}, Settings())
    except SpecError as exc:
        one_sentence(str(exc), f"{name}=")
    else:  # what is taken is within what the runners can use
        for run_spec in specs:
            assert 0 < run_spec.timeout <= spec.MAX_TIMEOUT
            assert run_spec.seed is None or 0 <= run_spec.seed <= parsing.MAX_INT


@pytest.mark.parametrize("value", [*ODD_VALUES, ["thread", 7], "thread," * 1000, [[]]],
                         ids=ids([*ODD_VALUES, [], "", [[]]]))
def test_modes_are_taken_or_refused_naming_them(value):
    try:
        spec.resolve({"modes": value}, Settings())
    except SpecError as exc:
        one_sentence(str(exc), "modes=")


BUDGET_VALUES = [*ODD_VALUES, "1e400", "1" + "0" * 400, "nan", "inf", "1e308min", "-1s", "٣s"]


@pytest.mark.parametrize("key", ["wall", "cpu", "memory", "speedup", "efficiency",
                                 "throughput", "regression"])
@pytest.mark.parametrize("value", BUDGET_VALUES, ids=ids(BUDGET_VALUES))
def test_a_budget_value_is_taken_or_refused_naming_it(key, value):
    class Mark:
        args, kwargs = (), {key: value}

    try:
        limits = spec.parse_budget([Mark()])
    except SpecError as exc:
        one_sentence(str(exc), f"concurrency_budget: {key}=")
    else:
        assert all(math.isfinite(limit.value) and limit.value >= 0 for limit in limits)


ODD_TEXTS = ["10**400", "1" * 5000, "-" + "9" * 40, "nan", "inf", "-inf", "1e400", "٣",
             "1_000", " ", "\x00", "x" * 10_000, "-1", "0", "0x10", "1e-320", "auto "]


@pytest.mark.parametrize("name", spec.SETTINGS_OPTIONS)
@pytest.mark.parametrize("text", ODD_TEXTS, ids=ids(ODD_TEXTS))
def test_an_option_value_is_taken_or_refused_naming_it(name, text):
    try:
        settings = spec.settings_from_values({name: text})
    except SpecError as exc:
        one_sentence(str(exc), options.BY_NAME[name].flag)
    else:
        assert 0 < settings.timeout <= spec.MAX_TIMEOUT
        if settings.timeout_cap is not None:
            assert spec.timeout_cap(settings.timeout_cap, 1.0) <= spec.MAX_TIMEOUT


THRESHOLDS = [*ODD_TEXTS, "median:1e400", "median:" + "9" * 400 + "%", "mean:10%", "10%%"]


@pytest.mark.parametrize("text", THRESHOLDS, ids=ids(THRESHOLDS))
def test_a_threshold_is_taken_or_refused_naming_it(text):
    try:
        rule = compare.parse_rule(text, "--fail-on")
    except compare.CompareError as exc:
        one_sentence(str(exc), "--fail-on=")
    else:
        assert math.isfinite(rule.threshold) and rule.threshold > 0


def test_numbers_beyond_a_float_are_refused_not_overflowing():
    with pytest.raises(parsing.NumberError, match="too large"):
        parsing.real(10**400)
    assert parsing.real(10**400, infinite=True) == math.inf
    with pytest.raises(parsing.NumberError, match="<= 9223372036854775807"):
        parsing.integer("9" * 5000, text=True)
    with pytest.raises(parsing.NumberError):
        parsing.integer("٣", text=True)  # int() would take an Arabic-Indic 3


def test_huge_and_odd_marker_values_fail_only_their_own_test(pytester):
    pytester.makepyfile(test_odd="""
        import pytest

        @pytest.mark.concurrency(timeout=10**400, workers=2)
        def test_huge_timeout_is_no_timeout():
            pass

        @pytest.mark.concurrency_budget(wall=10**400)
        @pytest.mark.concurrency(workers=2)
        def test_huge_wall_budget():
            pass

        @pytest.mark.concurrency_budget(memory=2**1024)
        @pytest.mark.concurrency(workers=2)
        def test_huge_memory_budget():
            pass

        @pytest.mark.concurrency(modes=["explore"], instrument=[".."])
        def test_instrument_dots():
            pass

        @pytest.mark.concurrency(modes=["explore"], instrument=["os.."])
        def test_instrument_empty_part():
            pass

        @pytest.mark.concurrency(seed=10**400)
        def test_huge_seed():
            pass

        def test_other():
            pass
        """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=5)
    result.stdout.fnmatch_lines_random([
        "*test_huge_wall_budget: concurrency_budget: wall=1000000*: is too large*",
        "*test_huge_memory_budget: concurrency_budget: memory=1797693*: is too large*",
        "*test_instrument_dots: instrument=?'..'?: '..' is not a package name*",
        "*test_instrument_empty_part: instrument=?'os..'?: 'os..' is not a package name*",
        "*test_huge_seed: seed=1000000*: must be an integer <= 9223372036854775807*",
    ])
    assert "OverflowError" not in result.stdout.str()
    result.stdout.no_fnmatch_line("*pytest_concurrency*.py*")


def test_an_instrument_package_that_cannot_be_imported_fails_its_run_in_a_line(pytester):
    pytester.makepyfile(broken_pkg="raise RuntimeError('import fails')")
    pytester.makepyfile(test_it="""
        import pytest

        @pytest.mark.concurrency(modes=["explore"], instrument=["broken_pkg.sub"])
        def test_x():
            pass
        """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*instrument: cannot find package 'broken_pkg.sub': "
                                 "RuntimeError: import fails*"])
    result.stdout.no_fnmatch_line("*pytest_concurrency*.py*")


@pytest.mark.parametrize("name", [o.name for o in options.OPTIONS
                                  if o.kind in ("flag", "switch")])
def test_every_on_off_ini_value_is_checked_at_the_start(pytester, name):
    """``concurrency_reproduce`` was read only after a thread-mode failure: a bad
    value failed that test with a traceback, or passed unnoticed."""
    pytester.makeini(f"[pytest]\nconcurrency_{name} = maybe\n")
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*pytest-concurrency: concurrency_{name} in the ini file: "
                                 "invalid truth value 'maybe'; expected true or false*"])


# replay tokens


GOOD = {"s": "pct", "seed": 3, "i": 0, "py": "3.11", "g": "access", "w": 2, "c": "0*3.1"}


def made(data, raw=None):
    import base64
    import zlib

    body = raw if raw is not None else json.dumps(data).encode()
    return token.PREFIX + base64.urlsafe_b64encode(zlib.compress(body)).decode().rstrip("=")


def test_a_good_token_decodes():
    assert token.decode(made(GOOD))["choices"] == [0, 0, 0, 1]


@pytest.mark.parametrize(("change", "problem"), [
    ({"w": "2"}, "'w' is \"2\", not a number of workers"),  # was "is for 2 workers, ... has 2"
    ({"w": 0}, "'w' is 0, not a number of workers"),
    ({"c": 5}, "'c' is 5, not the schedule's choices"),
    ({"c": None}, "'c' is null, not the schedule's choices"),
    ({"c": "1*99999999999"}, "more than 10,000,000 choices"),  # was MemoryError
    ({"c": "0.1.x"}, "choice 'x' is not a worker index"),
    ({"c": "a*b"}, "choice 'a*b' is not a worker index"),
    ({"s": 1}, "'s' is 1, not a strategy"),
    ({"s": "chess"}, "'s' is \"chess\", not a strategy"),
    ({"seed": "3"}, "'seed' is \"3\", not a seed"),  # was TypeError
    ({"seed": True}, "'seed' is true, not a seed"),
    ({"i": -1}, "'i' is -1, not a schedule number"),
    ({"py": []}, "'py' is list, not a Python version"),
    ({"g": {}}, "'g' is dict, not a granularity"),
    ({"s": None}, "'s' is null, not a strategy"),
])
def test_a_token_that_decodes_but_carries_wrong_types_is_corrupt(change, problem):
    data = {**GOOD, **change}
    with pytest.raises(token.TokenError) as info:
        token.decode(made(data))
    assert str(info.value) == f"corrupt explore replay token ({problem})"


@pytest.mark.parametrize("text", [
    "nonsense", token.PREFIX, token.PREFIX + "!!!", made(None, b"[" * 100_000 + b"]" * 100_000),
    made(None, b"1" * 5000), made(None, b"[1]"), made(None, b" " * 70_000_000),
    made({key: value for key, value in GOOD.items() if key != "c"}),
], ids=["not-a-token", "empty", "not-base64", "deep", "long-int", "list", "bomb", "missing"])
def test_a_token_that_does_not_decode_is_one_sentence(text):
    with pytest.raises(token.TokenError) as info:
        token.decode(text)
    assert "explore replay token" in str(info.value) and "\n" not in str(info.value)


def test_a_bad_replay_token_stops_the_session_at_once(pytester):
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider",
                                f"--concurrency-replay={made({**GOOD, 'w': '2'})}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest-concurrency: --concurrency-replay='x1.*: corrupt "
                                 "explore replay token ('w' is \"2\", not a number of workers)"])


# report and baseline files


def sample():
    with open(SAMPLE, encoding="utf-8") as f:
        return json.load(f)


def entry0(data):
    return data["tests"][0]


# (how to spoil the sample report, what the one line says)
SPOILED = [
    (lambda d: entry0(d).update(failures="boom"), "tests[0].failures is not a list"),
    (lambda d: entry0(d).update(failures=[7]), "tests[0].failures[0] is not an object"),
    (lambda d: entry0(d).update(failures=[{"summary": ["x"]}]),
     "tests[0].failures[0].summary is not a string"),
    (lambda d: entry0(d).update(budget={"wall": 1}), "tests[0].budget is not a list"),
    (lambda d: entry0(d).update(budget=[{"verdict": 3}]),
     "tests[0].budget[0].verdict is not a string"),
    (lambda d: entry0(d).update(baseline="regressed"),
     "tests[0].baseline is not an object or null"),
    (lambda d: entry0(d).update(baseline={"ratio": "2x"}),
     "tests[0].baseline.ratio is not a number or null"),
    (lambda d: entry0(d).update(exploration=[]), "tests[0].exploration is not an object or null"),
    (lambda d: entry0(d).update(outcome=None), "tests[0].outcome is not a string"),
    (lambda d: entry0(d).update(advice=3), "tests[0].advice is not a string or null"),
    (lambda d: entry0(d).update(metrics=[]), "tests[0].metrics is not an object"),
    (lambda d: entry0(d)["metrics"]["wall"].update(value=-1),
     "tests[0].metrics.wall.value is below 0"),
    (lambda d: entry0(d)["metrics"]["wall"].pop("value"),
     "tests[0].metrics.wall.value is missing"),
    (lambda d: entry0(d).update(layout=2), "tests[0].layout is not a string"),
    (lambda d: d["run"].update(machine=1), "run.machine is not a string"),
    (lambda d: d["run"].update(merged_from="x"), "run.merged_from is not a list"),
    (lambda d: d.update(created=5), "created is not a string"),
]


@pytest.mark.parametrize(("spoil", "problem"), SPOILED, ids=[p for _, p in SPOILED])
def test_a_report_of_the_wrong_shape_is_one_line_for_every_command(tmp_path, capsys, spoil,
                                                                   problem):
    data = sample()
    spoil(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    for args in (["show", str(bad)], ["compare", SAMPLE, str(bad)],
                 ["merge", SAMPLE, str(bad), "-o", str(tmp_path / "all.json")]):
        assert cli.main(args) == 2, args
        out, err = capsys.readouterr()
        assert err == f"pytest-concurrency: malformed report: {bad}: {problem}\n", args
    assert not (tmp_path / "all.json").exists()


# (the file's text, what the one line says)
UNREADABLE = [
    ("[" * 100_000 + "]" * 100_000, "corrupt report (nested more than 32 deep)"),
    ('{"schema": 1, "tests": [], "x": ' + "[" * 40 + "]" * 40 + "}",
     "corrupt report (nested more than 32 deep)"),
    ('{"schema": 1, "tests": [], "x": ' + "1" * 4301 + "}",
     "corrupt report (a number of 4,301 digits)"),
    ('{"schema": 1, "tests": [], "x": Infinity}', "corrupt report (Infinity is not a JSON number)"),
    ('{"schema": 1, "tests": [], "x": NaN}', "corrupt report (NaN is not a JSON number)"),
    ('{"schema": 1, "tests": [], "x": 1e999}', "corrupt report (the number 1e999 is too large)"),
    ('{"schema": 10000000000000000000000000000000000, "tests": []}',
     "report schema 10000000000000000000000000000000000 is not supported"),
    ('{"schema": 1, "tests": {}}', 'not a pytest-concurrency report ("tests" missing or'),
    ("\ud800", "cannot read it"),
]


@pytest.mark.parametrize(("text", "problem"), UNREADABLE, ids=[p for _, p in UNREADABLE])
def test_an_unreadable_report_is_one_line_and_status_2(tmp_path, capsys, text, problem):
    bad = tmp_path / "bad.json"
    bad.write_bytes(text.encode("utf-8", "surrogatepass"))
    assert cli.main(["show", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"pytest-concurrency: {bad}: {problem}"), err
    assert err.count("\n") == 1


def test_the_command_line_itself_exits_2_on_a_deeply_nested_report(tmp_path):
    """In a process of its own, where a RecursionError used to reach the top."""
    bad = tmp_path / "deep.json"
    bad.write_text("[" * 100_000 + "]" * 100_000)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [os.path.dirname(HERE), os.environ.get("PYTHONPATH")]))}
    for args in (["show", bad], ["compare", SAMPLE, bad], ["merge", bad, "-o", tmp_path / "o"]):
        done = subprocess.run([sys.executable, "-m", "pytest_concurrency", *map(str, args)],
                              capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr == f"pytest-concurrency: {bad}: corrupt report (nested more than " \
                              "32 deep)\n"


# (how to make the sample report extreme but well-formed)
EXTREME = [
    lambda d: entry0(d)["metrics"]["wall"].update(value=1e300, low=1e300, high=1e300),
    lambda d: entry0(d)["metrics"]["wall"].update(value=1e-320, low=0, high=1e-320),
    lambda d: entry0(d)["metrics"]["wall"].update(value=10**299),
    lambda d: entry0(d).update(baseline={"status": "regressed", "ratio": 1e300}),
    lambda d: entry0(d).update(baseline={"status": "improved", "ratio": 1e-300}),
    lambda d: entry0(d).update(baseline={"status": "regressed", "ratio": -5}),
    lambda d: entry0(d).update(nodeid="t" * 100_000, failures=[{"summary": "s" * 100_000}]),
    lambda d: entry0(d).update(exploration={"interleaving": {}, "schedules_per_second": 1e300}),
    lambda d: d["tests"].clear(),
    lambda d: [e.clear() or e.update(nodeid="n", test="t", mode="m", layout="l")
               for e in d["tests"]],
]


@pytest.mark.parametrize("make", EXTREME)
def test_extreme_but_well_formed_reports_are_shown_and_compared(tmp_path, capsys, make):
    data = sample()
    make(data)
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps(data), encoding="utf-8")
    assert cli.main(["show", "-v", str(odd)]) == 0
    assert cli.main(["compare", str(odd), SAMPLE]) in (0, 1)
    assert cli.main(["compare", SAMPLE, str(odd)]) in (0, 1)
    assert cli.main(["merge", str(odd), SAMPLE, "-o", str(tmp_path / "all.json")]) == 0
    schema.parse((tmp_path / "all.json").read_text())  # strict: no Infinity, no NaN
    capsys.readouterr()


def test_documents_never_hold_infinity_or_nan():
    data = {"schema": 1, "tests": [], "x": [math.inf, -math.inf, math.nan, 1.5]}
    text = document.dumps(data)
    assert json.loads(text)["x"] == [None, None, None, 1.5]
    assert "Infinity" not in text and "NaN" not in text


def test_the_report_readers_schema_holds_every_sample_entry():
    assert sample()["schema"] == 1  # written before every field was always there
    assert schema.problem(sample(), schema.REPORT_V1) is None
    assert schema.problem(schema.upgrade_v1(sample()), schema.REPORT) is None
    data = schema.upgrade_v1(sample())
    data["tests"][0]["unknown_field"] = {"from": "a newer writer"}
    assert schema.problem(data, schema.REPORT) is None  # kept, not refused


BASELINE_TEXTS = [
    ("deep", lambda base: base.replace('"saved"', '"x": ' + "[" * 100_000 + "]" * 100_000
                                       + ', "saved"', 1), "corrupt baseline (nested more than"),
    ("digits", lambda base: base.replace('"saved"', '"x": ' + "1" * 4301 + ', "saved"', 1),
     "corrupt baseline (a number of 4,301 digits)"),
    ("infinity", lambda base: base.replace('"saved"', '"x": -Infinity, "saved"', 1),
     "corrupt baseline (-Infinity is not a JSON number)"),
    ("negative", lambda base: base.replace('"value": ', '"value": -', 1),
     "malformed baseline: "),
]

SLOW = """
import time
import pytest

@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_timed():
    time.sleep(0.01)
"""


def saved_baseline(pytester, run):
    pytester.makepyfile(test_suite=SLOW)
    result = run("--concurrency-baseline", "base.json", "--concurrency-save-baseline")
    assert result.ret == 0, result.stdout.str()
    return (pytester.path / "base.json").read_text()


def test_bad_baselines_stop_the_session_in_one_line(pytester, run):
    base = saved_baseline(pytester, run)
    for name, spoil, problem in BASELINE_TEXTS:
        (pytester.path / f"{name}.json").write_text(spoil(base))
        result = run("--concurrency-baseline", f"{name}.json", "--concurrency-compare-fail", "10%")
        assert result.ret == pytest.ExitCode.USAGE_ERROR, name
        (line,) = [line for line in result.stderr.lines if line.strip()]
        assert line.startswith("ERROR: pytest-concurrency: ") and problem in line, (name, line)
        assert f"{name}.json" in line
        assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_a_vanishing_baseline_value_gives_a_verdict_without_infinity(pytester, run):
    """A stored wall time of 1e-320 s made the ratio infinite: an OverflowError in
    the terminal summary and ``"ratio": Infinity`` in the JSON report."""
    base = json.loads(saved_baseline(pytester, run))
    for stored in base["machines"].values():
        for measured in stored.values():
            measured["metrics"]["wall"].update(value=1e-320, low=1e-320, high=1e-320)
    (pytester.path / "tiny.json").write_text(json.dumps(base))
    result = run("--concurrency-baseline", "tiny.json", "--concurrency-compare-fail", "10%",
                 "--concurrency-report", "r.json")
    assert "OverflowError" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*test_timed?thread?*regressed*"])
    text = (pytester.path / "r.json").read_text()
    (entry,) = schema.parse(text)["tests"]  # strict: no Infinity
    assert entry["baseline"]["status"] == "regressed" and entry["baseline"]["ratio"] is None
    assert cli.main(["show", str(pytester.path / "r.json")]) == 0
