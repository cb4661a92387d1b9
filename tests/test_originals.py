"""A test that replaces ``os.fork`` or ``threading.Thread.start`` (rightly or
wrongly) breaks neither the plugin nor the next item: the plugin starts its
threads and children with the originals it saved at import."""

import os
import threading

from pytest_concurrency import originals

REPLACES = """
import asyncio, os, threading
import pytest

def test_replaces_fork_for_good():
    os.fork = lambda: 1 / 0  # wrongly, and never restored

@pytest.fixture
def no_threads():
    saved = threading.Thread.start
    threading.Thread.start = lambda self: None  # starts nothing
    yield
    threading.Thread.start = saved

@pytest.mark.concurrency(modes=["thread", "explore"], workers=3, timeout=10)
def test_threads_under_a_broken_start(no_threads, worker):
    assert worker.index in (0, 1, 2)

@pytest.mark.concurrency(modes=["explore"], workers=2, timeout=10)
async def test_tasks_under_a_broken_start(no_threads, worker):
    await asyncio.to_thread(sum, [worker.index])

@pytest.mark.concurrency(modes=["thread", "process", "hybrid"], workers=2, timeout=10)
def test_next(worker):
    pass

@pytest.mark.concurrency(modes=["process"], workers=2, timeout=10)
def test_the_body_sees_the_tests_patch(worker):
    with pytest.raises(ZeroDivisionError):
        os.fork()
"""


def test_replaced_fork_and_thread_start_break_nothing(pytester):
    pytester.makepyfile(test_replaces=REPLACES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=8)


def test_restored_puts_the_originals_in_place_and_the_patch_back(monkeypatch):
    def fake():
        raise AssertionError("the test's fork")

    monkeypatch.setattr(os, "fork", fake)
    with originals.restored():
        assert os.fork is not fake
        assert threading.Thread.start is originals._START
    assert os.fork is fake
    with originals.restored():
        originals.reapply()  # as a child forked inside would
        assert os.fork is fake
