"""explore(): the deterministic scheduler finds, reports and replays classic races."""
import asyncio
import os
import random
import selectors
import sys
import textwrap
import threading
import time
import types

import bug_kernels as K
import pytest

from pytest_concurrency.explore import ReplayDiverged, decode_token, explore
from pytest_concurrency.explore.selftest import problem

SEEDS = range(10)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(K.BUGGY))
def test_default_settings_find_every_bug(name, seed):
    k = K.BUGGY[name]
    result = explore(k.setup, k.actors, k.check, seed=seed)
    assert result.failure is not None, f"{name} not found with seed {seed}"
    assert result.failure.kind == K.EXPECTED_KIND[name], result.failure.report
    assert result.schedules_run <= 200


@pytest.mark.parametrize("name", list(K.FIXED))
def test_fixed_twin_passes_every_schedule(name):
    k = K.FIXED[name]
    result = explore(k.setup, k.actors, k.check, seed=3)
    assert result.failure is None, result.failure.report
    assert result.schedules_run == 200
    assert result.stats["abandoned_threads"] == 0


def test_lock_created_at_import_is_blocked_on_outside_the_scheduler():
    k = K.FIXED["lost_update_module_lock"]
    start = time.perf_counter()
    result = explore(k.setup, k.actors, k.check, seed=0, schedules=50)
    assert result.failure is None
    assert result.stats["detaches"] > 0  # it did contend, and did not hang
    assert time.perf_counter() - start < 10


def test_abba_deadlock_is_reported_as_a_cycle_at_once():
    k = K.BUGGY["abba_deadlock"]
    start = time.perf_counter()
    f = explore(k.setup, k.actors, seed=0).failure
    assert time.perf_counter() - start < 5.0  # found, not waited for (hang_timeout is 5 s)
    assert f.kind == "deadlock"
    assert "wait-for cycle worker 0 -> worker 1 -> worker 0" in f.message
    assert "worker 0 holds state.a (bug_kernels.py:" in f.message
    assert "and waits for state.b (bug_kernels.py:" in f.message
    assert "held by worker 1" in f.message
    assert "worker 1 holds state.b" in f.message


def test_queue_consumer_blocked_forever_is_a_deadlock():
    k = K.BUGGY["queue_consumer"]
    f = explore(k.setup, k.actors, seed=0).failure
    assert "waits for an item on state.q that nobody will put" in f.message
    assert "get, blocks]" in f.interleaving


def test_missed_notify_names_the_condition():
    k = K.BUGGY["missed_notify"]
    f = explore(k.setup, k.actors, seed=0).failure
    assert "waits on state.cond for a notify that nobody will send" in f.message


def test_report_shows_interleaving_columns_with_source():
    k = K.BUGGY["lost_update_call"]
    f = explore(k.setup, k.actors, k.check, seed=0).failure
    head = f.interleaving.splitlines()[0]
    assert "worker 0" in head and "worker 1" in head
    assert "bug_kernels.py:" in f.interleaving and "v = s.value" in f.interleaving
    assert "primitives.py" not in f.report and "scheduler.py" not in f.interleaving
    assert f"replay token: {f.token}" in f.report
    assert "strategy=pct, seed=0" in f.report


@pytest.mark.parametrize("name", ["lost_update", "abba_deadlock", "dict_iteration",
                                  "publish_before_init", "queue_consumer"])
def test_replay_token_reproduces_the_failure_10_of_10(name):
    k = K.BUGGY[name]
    first = explore(k.setup, k.actors, k.check, seed=4).failure
    for _ in range(10):
        again = explore(k.setup, k.actors, k.check, replay=first.token).failure
        assert again is not None
        assert (again.kind, again.worker, again.message) == \
            (first.kind, first.worker, first.message)
        assert again.interleaving == first.interleaving
        assert again.token == first.token


def test_token_carries_strategy_seed_index_python_granularity():
    k = K.BUGGY["lost_update"]
    f = explore(k.setup, k.actors, k.check, seed=7, granularity="opcode").failure
    data = decode_token(f.token)
    assert data["strategy"] == "pct" and data["seed"] == 7
    assert data["index"] == f.schedule and data["granularity"] == "opcode"
    assert data["python"] == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert data["workers"] == 2 and data["choices"]
    assert len(f.token) < 200


