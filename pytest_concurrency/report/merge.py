"""Combining the reports of several shards (CI jobs, pytest-xdist runs on
several machines) into one document.

The result carries the first report's run metadata with a ``merged_from``
list in it: ``{"created", "machine", "git_commit"}`` of every input (the
inputs of an input that was itself merged, in order).  When the same node id
is in several inputs, the entry of the last one wins.
"""

from __future__ import annotations

import copy

from . import document
from .records import Entry, Report, Source


def merge(documents: list[Report]) -> Report:
    """One new document holding the tests of all ``documents`` (at least one)."""
    if not documents:
        raise ValueError("merge() needs at least one document")
    run = copy.deepcopy(documents[0]["run"])
    run["merged_from"] = [source for data in documents for source in sources(data)]
    tests: dict[str, Entry] = {}
    for data in documents:
        for entry in data["tests"]:
            tests[entry["nodeid"]] = copy.deepcopy(entry)
    return document.new(run, list(tests.values()))


def sources(data: Report) -> list[Source]:
    """What ``data`` was made from: itself, or what it was merged from."""
    run = data["run"]
    if run.get("merged_from"):
        return copy.deepcopy(run["merged_from"])
    return [{"created": data["created"], "machine": run["machine"],
             "git_commit": run["git_commit"]}]


def duplicates(documents: list[Report]) -> dict[str, list[int]]:
    """Node ids found more than once -> the indexes of the documents holding them."""
    found: dict[str, list[int]] = {}
    for index, data in enumerate(documents):
        for entry in data["tests"]:
            found.setdefault(entry["nodeid"], []).append(index)
    return {nodeid: indexes for nodeid, indexes in found.items() if len(indexes) > 1}
