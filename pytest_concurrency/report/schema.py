"""The shape of the report and baseline files, and the one reader that checks it.

:data:`REPORT` and :data:`BASELINE` are JSON Schemas (draft 2020-12, a subset
of its words: ``type``, ``properties``, ``required``, ``items``,
``additionalProperties``, ``propertyNames``, ``enum``, ``const``, ``minimum``;
an object whose keys are data has ``propertyNames`` and its paths show keys as
``machines['Linux-x86_64-CPython3.11-2cpu']``) of what every
reader of the files relies on: ``python -m pytest_concurrency show``,
``compare`` and ``merge``, and a session comparing with a baseline.  Fields
they do not read may hold anything (a newer writer's additions are kept).

:func:`parse` reads a file's text as JSON that can be used: no ``NaN`` or
``Infinity`` (which JSON does not have), no real number beyond a float's
range, no integer of more digits than Python reads, no nesting deeper than
MAX_DEPTH; :func:`problem` names the first field that is
not as the schema says (``tests[0].metrics.wall.value is not a number``).
Both are cheap next to reading the file: a walk over its values.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

SCHEMA = 1
MAX_DEPTH = 32  # the documents nest 7 deep; a file nested deeper is not one of them
MAX_DIGITS = 4300  # of an integer: Python's own limit for reading one

STRING: dict[str, Any] = {"type": "string"}
NUMBER: dict[str, Any] = {"type": "number"}
INTEGER: dict[str, Any] = {"type": "integer"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
AMOUNT: dict[str, Any] = {"type": "number", "minimum": 0}  # every metric is one


def _maybe(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null."""
    return {**schema, "type": [schema["type"], "null"]}


def _object(properties: dict[str, Any], required: tuple[str, ...] = (),
            **more: Any) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, **more}
    if required:
        schema["required"] = list(required)
    return schema


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


METRIC = _object({"value": AMOUNT, "low": AMOUNT, "high": AMOUNT,
                  "rounds": {"type": "integer", "minimum": 0}, "unit": STRING,
                  "better": {"enum": ["lower", "higher"]}}, ("value",))
METRICS = {"type": "object", "additionalProperties": METRIC}

FAILURE = _object({"kind": STRING, "summary": STRING, "message": STRING,
                   "workers": _array(INTEGER), "iteration": _maybe(INTEGER),
                   "replay": _maybe(STRING), "replay_command": _maybe(STRING)})
BUDGET_VERDICT = _object({"key": STRING, "limit": STRING, "verdict": STRING,
                          "message": STRING})
BASELINE_VERDICT = _maybe(_object({"status": STRING, "metric": STRING,
                                   "ratio": _maybe(NUMBER), "baseline": _maybe(NUMBER),
                                   "threshold": _maybe(NUMBER)}))
STEP = _object({"worker": INTEGER, "file": STRING, "line": INTEGER, "function": STRING,
                "what": _maybe(STRING), "source": STRING})
INTERLEAVING = _maybe(_object({"schedule": INTEGER, "kind": STRING, "worker": _maybe(INTEGER),
                               "message": STRING, "total_steps": INTEGER,
                               "steps": _array(STEP)}))
EXPLORATION = _maybe(_object({
    "strategy": _maybe(STRING), "seed": _maybe(INTEGER), "workers": _maybe(INTEGER),
    "schedules": _maybe(INTEGER), "budget": _maybe(INTEGER), "complete": _maybe(BOOLEAN),
    "distinct": _maybe(INTEGER), "incomplete": _maybe(STRING), "verdict": _maybe(STRING),
    "outcomes": _maybe(INTEGER),
    "outcome_counts": {"type": "object", "propertyNames": STRING,
                       "additionalProperties": INTEGER},
    "schedules_per_second": _maybe(NUMBER), "switch_points": _maybe(STRING),
    "python": _maybe(STRING), "interleaving": INTERLEAVING}))
ENTRY = _object({
    "nodeid": STRING, "test": STRING, "mode": STRING, "layout": STRING,
    "workers": _maybe(INTEGER), "iterations": _maybe(INTEGER), "outcome": STRING,
    "serial": _maybe(STRING), "duration": NUMBER, "metrics": METRICS,
    "budget": _array(BUDGET_VERDICT), "baseline": BASELINE_VERDICT, "advice": _maybe(STRING),
    "failures": _array(FAILURE), "exploration": EXPLORATION,
}, ("nodeid", "test", "mode", "layout"))
SOURCE = _object({"created": _maybe(STRING), "machine": _maybe(STRING),
                  "git_commit": _maybe(STRING)})
RUN = _object({
    "python": STRING, "implementation": STRING, "platform": STRING, "os": STRING,
    "arch": STRING, "cpu_count": _maybe(INTEGER), "cpu_affinity": _array(INTEGER),
    "usable_cpus": INTEGER, "git_commit": _maybe(STRING), "xdist_workers": INTEGER,
    "interrupted": BOOLEAN, "gil_disabled_build": BOOLEAN, "gil_enabled": BOOLEAN,
    "gil_reenabled_by": _array(_object({"module": STRING, "during": STRING})),
    "machine": STRING, "merged_from": _array(SOURCE)})
REPORT = _object({"schema": {"const": SCHEMA}, "generator": STRING, "created": STRING,
                  "run": RUN, "tests": _array(ENTRY)}, ("schema", "tests"),
                 title="pytest-concurrency report")

STORED = _object({"metrics": METRICS, "saved": _maybe(STRING), "git_commit": _maybe(STRING)},
                 ("metrics",))
BASELINE = _object({"schema": {"const": SCHEMA}, "kind": {"const": "baseline"},
                    "machines": {"type": "object", "propertyNames": STRING,
                                 "additionalProperties": {
                                     "type": "object", "propertyNames": STRING,
                                     "additionalProperties": STORED}}},
                   ("schema", "machines"), title="pytest-concurrency baseline")


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


def problem(data: Any, schema: dict[str, Any], where: str = "") -> str | None:
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
