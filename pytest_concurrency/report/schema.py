"""The shape of the report and baseline files, and the one reader that checks it.

The shapes are JSON Schemas (draft 2020-12, a subset of its words: ``type``,
``properties``, ``required``, ``items``, ``additionalProperties``,
``propertyNames``, ``enum``, ``const``, ``minimum``, and ``description``),
built from the TypedDicts of ``records.py`` (:func:`of`), so that the types
the code is checked against and the shape the files are checked against
cannot drift apart: :func:`report` (schema :data:`SCHEMA`: every field this
version writes is required) and :func:`baseline` (:data:`BASELINE_SCHEMA`).
They ship as ``pytest_concurrency/schemas/*.schema.json`` (:data:`FILES`).
An object whose keys are data has ``propertyNames``, and its paths show keys
as ``machines['Linux-x86_64-CPython3.11-2cpu']``.  Fields a schema does not
name may hold anything (a newer writer's additions are kept).

Schema 1 reports (written before every field was always there: ``serial``,
``exploration``, ``run.interrupted`` and the GIL fields came later) are
checked against :data:`REPORT_V1`, which asks for what every reader needs,
and :func:`upgrade_v1` fills in what they lack.  A change of shape bumps
:data:`SCHEMA`, keeps the previous one readable the same way, and says so in
docs/reports.md (tests/test_schema.py fails until it is bumped).

:func:`parse` reads a file's text as JSON that can be used: no ``NaN`` or
``Infinity`` (which JSON does not have), no real number beyond a float's
range, no integer of more digits than Python reads, no nesting deeper than
MAX_DEPTH; :func:`problem` names the first field that is
not as the schema says (``tests[0].metrics.wall.value is not a number``).
Both are cheap next to reading the file: a walk over its values.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
import sys
import types
import typing
from typing import Any

SCHEMA = 2  # of a report file
BASELINE_SCHEMA = 1  # of a baseline file
READS = {"report": (SCHEMA, 1), "baseline": (BASELINE_SCHEMA,)}  # newest first
FILES = {"report": "report.schema.json", "baseline": "baseline.schema.json"}
DIALECT = "https://json-schema.org/draft/2020-12/schema"
MAX_DEPTH = 32  # the documents nest 7 deep; a file nested deeper is not one of them
MAX_DIGITS = 4300  # of an integer: Python's own limit for reading one

# A schema is a JSON object; its values are of every JSON type.
JSONSchema = dict[str, Any]

_SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean"}


def of(hint: Any) -> JSONSchema:
    """The JSON Schema of a type of ``records.py``: a TypedDict (an object whose
    keys are its fields, the required ones required), ``dict[str, X]`` (an
    object of X), ``list[X]``, ``X | None``, a ``Literal``, str, int, float,
    bool, each with what its ``Annotated`` says (a description, ``Keys``,
    ``Minimum``)."""
    from .records import Keys, Minimum

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        schema = of(args[0])
        for extra in hint.__metadata__:
            if isinstance(extra, str):  # the field's own words, before its type's
                schema.pop("description", None)
                schema = {"description": extra, **schema}
            elif isinstance(extra, Keys):
                schema["propertyNames"] = {"type": "string", "description": extra.what}
            elif isinstance(extra, Minimum):
                schema["minimum"] = extra.value
        return schema
    if origin in (typing.NotRequired, typing.Required):
        return of(args[0])
    if typing.is_typeddict(hint):
        fields = typing.get_type_hints(hint, include_extras=True)
        schema = {"description": " ".join(hint.__doc__.split())} if hint.__doc__ else {}
        schema["type"] = "object"
        schema["properties"] = {name: of(field) for name, field in fields.items()}
        required = [name for name in fields if name in hint.__required_keys__]
        if required:
            schema["required"] = required
        return schema
    if origin in (typing.Union, types.UnionType):
        kinds = [arg for arg in args if arg is not type(None)]
        if len(kinds) != 1 or len(args) != 2:
            raise TypeError(f"{hint}: only X | None is a union a schema can say")
        schema = of(kinds[0])
        return {**schema, "type": [schema["type"], "null"]}
    if origin is typing.Literal:
        return {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
    if origin is dict and args[0] is str:
        return {"type": "object", "additionalProperties": of(args[1])}
    if origin is list:
        return {"type": "array", "items": of(args[0])}
    if hint in _SIMPLE:
        return {"type": _SIMPLE[hint]}
    raise TypeError(f"{hint!r} has no JSON Schema here")


def _document(record: type, version: int, title: str) -> JSONSchema:
    body = of(record)
    body["properties"]["schema"] = {"const": version,
                                    "description": body["properties"]["schema"]["description"]}
    return {"$schema": DIALECT, "title": title, **body}


@functools.cache
def report() -> JSONSchema:
    """The shape of a report file this version writes (schema :data:`SCHEMA`)."""
    from .records import Report

    return _document(Report, SCHEMA, "pytest-concurrency report")


@functools.cache
def baseline() -> JSONSchema:
    """The shape of a baseline file (schema :data:`BASELINE_SCHEMA`)."""
    from .records import Baseline

    return _document(Baseline, BASELINE_SCHEMA, "pytest-concurrency baseline")


def text(kind: str) -> str:
    """The JSON text of a shipped schema file (:data:`FILES`), as it is shipped:
    indented, with each list of strings on one line."""
    schema = report() if kind == "report" else baseline()
    indented = json.dumps(schema, indent=2, ensure_ascii=False)
    return _STRINGS.sub(lambda m: json.dumps(json.loads(m[0]), ensure_ascii=False),
                        indented) + "\n"


_STRINGS = re.compile(r'\[\s*("[^"\n]*"(?:,\s*"[^"\n]*")*)\s*\]')


def shipped(kind: str) -> str:
    """The text of the schema file the package ships for ``kind``."""
    from importlib import resources

    return (resources.files("pytest_concurrency") / "schemas" / FILES[kind]).read_text(
        encoding="utf-8")


# -- schema 1 reports, read by this version ------------------------------------------------

def _maybe(schema: JSONSchema) -> JSONSchema:
    """``schema`` or null."""
    return {**schema, "type": [schema["type"], "null"]}


def _object(properties: JSONSchema, required: tuple[str, ...] = (),
            **more: Any) -> JSONSchema:
    schema = {"type": "object", "properties": properties, **more}
    if required:
        schema["required"] = list(required)
    return schema


def _array(items: JSONSchema) -> JSONSchema:
    return {"type": "array", "items": items}


STRING: JSONSchema = {"type": "string"}
NUMBER: JSONSchema = {"type": "number"}
INTEGER: JSONSchema = {"type": "integer"}
BOOLEAN: JSONSchema = {"type": "boolean"}
AMOUNT: JSONSchema = {"type": "number", "minimum": 0}  # every metric is one

# What a reader needs of a schema 1 report, as it was when schema 1 was current
# (frozen: schema 1 files are what they are).
_METRIC_V1 = _object({"value": AMOUNT, "low": AMOUNT, "high": AMOUNT,
                      "rounds": {"type": "integer", "minimum": 0}, "unit": STRING,
                      "better": {"enum": ["lower", "higher"]}}, ("value",))
_METRICS_V1 = {"type": "object", "additionalProperties": _METRIC_V1}
_FAILURE_V1 = _object({"kind": STRING, "summary": STRING, "message": STRING,
                       "workers": _array(INTEGER), "iteration": _maybe(INTEGER),
                       "replay": _maybe(STRING), "replay_command": _maybe(STRING)})
_BUDGET_VERDICT_V1 = _object({"key": STRING, "limit": STRING, "verdict": STRING,
                              "message": STRING})
_BASELINE_VERDICT_V1 = _maybe(_object({"status": STRING, "metric": STRING,
                                       "ratio": _maybe(NUMBER), "baseline": _maybe(NUMBER),
                                       "threshold": _maybe(NUMBER)}))
_STEP_V1 = _object({"worker": INTEGER, "file": STRING, "line": INTEGER, "function": STRING,
                    "what": _maybe(STRING), "source": STRING})
_INTERLEAVING_V1 = _maybe(_object({"schedule": INTEGER, "kind": STRING,
                                   "worker": _maybe(INTEGER), "message": STRING,
                                   "total_steps": INTEGER, "steps": _array(_STEP_V1)}))
_EXPLORATION_V1 = _maybe(_object({
    "strategy": _maybe(STRING), "seed": _maybe(INTEGER), "workers": _maybe(INTEGER),
    "schedules": _maybe(INTEGER), "budget": _maybe(INTEGER), "complete": _maybe(BOOLEAN),
    "distinct": _maybe(INTEGER), "incomplete": _maybe(STRING), "verdict": _maybe(STRING),
    "outcomes": _maybe(INTEGER),
    "outcome_counts": {"type": "object", "propertyNames": STRING,
                       "additionalProperties": INTEGER},
    "schedules_per_second": _maybe(NUMBER), "switch_points": _maybe(STRING),
    "python": _maybe(STRING), "interleaving": _INTERLEAVING_V1}))
_ENTRY_V1 = _object({
    "nodeid": STRING, "test": STRING, "mode": STRING, "layout": STRING,
    "workers": _maybe(INTEGER), "iterations": _maybe(INTEGER), "outcome": STRING,
    "serial": _maybe(STRING), "duration": NUMBER, "metrics": _METRICS_V1,
    "budget": _array(_BUDGET_VERDICT_V1), "baseline": _BASELINE_VERDICT_V1,
    "advice": _maybe(STRING), "failures": _array(_FAILURE_V1),
    "exploration": _EXPLORATION_V1,
}, ("nodeid", "test", "mode", "layout"))
_SOURCE_V1 = _object({"created": _maybe(STRING), "machine": _maybe(STRING),
                      "git_commit": _maybe(STRING)})
_RUN_V1 = _object({
    "python": STRING, "implementation": STRING, "platform": STRING, "os": STRING,
    "arch": STRING, "cpu_count": _maybe(INTEGER), "cpu_affinity": _array(INTEGER),
    "usable_cpus": INTEGER, "git_commit": _maybe(STRING), "xdist_workers": INTEGER,
    "interrupted": BOOLEAN, "gil_disabled_build": BOOLEAN, "gil_enabled": BOOLEAN,
    "gil_reenabled_by": _array(_object({"module": STRING, "during": STRING})),
    "machine": STRING, "merged_from": _array(_SOURCE_V1)})
REPORT_V1 = _object({"schema": {"const": 1}, "generator": STRING, "created": STRING,
                     "run": _RUN_V1, "tests": _array(_ENTRY_V1)}, ("schema", "tests"),
                    title="pytest-concurrency report, schema 1")


# What a schema 1 report may lack, and what it meant: not recorded (an empty string,
# null, nothing), or what held when such a report was written (no interrupted session,
# the GIL on).  Required by REPORT_V1, and so never missing: nodeid, test, mode, layout.
_V1_RUN: tuple[tuple[str, object], ...] = (
    ("python", ""), ("implementation", ""), ("platform", ""), ("os", ""), ("arch", ""),
    ("cpu_count", None), ("cpu_affinity", []), ("usable_cpus", 0), ("git_commit", None),
    ("xdist_workers", 0), ("interrupted", False), ("gil_disabled_build", False),
    ("gil_enabled", True), ("gil_reenabled_by", []), ("machine", ""))
_V1_ENTRY: tuple[tuple[str, object], ...] = (
    ("workers", None), ("iterations", None), ("outcome", ""), ("serial", None),
    ("duration", 0.0), ("metrics", {}), ("budget", []), ("baseline", None), ("advice", None),
    ("failures", []), ("exploration", None))
_V1_BUDGET: tuple[tuple[str, object], ...] = (
    ("key", ""), ("limit", ""), ("verdict", ""), ("message", ""))
_V1_BASELINE: tuple[tuple[str, object], ...] = (
    ("status", ""), ("metric", "wall"), ("ratio", None), ("baseline", None),
    ("threshold", None))
_V1_FAILURE: tuple[tuple[str, object], ...] = (
    ("kind", ""), ("summary", ""), ("message", ""), ("workers", []), ("iteration", None),
    ("replay", None), ("replay_command", None))
_V1_EXPLORATION: tuple[tuple[str, object], ...] = (
    *((key, None) for key in ("strategy", "seed", "workers", "schedules", "budget",
                              "complete", "distinct", "incomplete", "verdict", "settings",
                              "outcomes", "schedules_per_second", "switch_points", "python",
                              "virtual_time", "interleaving")),
    ("outcome_counts", {}))
_V1_INTERLEAVING: tuple[tuple[str, object], ...] = (
    ("schedule", 0), ("kind", ""), ("worker", None), ("message", ""), ("steps", []))
_V1_STEP: tuple[tuple[str, object], ...] = (
    ("worker", 0), ("file", ""), ("line", 0), ("function", ""), ("what", None),
    ("source", ""))


def _fill(data: dict[str, Any], defaults: tuple[tuple[str, object], ...]) -> None:
    for key, default in defaults:
        if key not in data:
            data[key] = copy.copy(default)  # a list or dict of its own


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A schema 1 report (checked against REPORT_V1) as schema 2, in place: every
    field it lacks gets the value that says what it meant then (the tables above).
    This works on the file's plain data, before it is a typed Report."""
    from .records import METRICS

    data.setdefault("generator", "")
    data.setdefault("created", "")
    _fill(data.setdefault("run", {}), _V1_RUN)
    for entry in data["tests"]:
        _fill(entry, _V1_ENTRY)
        for name, metric in entry["metrics"].items():
            unit, better = METRICS.get(name, ("", "lower"))
            _fill(metric, (("low", metric["value"]), ("high", metric["value"]), ("rounds", 1),
                           ("unit", unit), ("better", better)))
        for verdict in entry["budget"]:
            _fill(verdict, _V1_BUDGET)
        if entry["baseline"] is not None:
            _fill(entry["baseline"], _V1_BASELINE)
        for failure in entry["failures"]:
            _fill(failure, _V1_FAILURE)
        exploration = entry["exploration"]
        if exploration is not None:
            _fill(exploration, _V1_EXPLORATION)
            interleaving = exploration["interleaving"]
            if interleaving is not None:
                _fill(interleaving, _V1_INTERLEAVING)
                interleaving.setdefault("total_steps", len(interleaving["steps"]))
                for step in interleaving["steps"]:
                    _fill(step, _V1_STEP)
    data["schema"] = SCHEMA
    return data


