"""The shapes of the report and baseline files: built from the TypedDicts of
report/records.py, shipped in the package as JSON Schema files, versioned
honestly, checked when a file is read and before one is written."""

import configparser
import copy
import hashlib
import json
import pathlib
import typing

import pytest

from pytest_concurrency.report import collector, document, records, schema

ROOT = pathlib.Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "data" / "sample_report.json"
KEYWORDS = {"$schema", "title", "description", "type", "properties", "required", "items",
            "additionalProperties", "propertyNames", "enum", "const", "minimum"}

# The shape of each file as this version writes it, by schema number: a digest of
# its schema without the words that only describe it.  A change of shape must bump
# the file's schema number (schema.SCHEMA, schema.BASELINE_SCHEMA), keep the
# previous number readable (schema.READS, an upgrade like schema.upgrade_v1) and
# say so in docs/reports.md; then record the new shape here.
SHAPES = {
    "report": (2, "9a88e5496d1400f4"),
    "baseline": (1, "ebf8a8e622596cea"),
}


def shape(value):
    """``value`` (a schema) without what only describes it."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()
                if key not in ("description", "title", "$schema")}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return value


def digest(kind):
    text = json.dumps(shape(schema.report() if kind == "report" else schema.baseline()),
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def walk(node, where="#"):
    """Every subschema of ``node`` with its JSON pointer."""
    yield where, node
    for key in ("properties",):
        for name, sub in node.get(key, {}).items():
            yield from walk(sub, f"{where}/{key}/{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from walk(node[key], f"{where}/{key}")


@pytest.mark.parametrize("kind", ["report", "baseline"])
def test_the_shipped_schema_files_are_what_the_code_builds(kind):
    assert schema.shipped(kind) == schema.text(kind), (
        f"pytest_concurrency/schemas/{schema.FILES[kind]} is out of date: write it again "
        "with `python -m pytest_concurrency.report.schema`")


def test_the_schema_files_ship_in_the_package():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    shipped = config["options.package_data"]["pytest_concurrency"]
    assert "schemas/*.schema.json" in [p.strip() for p in shipped.split(",")]
    files = sorted(p.name for p in (ROOT / "pytest_concurrency" / "schemas").iterdir())
    assert files == sorted(schema.FILES.values())


@pytest.mark.parametrize("kind", ["report", "baseline"])
def test_a_change_of_shape_bumps_the_schema_number(kind):
    version, recorded = SHAPES[kind]
    current = schema.SCHEMA if kind == "report" else schema.BASELINE_SCHEMA
    assert (current, digest(kind)) == (version, recorded), (
        f"the {kind} file's shape changed: bump its schema number (schema.py), keep "
        "reading the previous one, say so in docs/reports.md, then record the new shape "
        "in SHAPES")
    assert schema.READS[kind][0] == current


def records_of(hint, found):
    """Every TypedDict ``hint`` reaches, with the schema built for it."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if typing.is_typeddict(hint):
        if hint not in found:
            found[hint] = schema.of(hint)
            for field in typing.get_type_hints(hint, include_extras=True).values():
                records_of(field, found)
    elif origin is not None:
        for arg in args:
            records_of(arg, found)
    return found


@pytest.mark.parametrize("record", [records.Report, records.Baseline])
def test_every_field_of_every_record_is_in_the_schema_and_described(record):
    found = records_of(record, {})
    assert records.Exploration in found or record is records.Baseline
    for typed, built in found.items():
        fields = typing.get_type_hints(typed, include_extras=True)
        assert list(built["properties"]) == list(fields), typed.__name__
        assert set(built.get("required", ())) == set(typed.__required_keys__), typed.__name__
        for name, sub in built["properties"].items():
            assert sub.get("description"), f"{typed.__name__}.{name} says nothing of itself"


