"""The iteration barrier of process and hybrid mode (children.ReleasingBarrier): every
generation lets all parties through together, runs the action once, and a broken one
stays broken for everyone."""

import multiprocessing
import threading

import pytest

from pytest_concurrency.runners.crossing import ReleasingBarrier

CTX = multiprocessing.get_context("fork")


def _parties(barrier, n, body):
    errors, threads = [], []

    def run(index):
        try:
            body(index)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    for index in range(n):
        threads.append(threading.Thread(target=run, args=(index,)))
        threads[-1].start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    return errors


def test_no_party_gets_a_generation_ahead_and_the_action_runs_once_per_generation():
    actions, seen = [], []
    barrier = ReleasingBarrier(CTX, 3, action=lambda: actions.append(len(actions)))

    def body(index):
        for generation in range(200):
            barrier.wait()
            # every party passed this generation's wait before anyone's next action
            seen.append((generation, len(actions)))

    assert _parties(barrier, 3, body) == []
    assert actions == list(range(200))
    # after generation g's wait the action ran g+1 times, and at most g+2 times (the
    # next generation needs this party too)
    assert all(g + 1 <= count <= g + 2 for g, count in seen)
    assert not barrier.broken and barrier.n_waiting == 0


def test_abort_wakes_every_waiter_with_broken_barrier_and_stays_broken():
    barrier = ReleasingBarrier(CTX, 3)
    arrived = threading.Barrier(3)  # the two waiters are at the barrier when it aborts

    def body(index):
        if index == 2:
            arrived.wait()
            while barrier.n_waiting < 2:
                threading.Event().wait(0.001)
            barrier.abort()
            return
        arrived.wait()
        barrier.wait()

    errors = _parties(barrier, 3, body)
    assert len(errors) == 2 and all(isinstance(e, threading.BrokenBarrierError) for e in errors)
    assert barrier.broken
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait()


def test_a_failing_action_breaks_it_and_a_timeout_breaks_it():
    def fail():
        raise RuntimeError("action failed")

    failing = ReleasingBarrier(CTX, 1, action=fail)
    with pytest.raises(RuntimeError, match="action failed"):
        failing.wait()
    assert failing.broken

    lonely = ReleasingBarrier(CTX, 2)
    with pytest.raises(threading.BrokenBarrierError):
        lonely.wait(timeout=0.01)
    assert lonely.broken