def __getattr__(name: str) -> Any:
    """``REPORT`` and ``BASELINE``: the schemas, built on first use."""
    if name == "REPORT":
        return report()
    if name == "BASELINE":
        return baseline()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Unusable(ValueError):
    """Text that is not JSON a document can be read from; the message says why."""


def _constant(name: str) -> Any:
    raise Unusable(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Unusable(f"the number {text[:20]}{'...' if len(text) > 20 else ''} is too large")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise Unusable(f"a number of {len(text.lstrip('-')):,} digits")
    return int(text)


def parse(text: str) -> Any:
    """``text`` as JSON; Unusable (or json.JSONDecodeError, a ValueError too)
    when it is not JSON or holds what no document does (see the module)."""
    try:
        data = json.loads(text, parse_constant=_constant, parse_float=_float,
                          parse_int=_int)
    except RecursionError:
        raise Unusable(f"nested more than {MAX_DEPTH} deep") from None
    if _depth(data) > MAX_DEPTH:
        raise Unusable(f"nested more than {MAX_DEPTH} deep")
    return data


def _depth(data: Any) -> int:
    """How deep lists and objects nest in ``data`` (a scalar: 0), walked without
    recursion."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_DEPTH:
            stack.extend((child, depth + 1) for child in children
                         if isinstance(child, (dict, list)))
    return deepest


_TYPES = {
    "string": (lambda v: isinstance(v, str), "a string"),
    "number": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
               and -sys.float_info.max <= v <= sys.float_info.max, "a number"),
    "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "boolean": (lambda v: isinstance(v, bool), "true or false"),
    "object": (lambda v: isinstance(v, dict), "an object"),
    "array": (lambda v: isinstance(v, list), "a list"),
    "null": (lambda v: v is None, "null"),
}


def problem(data: Any, schema: JSONSchema, where: str = "") -> str | None:
    """The first place where ``data`` is not as ``schema`` says, as one phrase
    (``tests[0].metrics.wall.value is not a number``); None if it is."""
    what = where or "the document"
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_TYPES[kind][0](data) for kind in kinds):
            return f"{what} is not {' or '.join(_TYPES[kind][1] for kind in kinds)}"
    if "const" in schema and data != schema["const"]:
        return f"{what} is not {json.dumps(schema['const'])}"
    if "enum" in schema and data not in schema["enum"]:
        return f"{what} is not one of {', '.join(json.dumps(v) for v in schema['enum'])}"
    if "minimum" in schema and isinstance(data, (int, float)) and data < schema["minimum"]:
        return f"{what} is below {schema['minimum']}"
    if isinstance(data, dict):
        for name in schema.get("required", ()):
            if name not in data:
                return f"{_key(where, name)} is missing"
        for name, value in data.items():
            sub = schema.get("properties", {}).get(name, schema.get("additionalProperties"))
            if isinstance(sub, dict):
                found = problem(value, sub, _key(where, name, "propertyNames" in schema))
                if found:
                    return found
    elif isinstance(data, list) and "items" in schema:
        for index, value in enumerate(data):
            found = problem(value, schema["items"], f"{where}[{index}]")
            if found:
                return found
    return None


def _key(where: str, name: str, mapping: bool = False) -> str:
    """The path of ``name`` in the object at ``where``: ``.name``, or ``['name']``
    in an object whose keys are data (``propertyNames``: machines, their entries)."""
    if mapping and where:
        return f"{where}[{name!r}]"
    return f"{where}.{name}" if where else name


def write_shipped() -> None:
    """Write the schema files the package ships (``pytest_concurrency/schemas/``)."""
    import pathlib

    folder = pathlib.Path(__file__).resolve().parent.parent / "schemas"
    for kind, name in FILES.items():
        (folder / name).write_text(text(kind), encoding="utf-8")


if __name__ == "__main__":  # python -m pytest_concurrency.report.schema
    write_shipped()