def test_replay_that_cannot_be_followed_says_where_it_diverged():
    k = K.BUGGY["lost_update"]
    f = explore(k.setup, k.actors, k.check, seed=0).failure
    # the same schedule, but worker 1 finishes before it is asked to run again
    fixed = K.FIXED["lost_update"]
    with pytest.raises(ReplayDiverged, match=r"replay diverged at step \d+: expected "
                       r"worker \d, but only workers \d are runnable"):
        explore(fixed.setup, [K._inc, lambda s: None], fixed.check, replay=f.token)


def test_replay_of_a_token_for_another_worker_count_is_refused():
    k = K.BUGGY["lost_update"]
    f = explore(k.setup, k.actors, k.check, seed=0).failure
    with pytest.raises(ReplayDiverged, match="for 2 workers"):
        explore(k.setup, k.actors * 2, k.check, replay=f.token)


def test_worker_exception_is_a_finding_with_its_traceback():
    def boom(s):
        s.value += 1
        raise ValueError(f"bad value {s.value}")

    result = explore(K.lost_update.setup, [K._inc, boom], seed=0)
    f = result.failure
    assert f.kind == "exception" and f.worker == 1
    assert isinstance(f.exception, ValueError)
    assert "test_engine.py" in f.traceback and "ValueError: bad value" in f.traceback
    assert "scheduler.py" not in f.traceback
    assert result.schedules_run == 1


def test_state_is_fresh_and_nothing_is_left_behind():
    before = threading.active_count()
    saved = (threading.Lock, threading.Condition, time.sleep, time.monotonic)
    k = K.BUGGY["abba_deadlock"]
    explore(k.setup, k.actors, seed=1)
    k = K.FIXED["queue_consumer"]
    explore(k.setup, k.actors, schedules=20)
    assert (threading.Lock, threading.Condition, time.sleep, time.monotonic) == saved
    assert threading.active_count() == before
    assert sys.gettrace() is None or "explore" not in repr(sys.gettrace())


def test_setup_error_propagates_and_restores_patches():
    saved = threading.Lock

    def bad_setup():
        assert threading.Lock is not saved  # patched while setup runs
        raise KeyError("setup failed")

    with pytest.raises(KeyError):
        explore(bad_setup, [K._inc])
    assert threading.Lock is saved


@pytest.mark.parametrize("strategy", ["random", "dfs"])
def test_other_strategies_find_the_lost_update(strategy):
    k = K.BUGGY["lost_update"]
    f = explore(k.setup, k.actors, k.check, strategy=strategy, seed=2).failure
    assert f is not None and f.kind == "assertion"
    again = explore(k.setup, k.actors, k.check, replay=f.token).failure
    assert again.message == f.message


def test_dfs_reports_exhaustion_of_the_bounded_space():
    k = K.FIXED["lost_update"]
    result = explore(k.setup, k.actors, k.check, strategy="dfs", schedules=10_000)
    assert result.failure is None and result.exhausted
    assert 1 < result.schedules_run < 10_000


@pytest.mark.parametrize("granularity", ["opcode", "line"])
def test_other_granularities_find_the_lost_update(granularity):
    k = K.BUGGY["lost_update_call"]
    f = explore(k.setup, k.actors, k.check, granularity=granularity, seed=0).failure
    assert f is not None


def test_same_seed_same_result():
    k = K.BUGGY["check_then_act"]
    a = explore(k.setup, k.actors, k.check, seed=5).failure
    b = explore(k.setup, k.actors, k.check, seed=5).failure
    assert (a.schedule, a.token) == (b.schedule, b.token)


def test_sleep_and_clock_are_virtual_in_workers():
    def sleeper(s):
        t0 = time.monotonic()
        time.sleep(30)
        s.slept = time.monotonic() - t0

    start = time.perf_counter()

    def check(s, _):
        assert s.slept >= 30

    result = explore(lambda: K._state(slept=None, value=0), [sleeper, K._inc], check,
                     schedules=5)
    assert result.failure is None
    assert time.perf_counter() - start < 5


