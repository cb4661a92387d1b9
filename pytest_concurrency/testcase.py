"""unittest.TestCase methods under the concurrency marker or --concurrency-apply.

pytest does not parametrize TestCase methods, so each one that should run
concurrently is replaced by one item per mode, ``test_x[thread]``, whose
``setUp``/``tearDown`` run once around the concurrent run of the method body
(like fixtures of a whole-body test).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest
from _pytest.unittest import TestCaseFunction

from . import spec
from .fixtures import execute


class ConcurrentTestCaseFunction(TestCaseFunction):
    """A TestCase method run by every worker of one mode."""

    concurrency_spec: spec.RunSpec | None = None

    def _getinstance(self):
        return self.parent.obj(self.originalname)

    def runtest(self) -> None:
        testcase = self.instance
        method = getattr(testcase, self.originalname)
        run_spec, item = self.concurrency_spec, self

        def run_concurrently():
            __tracebackhide__ = True
            execute(run_spec, item, method)

        setattr(testcase, self.originalname, run_concurrently)
        try:
            testcase(result=self)
        finally:
            delattr(testcase, self.originalname)


def expand(items: Iterable[pytest.Item], settings: spec.Settings,
           invalid: dict) -> Iterator[pytest.Item]:
    """Yield ``items`` with each concurrent TestCase method split by mode.

    A method whose marker is invalid is kept as is, its problem recorded in
    ``invalid`` for the setup hook to report.
    """
    for item in items:
        if type(item) is not TestCaseFunction:
            yield item
            continue
        try:
            specs = spec.specs_for(item.iter_markers("concurrency"), settings,
                                   item.iter_markers("concurrency_budget"))
        except spec.SpecError as exc:
            invalid[(item.parent.nodeid, item.originalname)] = str(exc)
            specs = None
        if not specs:
            yield item
            continue
        for run_spec in specs:
            new = ConcurrentTestCaseFunction.from_parent(
                item.parent, name=f"{item.name}[{run_spec.mode}]", originalname=item.name,
            )
            new.concurrency_spec = run_spec
            yield new
