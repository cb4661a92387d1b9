"""unittest.TestCase methods under the concurrency marker or --concurrency-apply.

pytest does not parametrize TestCase methods, so each one that should run
concurrently is replaced by one item per mode, ``test_x[thread]``.  With shared
fixtures its ``setUp``/``tearDown`` run once around the concurrent run of the
method body (like fixtures of a whole-body test); with per-worker fixtures
every call of the body (each worker, each iteration) runs on a TestCase
instance of its own, set up and torn down for it, as pytest makes one instance
per test.
"""

from __future__ import annotations

import dataclasses
import unittest
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

import pytest

from . import spec
from .compat import TestCaseFunction


class ConcurrentTestCaseFunction(TestCaseFunction):
    """A TestCase method run by every worker of one mode.

    Its name carries the mode (``test_x[thread]``); ``method_name`` is the
    method it runs.
    """

    def __init__(self, *, method_name: str, concurrency_spec: spec.RunSpec,
                 **kwargs: Any) -> None:
        self.method_name = method_name
        super().__init__(**kwargs)
        self.stash[spec.SPEC] = concurrency_spec

    def _getinstance(self) -> Any:
        assert isinstance(self.parent, pytest.Class)  # its TestCase (pytest asserts so too)
        return self.parent.obj(self.method_name)

    def _getobj(self) -> Any:
        return getattr(self.instance, self.method_name)

    def runtest(self) -> None:
        from .unsafe import SERIAL

        testcase = self.instance
        method = getattr(testcase, self.method_name)
        if SERIAL in self.stash:  # runs once, as unittest would run it
            testcase(result=self)
            return
        from . import instances
        from .outcomes import WorkerFailures
        from .running import execute, request_for

        run_spec = self.stash[spec.SPEC]
        if run_spec.fixtures == "per-worker":
            execute(request_for(run_spec, self, FreshTestCase(type(testcase),
                                                              self.method_name)), self)
            return
        request = request_for(run_spec, self, method)

        def run_concurrently() -> None:
            __tracebackhide__ = True
            try:
                execute(request, self)
            except WorkerFailures as failures:  # the workers shared this TestCase
                note = instances.shared_note(testcase)
                if note is not None:
                    failures.add_note(note)
                raise

        setattr(testcase, self.method_name, run_concurrently)
        try:
            testcase(result=self)
        finally:
            delattr(testcase, self.method_name)


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class CallResult(unittest.TestResult):
    """What one call's TestCase run raised: its first error, failure or skip."""

    def __init__(self) -> None:
        super().__init__()
        self.raised: BaseException | None = None

    def _keep(self, err: ExcInfo) -> None:
        if self.raised is None:
            self.raised = err[1]

    def addError(self, test: unittest.TestCase, err: Any) -> None:  # noqa: N802
        self._keep(err)

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:  # noqa: N802
        self._keep(err)

    def addSubTest(self, test: unittest.TestCase, subtest: unittest.TestCase,  # noqa: N802
                   err: Any) -> None:
        if err is not None:
            self._keep(err)

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:  # noqa: N802
        if self.raised is None:
            self.raised = unittest.SkipTest(reason)

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:  # noqa: N802
        if self.raised is None:
            self.raised = AssertionError(f"{test.id()} was expected to fail and passed")


@dataclasses.dataclass(frozen=True)
class FreshTestCase:
    """One call of a TestCase method on an instance of its own: ``setUp``, the
    method, ``tearDown`` and cleanups, as unittest runs a test; what it raised is
    raised again in the worker."""

    cls: type[unittest.TestCase]
    method_name: str

    def __call__(self) -> None:
        __tracebackhide__ = True
        result = CallResult()
        self.cls(self.method_name).run(result)
        if result.raised is not None:
            raise result.raised


def expand(items: Iterable[pytest.Item], settings: spec.Settings,
           invalid: dict[tuple[str, str], str]) -> Iterator[pytest.Item]:
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
            assert item.parent is not None  # the method's TestCase class
            invalid[(item.parent.nodeid, item.originalname)] = str(exc)
            specs = None
        if not specs:
            yield item
            continue
        for run_spec in specs:
            yield ConcurrentTestCaseFunction.from_parent(
                item.parent, name=f"{item.name}[{run_spec.mode}]", method_name=item.name,
                concurrency_spec=run_spec,
            )