def test_event_barrier_semaphore_programs_pass():
    def setup():
        return K._state(ev=threading.Event(), bar=threading.Barrier(2),
                        sem=threading.BoundedSemaphore(1), n=0, seen=None)

    def a(s):
        s.bar.wait()
        with s.sem:
            s.n += 1
        s.ev.set()

    def b(s):
        s.bar.wait()
        s.ev.wait()
        with s.sem:
            s.n += 1

    def check(s, _):
        assert s.n == 2

    result = explore(setup, [a, b], check, schedules=100)
    assert result.failure is None, result.failure and result.failure.report


def test_a_timed_out_condition_wait_does_not_swallow_another_waiters_notify():
    """Every waiter's box is [False]: removing the timed-out one by equality took the
    first waiter's instead, and the later notify() woke nobody."""
    def setup():
        return K._state(cond=threading.Condition(), woken=False)

    def waits(s):
        with s.cond:
            s.cond.wait()
            s.woken = True

    def times_out(s):
        time.sleep(0.001)
        with s.cond:
            s.cond.wait(0.01)

    def notifies(s):
        time.sleep(1)
        with s.cond:
            s.cond.notify()

    def check(s, _):
        assert s.woken

    result = explore(setup, [waits, times_out, notifies], check, schedules=50,
                     strategy="random", seed=0)
    assert result.failure is None, result.failure and result.failure.report


def test_real_blocking_outside_the_scheduler_does_not_hang():
    def setup():
        r, w = os.pipe()
        return K._state(r=r, w=w, got=None)

    def reader(s):
        s.got = os.read(s.r, 1)

    def writer(s):
        os.write(s.w, b"x")

    def check(s, _):
        os.close(s.r)
        os.close(s.w)
        assert s.got == b"x"

    result = explore(setup, [reader, writer], check, schedules=20)
    assert result.failure is None


def test_condition_created_at_import_does_not_false_fail():
    import bug_kernels

    cond = bug_kernels.MODULE_COND

    def waiter(s):
        with cond:
            while not s.ready:
                cond.wait()

    def notifier(s):
        with cond:
            s.ready = True
            cond.notify_all()

    result = explore(lambda: K._state(ready=False), [waiter, notifier], schedules=30)
    assert result.failure is None


