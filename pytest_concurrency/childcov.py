"""Coverage of code run in forked children.

A forked child inherits the parent's running coverage.py tracer, but its
data would die with it.  Unless coverage's own multiprocessing support
(``concurrency = multiprocessing``) already measures the child, the child
stops the inherited tracer and measures itself with a fresh ``Coverage``
that saves a parallel data file (``.coverage.<host>.<pid>.<random>``) beside
the parent's, which pytest-cov and ``coverage combine`` merge.
"""

from __future__ import annotations

import multiprocessing
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coverage import Coverage

_COVERAGE_PATCHED = "_coverage$patched"  # set by coverage.multiproc when it measures children


def start() -> Coverage | None:
    """In a forked child: a started Coverage to :func:`save` at the end, or None."""
    module = sys.modules.get("coverage")
    if module is None or getattr(multiprocessing, _COVERAGE_PATCHED, False):
        return None
    inherited = module.Coverage.current()
    if inherited is None:
        return None
    config = inherited.config
    try:
        inherited.stop()
        cov = module.Coverage(
            data_file=config.data_file, data_suffix=True, config_file=config.config_file or True,
            source=config.source, branch=config.branch, include=config.run_include,
            omit=config.run_omit, concurrency=config.concurrency,
        )
        cov._warn_preimported_source = False
        cov.start()
    except Exception as exc:  # noqa: BLE001 - never fail a test for coverage's sake
        print(f"pytest-concurrency: coverage not measured in this child: {exc!r}",
              file=sys.stderr)
        return None
    return cov


def save(cov: Coverage | None) -> None:
    if cov is None:
        return
    try:
        cov.stop()
        cov.save()
    except Exception as exc:  # noqa: BLE001
        print(f"pytest-concurrency: coverage data of this child lost: {exc!r}",
              file=sys.stderr)