@pytest.mark.parametrize("kind", ["report", "baseline"])
def test_the_schemas_use_only_the_words_the_reader_knows(kind):
    built = schema.report() if kind == "report" else schema.baseline()
    for where, node in walk(built):
        assert set(node) <= KEYWORDS, where
    assert built["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_field_a_report_writes_is_required():
    built = schema.report()
    entry = built["properties"]["tests"]["items"]
    assert entry["required"] == list(entry["properties"])
    run = built["properties"]["run"]
    assert set(run["properties"]) - set(run["required"]) == {"merged_from"}  # merged only


def test_a_schema_1_report_is_read_brought_up_to_date():
    data = document.load(str(SAMPLE))
    assert json.loads(SAMPLE.read_text())["schema"] == 1
    assert data["schema"] == schema.SCHEMA
    assert schema.problem(data, schema.report()) is None
    assert data["run"]["interrupted"] is False and data["run"]["gil_enabled"] is True
    assert all(e["serial"] is None and e["exploration"] is None for e in data["tests"])
    wall = data["tests"][0]["metrics"]["wall"]
    assert (wall["unit"], wall["better"]) == ("s", "lower")


def test_a_schema_1_report_keeps_what_it_has():
    data = json.loads(SAMPLE.read_text())
    entry = data["tests"][0]
    entry["metrics"] = {"wall": {"value": 2.0}}
    entry["exploration"] = {"strategy": "dfs", "interleaving": {"steps": [{"worker": 1}]}}
    upgraded = schema.upgrade_v1(copy.deepcopy(data))
    wall = upgraded["tests"][0]["metrics"]["wall"]
    assert (wall["low"], wall["high"], wall["rounds"]) == (2.0, 2.0, 1)
    exploration = upgraded["tests"][0]["exploration"]
    assert exploration["strategy"] == "dfs" and exploration["seed"] is None
    assert exploration["interleaving"]["total_steps"] == 1
    assert exploration["interleaving"]["steps"][0]["worker"] == 1
    assert schema.problem(upgraded, schema.report()) is None


@pytest.mark.parametrize(("version", "says"), [
    (3, "report schema 3 is not supported (this version reads schema 2 (and 1); a newer "
        "pytest-concurrency wrote it)"),
    (0, "report schema 0 is not supported (this version reads schema 2 (and 1))"),
    ("2", "report schema '2' is not supported (this version reads schema 2 (and 1))"),
    (True, "report schema True is not supported (this version reads schema 2 (and 1))"),
])
def test_a_schema_this_version_does_not_read_is_said_plainly(version, says):
    with pytest.raises(document.ReportError) as caught:
        document.check({"schema": version, "tests": []}, "r.json")
    assert str(caught.value) == f"r.json: {says}"


def test_a_baseline_of_another_schema_is_said_plainly():
    with pytest.raises(document.ReportError) as caught:
        document.check({"schema": 2, "machines": {}}, "b.json", "baseline")
    assert str(caught.value) == ("b.json: baseline schema 2 is not supported (this version "
                                 "reads schema 1; a newer pytest-concurrency wrote it)")


def test_a_document_that_does_not_match_its_schema_is_never_written(tmp_path,
                                                                    schema_refusals):
    data = document.load(str(SAMPLE))
    del data["tests"][0]["serial"]
    with pytest.raises(document.ReportError) as caught:
        collector.render(str(tmp_path / "r.json"), data)
    assert str(caught.value) == ("the report does not match its schema (tests[0].serial is "
                                 "missing): a bug in pytest-concurrency, please report it")
    assert schema_refusals == [str(caught.value)]
    schema_refusals.clear()  # refused on purpose: the conftest check is not to fail this test
    assert collector.render(str(tmp_path / "r.md"), data).startswith("## pytest-concurrency")


def test_what_a_session_writes_matches_the_schema(pytester, run):
    """One session with most of what an entry can hold: a race found by explore
    (with its interleaving), a crash, a leak, a budget, a serial item and a
    baseline verdict; its report and its baseline are read back as checked."""
    pytester.makepyfile(test_all="""
        import os, threading, time
        import pytest

        class Counter:
            value = 0

        @pytest.mark.concurrency(modes=["explore"], workers=2, schedules=50, seed=1)
        def test_race():
            c = Counter
            v = c.value
            c.value = v + 1

        @pytest.mark.concurrency(modes=["process"], workers=2)
        def test_crash(worker):
            if worker.index == 1:
                os._exit(3)

        @pytest.mark.concurrency(modes=["thread"], workers=2, leaks="fail")
        def test_leak(worker):
            if worker.index == 0:
                threading.Thread(target=time.sleep, args=(3,), daemon=True).start()

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        @pytest.mark.concurrency_budget(wall="10s")
        def test_budgeted():
            pass

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_serial(monkeypatch):
            pass
    """)
    result = run("--concurrency-report=r.json", "--concurrency-save-baseline",
                 "--concurrency-baseline=b.json")
    assert "does not match" not in result.stdout.str()
    report = document.load(str(pytester.path / "r.json"))
    assert json.loads((pytester.path / "r.json").read_text())["schema"] == schema.SCHEMA
    entries = {e["nodeid"]: e for e in report["tests"]}
    race = entries["test_all.py::test_race[explore]"]["exploration"]
    assert race is not None and race["settings"] and "virtual_time" in race
    kinds = {f["kind"] for e in report["tests"] for f in e["failures"]}
    assert {"crash", "leak"} <= kinds
    assert entries["test_all.py::test_serial[thread]"]["outcome"] == "serial"
    assert document.load(str(pytester.path / "b.json"), "baseline")["machines"]