def test_instrumented_third_party_package(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "thirdparty_counter"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        class Counter:
            def __init__(self):
                self.value = 0
            def incr(self):
                self.value += 1
            def check(self):
                if self.value > 1:
                    raise RuntimeError("counter corrupted")
    """))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    import thirdparty_counter

    def setup():
        return thirdparty_counter.Counter()

    def check(c, _):
        assert c.value == 2

    roots = [os.path.dirname(__file__)]
    natively = explore(setup, [lambda c: c.incr()] * 2, check, roots=roots, schedules=30)
    assert natively.failure is None  # runs natively: no switch points inside
    found = explore(setup, [lambda c: c.incr()] * 2, check, roots=roots,
                    instrument=["thirdparty_counter"], seed=0).failure
    assert found is not None and found.kind == "assertion"
    assert "thirdparty_counter" in found.interleaving or "__init__.py" in found.interleaving

    def raiser(c):
        c.incr()
        c.check()

    f = explore(setup, [raiser, raiser], roots=roots,
                instrument=["thirdparty_counter"], seed=0).failure
    assert f.kind == "exception" and "RuntimeError: counter corrupted" in f.traceback
    assert "thirdparty_counter" in f.traceback


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="granularity"):
        explore(K.lost_update.setup, [K._inc], granularity="bytecode")
    with pytest.raises(ValueError, match="strategy"):
        explore(K.lost_update.setup, [K._inc], strategy="chess")
    with pytest.raises(ValueError, match="not an explore replay token"):
        explore(K.lost_update.setup, [K._inc], replay="nonsense")


def test_assert_in_a_worker_and_pytest_fail_in_check_are_assertions():
    def asserting(s):
        s.value += 1
        assert s.value == 1, "second increment"

    f = explore(K.lost_update.setup, [asserting, asserting], seed=0).failure
    assert f.kind == "assertion" and f.worker in (0, 1)

    def check(s, _):
        pytest.fail(f"value {s.value}")

    f = explore(K.lost_update.setup, [K._inc], check).failure
    assert f.kind == "assertion" and "value 1" in f.message


# ---- threads that a worker starts itself join the schedule ------------------------


class _Box:
    def __init__(self):
        self.value = 0


def _bump(box):
    box.value += 1


def _start_two_and_join(box):
    threads = [threading.Thread(target=_bump, args=(box,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _two_bumps(box, returns):
    assert box.value == 2, f"lost update: {box.value}"


def test_threads_started_by_a_worker_are_interleaved_too():
    result = explore(_Box, [_start_two_and_join], _two_bumps, seed=0)
    assert result.failure is not None
    assert "lost update: 1" in result.failure.report
    assert "| worker 2" in result.failure.report  # the second started thread's column


def _locked_bump(state):
    box, lock = state
    with lock:
        box.value += 1


def _start_two_locked(state):
    threads = [threading.Thread(target=_locked_bump, args=(state,)) for _ in range(2)]
    for t in threads:
        t.start()
    assert all(t.ident for t in threads)
    for t in threads:
        t.join()
    assert not any(t.is_alive() for t in threads)


def test_started_threads_fixed_twin_passes_every_schedule():
    result = explore(lambda: (_Box(), threading.Lock()), [_start_two_locked],
                     lambda state, returns: _two_bumps(state[0], returns), seed=0)
    assert result.failure is None, result.failure and result.failure.report
    assert result.schedules_run == 200


def _join_a_thread_that_never_ends(_state):
    t = threading.Thread(target=threading.Event().wait)
    t.start()
    t.join()


def test_join_of_a_thread_that_never_ends_is_a_deadlock():
    result = explore(_Box, [_join_a_thread_that_never_ends], seed=0)
    assert result.failure is not None and result.failure.kind == "deadlock"
    assert "waits in join() for t to finish" in result.failure.report


def test_a_thread_started_outside_the_workers_is_an_ordinary_thread():
    seen = []

    def setup():
        t = threading.Thread(target=seen.append, args=(1,))  # patched class, no worker
        t.start()
        t.join()
        return _Box()

    result = explore(setup, [_bump], schedules=3, seed=0)
    assert result.failure is None and seen == [1, 1, 1]


def _sorts_between_two_writes(state):
    state.n += 1
    sorted(state.data)  # tens of ms in C without a switch point: slow, never blocked
    state.n += 1


@pytest.mark.skipif(problem() is not None, reason=f"dpor: {problem()}")
def test_a_worker_slow_to_reach_its_switch_point_is_never_detached():
    """A step that takes longer than the step timeout because it computes (or because
    the machine is busy) is not 'blocked outside the scheduler': the verdict must not
    depend on the load."""
    data = list(range(200_000))
    random.Random(0).shuffle(data)
    result = explore(lambda: types.SimpleNamespace(n=0, data=data),
                     [_sorts_between_two_writes] * 2, strategy="dpor", step_timeout=0.001)
    assert result.failure is None, result.failure.report
    assert result.stats["detaches"] == 0
    assert result.complete, result.incomplete


def _appends_twice(name):
    def actor(state):
        state.log.append(name)
        state.log.append(name)

    return actor


def test_pct_samples_every_order_of_a_short_schedule():
    """With only a couple of preemption points PCT's change points must not always land
    on all of them: the orders in which a worker goes on, or is switched back to, are
    sampled too (all six orders of two workers with two steps each)."""
    for seed in range(3):
        seen = set()
        explore(lambda: types.SimpleNamespace(log=[]), [_appends_twice("a"), _appends_twice("b")],
                None, seed=seed, observe=lambda s, _r, _p, seen=seen: seen.add("".join(s.log)))
        assert seen == {"aabb", "abab", "abba", "baab", "baba", "bbaa"}, (seed, seen)


async def _round_trip():
    await asyncio.sleep(30)  # virtual: the loop's selector waits on the schedule's clock
    return 1


def _sync_facade(state):
    state.results.append(asyncio.run(_round_trip()))


def test_asyncio_run_in_a_worker_waits_on_the_virtual_clock_and_is_unpatched_after():
    result = explore(lambda: types.SimpleNamespace(results=[]), [_sync_facade] * 2,
                     lambda s, _r: None, schedules=3, seed=0)
    assert result.failure is None, result.failure.report
    assert result.schedules_run == 3
    for cls in {selectors.DefaultSelector, selectors.SelectSelector, selectors.PollSelector}:
        assert not hasattr(vars(cls).get("select"), "__wrapped__"), cls
