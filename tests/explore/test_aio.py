"""explore() with coroutine actors: asyncio tasks on one event loop, switched at the
awaits that suspend, on a virtual clock; deadlocks at once; DPOR on conservative
events (a task's step depends on every other step)."""
import asyncio
import collections
import contextlib
import functools
import re
import sys
import threading
import time
import types

import aio_kernels as K
import pytest

from pytest_concurrency.explore import ReplayDiverged, decode_token, explore

SEEDS = range(10)


def _state(**kw):
    return types.SimpleNamespace(**kw)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(K.BUGGY))
def test_default_settings_find_every_async_bug_within_a_dozen_schedules(name, seed):
    # the actors' start order is explored too (either may start, and start late): PCT
    # needs a change point at the right await, as for threads; 10 at most over seeds 0-29
    k = K.BUGGY[name]
    result = explore(k.setup, k.actors, k.check, seed=seed)
    assert result.failure is not None, f"{name} not found with seed {seed}"
    assert result.failure.kind == K.EXPECTED_KIND[name], result.failure.report
    assert result.failure.granularity == "await"
    assert result.schedules_run <= 12, (name, seed, result.schedules_run)


@pytest.mark.parametrize("name", list(K.FIXED))
def test_fixed_twin_passes_every_schedule(name):
    k = K.FIXED[name]
    result = explore(k.setup, k.actors, k.check, seed=3)
    assert result.failure is None, result.failure.report
    assert result.schedules_run == 200


@pytest.mark.parametrize("name", list(K.FIXED))
def test_fixed_twin_is_verified_complete_by_dpor(name):
    k = K.FIXED[name]
    result = explore(k.setup, k.actors, k.check, strategy="dpor", schedules=20000)
    assert result.failure is None, result.failure.report
    assert result.complete, result.incomplete
    assert result.distinct == result.schedules_run - result.stats.get("redundant", 0)


@pytest.mark.parametrize("name", list(K.BUGGY))
def test_dpor_finds_every_async_bug(name):
    k = K.BUGGY[name]
    result = explore(k.setup, k.actors, k.check, strategy="dpor", schedules=5000)
    assert result.failure is not None
    assert not result.complete


# ---- programs whose every outcome DPOR must reach (checked against exhaustive DFS) ----

def _programs_state():
    return _state(log=[], lock=asyncio.Lock(), event=asyncio.Event(),
                  cond=asyncio.Condition(), queue=asyncio.Queue())


async def _locked(s):
    async with s.lock:
        s.log.append("a")
        await asyncio.sleep(0)
        s.log.append("b")


async def _waits_for_event(s):
    s.log.append("w")
    await asyncio.sleep(0)  # a round trip first: the set may come before the wait or after
    await s.event.wait()
    s.log.append("woken")


async def _sets_event(s):
    await asyncio.sleep(0)
    s.log.append("set")
    s.event.set()
    await asyncio.sleep(0)
    s.log.append("after")


async def _times_out(s):
    try:
        async with asyncio.timeout(0.5):
            await s.event.wait()
        s.log.append("in time")
    except TimeoutError:
        s.log.append("timed out")


async def _sets_after_sleep(s):
    await asyncio.sleep(0.5)
    s.log.append("slept")
    s.event.set()


async def _cancels_child(s):
    async def child():
        try:
            s.log.append("child")
            await asyncio.sleep(0.5)
            s.log.append("child done")
        finally:
            s.log.append("child finally")

    task = asyncio.create_task(child())
    await asyncio.sleep(0)
    task.cancel()
    s.log.append("cancelled")


async def _gathers(s):
    async def one(n):
        s.log.append(f"start {n}")
        await asyncio.sleep(0)
        s.log.append(f"end {n}")
        return n

    s.log.append(str(await asyncio.gather(one(1), one(2))))


async def _puts(s):
    await s.queue.put(1)
    await asyncio.sleep(0)
    await s.queue.put(2)
    s.log.append("put both")


async def _gets(s):
    # the sleep stands for time, as the putter's does: either may resume first (without
    # it only one order is asyncio's on 3.12+, where wait_for makes no task of its own)
    await asyncio.sleep(0)
    s.log.append(f"got {await asyncio.wait_for(s.queue.get(), 1.0)}")


PROGRAMS = {
    "lock": [_locked, _locked],
    "event": [_waits_for_event, _sets_event],
    "timeout": [_times_out, _sets_after_sleep],
    "cancel": [_cancels_child, _locked],
    "gather": [_gathers, _sets_event],
    "queue": [_puts, _gets],
    "mixed": [_locked, _sets_after_sleep, _times_out],
}


def _outcomes(actors, strategy, **kwargs):
    seen = set()
    result = explore(_programs_state, actors, None, strategy=strategy, schedules=100_000,
                     seed=0, observe=lambda s, _returns, _token: seen.add(tuple(s.log)),
                     **kwargs)
    assert result.failure is None, result.failure.report
    assert result.exhausted
    return seen, result


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_dpor_reaches_every_outcome_that_exhaustive_search_does(name):
    every, _ = _outcomes(PROGRAMS[name], "dfs", preemption_bound=10_000)
    found, result = _outcomes(PROGRAMS[name], "dpor")
    assert found == every
    assert result.complete
    assert len(every) > 1 or name == "lock"


def test_timers_due_at_one_instant_fire_in_both_orders():
    seen, result = _outcomes(PROGRAMS["timeout"], "dpor")
    # the timeout (0.5 s) and the sleep that sets the event (0.5 s) end together:
    # whichever fires first decides
    assert any("in time" in log for log in seen)
    assert any("timed out" in log for log in seen)
    assert result.stats["virtual_time"] == 0.5


# ---- virtual time ------------------------------------------------------------------

async def _sleeps_half_a_minute(s):
    await asyncio.sleep(30)
    s.log.append(asyncio.get_running_loop().time())


def test_a_thirty_second_sleep_takes_no_time_on_the_virtual_clock():
    result = explore(lambda: _state(log=[]), [_sleeps_half_a_minute] * 2,
                     lambda s, _r: None, schedules=50, seed=0)
    assert result.failure is None
    assert result.schedules_run == 50
    assert result.stats["virtual_time"] == 30.0
    # one jump per schedule: both sleeps end at the same instant
    assert result.stats["time_advances"] == 50


async def _polls(s):
    while not s.flag:  # a poll loop: without fairness the poller would spin for ever
        await asyncio.sleep(0)
    s.log.append("saw it")


async def _sets_flag(s):
    await asyncio.sleep(0)
    s.flag = True


def test_a_polling_task_does_not_starve_the_others():
    result = explore(lambda: _state(flag=False, log=[]), [_polls, _sets_flag],
                     lambda s, _r: None, schedules=30, seed=1)
    assert result.failure is None
    dpor = explore(lambda: _state(flag=False, log=[]), [_polls, _sets_flag], None,
                   strategy="dpor", schedules=30)
    assert not dpor.complete  # the spinning was cut short: not every interleaving ran


# ---- deadlocks, at once -------------------------------------------------------------

def test_abba_between_asyncio_locks_is_a_cycle_with_holders_and_lines():
    k = K.BUGGY["abba_deadlock"]
    f = explore(k.setup, k.actors, seed=0).failure
    assert f.kind == "deadlock"
    assert "wait-for cycle worker 0 -> worker 1 -> worker 0" in f.message
    assert "worker 0 holds state.accounts (aio_kernels.py:" in f.message
    assert "and waits for state.audit (aio_kernels.py:" in f.message
    assert "held by worker 1" in f.message
    assert "worker 1 holds state.audit" in f.message


def test_an_event_nobody_sets_and_an_empty_queue_are_named():
    f = explore(K.BUGGY["lost_event"].setup, K.BUGGY["lost_event"].actors, seed=0).failure
    assert "waits for state.event to be set, which nobody will do (aio_kernels.py:" \
        in f.message

    async def get(s):
        await s.queue.get()

    async def idle(s):
        await asyncio.sleep(0)

    f = explore(lambda: _state(queue=asyncio.Queue()), [get, idle], seed=0).failure
    assert "waits in get() for an item on state.queue that nobody will put" in f.message


def test_tasks_awaiting_each_other_are_a_cycle():
    async def first(s):
        s.first = asyncio.current_task()
        await asyncio.sleep(0)
        await s.second

    async def second(s):
        s.second = asyncio.current_task()
        await asyncio.sleep(0)
        await s.first

    f = explore(lambda: _state(), [first, second], seed=0).failure
    assert "wait-for cycle worker 0 -> worker 1 -> worker 0" in f.message
    assert "worker 0 awaits worker 1, which never finishes" in f.message


def test_a_deadlock_is_reported_without_waiting_for_a_timeout():
    k = K.BUGGY["abba_deadlock"]
    result = explore(k.setup, k.actors, seed=0, hang_timeout=600)
    assert result.failure.kind == "deadlock"  # a hang_timeout wait would have taken 10 min


def test_lock_order_inversion_is_seen_even_when_no_schedule_deadlocks():
    async def post(s):
        async with s.entries:
            async with s.audit:
                pass
        s.done.set()

    async def review(s):
        await s.done.wait()
        async with s.audit:
            async with s.entries:
                pass

    def ledger():
        return _state(entries=asyncio.Lock(), audit=asyncio.Lock(), done=asyncio.Event())

    f = explore(ledger, [post, review], schedules=5, seed=0).failure
    assert f is not None and "lock-order inversion" in f.message
    assert "state.entries" in f.report and "state.audit" in f.report


# ---- tasks that start tasks ------------------------------------------------------------

async def _increments_in_a_task_group(s):
    async def increment():
        value = s.value
        await asyncio.sleep(0)
        s.value = value + 1

    async with asyncio.TaskGroup() as group:
        group.create_task(increment())
        group.create_task(increment())


def test_tasks_started_in_a_task_group_are_interleaved_too():
    def check(s, _returns):
        assert s.value == 2, "lost update"

    f = explore(lambda: _state(value=0), [_increments_in_a_task_group], check, seed=0).failure
    assert f is not None and "lost update" in f.message
    assert "task 1" in f.report  # a lane per task, the started ones named as such


def test_tasks_left_running_are_cancelled_and_their_way_out_explored():
    async def starts_background(s):
        async def forever():
            try:
                while True:
                    await asyncio.sleep(1)
            finally:
                s.log.append("cancelled")

        asyncio.create_task(forever())
        await asyncio.sleep(0)

    seen = collections.Counter()
    result = explore(lambda: _state(log=[]), [starts_background], None, strategy="dpor",
                     observe=lambda s, _r, _t: seen.update([tuple(s.log)]))
    assert result.failure is None and result.complete
    assert result.stats["left_running"] == 0
    # the task started before the actor's sleep(0) returned (asyncio's FIFO order: a
    # task's first step is queued before the actor's wake-up), so it is always in its
    # try block when cancelled
    assert set(seen) == {("cancelled",)}


# ---- outside the schedule ---------------------------------------------------------------

async def _in_a_thread(s):
    await asyncio.to_thread(time.sleep, 0)
    s.value += 1


def test_to_thread_works_and_makes_the_verdict_say_what_was_not_controlled():
    def check(s, _returns):
        assert s.value == 2

    result = explore(lambda: _state(value=0), [_in_a_thread, _in_a_thread], check,
                     strategy="dpor", schedules=50)
    assert result.failure is None
    assert not result.complete
    assert result.incomplete.startswith("a thread outside the schedule, at test_aio.py:")


def test_a_thread_that_never_calls_back_is_a_hang_not_a_hung_session():
    never = threading.Event()

    async def waits_for_thread(s):
        await asyncio.to_thread(never.wait)

    try:
        f = explore(lambda: _state(), [waits_for_thread], seed=0, schedules=3,
                    hang_timeout=0.5).failure
    finally:
        never.set()
    assert f.kind == "deadlock"
    assert f.message.startswith("hang: no task can run, and no thread outside the schedule "
                                "called back")


def test_a_blocking_call_in_a_coroutine_is_a_hang_with_its_line():
    async def holds_a_thread_lock(s):
        with s.lock:  # a threading.Lock across an await: the other task blocks the loop
            await asyncio.sleep(0)

    lock = threading.Lock()
    try:
        f = explore(lambda: _state(lock=lock), [holds_a_thread_lock] * 2, seed=0,
                    hang_timeout=0.5).failure
    finally:
        with contextlib.suppress(RuntimeError):
            lock.release()
    assert f.kind == "deadlock"
    assert "has not given the event loop back for 0.5 s" in f.message
    assert "with s.lock:" in f.message


def test_call_soon_threadsafe_from_another_thread_is_not_controlled():
    async def from_thread(s):
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        thread = threading.Thread(target=loop.call_soon_threadsafe, args=(done.set,))
        thread.start()
        await done.wait()
        thread.join()

    result = explore(lambda: _state(), [from_thread], None, strategy="dpor", schedules=5)
    assert result.failure is None
    assert not result.complete
    assert "a thread outside the schedule called the loop" in result.incomplete


def test_network_io_is_refused_with_a_sentence():
    async def connects(s):
        await asyncio.open_connection("localhost", 1)

    f = explore(lambda: _state(), [connects], seed=0).failure
    assert "explore's event loop runs tasks, timers and callbacks on a virtual clock, " \
        "not network I/O" in f.message


# ---- replay, and what explore() refuses ---------------------------------------------------

def test_a_token_replays_the_failing_schedule():
    k = K.BUGGY["half_update"]
    first = explore(k.setup, k.actors, k.check, seed=4).failure
    data = decode_token(first.token)
    assert data["granularity"] == "await" and data["workers"] == 2
    again = explore(k.setup, k.actors, k.check, replay=first.token).failure
    assert again.message == first.message
    assert again.steps == first.steps


def test_a_token_of_other_code_diverges():
    k = K.BUGGY["lost_update"]
    token = explore(k.setup, k.actors, k.check, seed=0).failure.token
    other = K.BUGGY["half_update"]
    with pytest.raises(ReplayDiverged, match="replay diverged"):
        explore(other.setup, other.actors, other.check, replay=token)


def test_threads_and_tasks_cannot_be_mixed():
    def plain(s):
        pass

    with pytest.raises(ValueError, match="actor 0 is not a coroutine function and actor 1 is"):
        explore(lambda: None, [plain, _sets_flag])


def test_a_call_later_callback_runs_on_the_virtual_clock_in_either_order():
    async def schedules_a_callback(s):
        loop = asyncio.get_running_loop()
        loop.call_later(2.0, s.log.append, "callback")
        await asyncio.sleep(2.0)
        s.log.append("task")

    seen = set()
    result = explore(lambda: _state(log=[]), [schedules_a_callback], None, strategy="dpor",
                     observe=lambda s, _r, _t: seen.add(tuple(s.log)))
    assert result.complete
    assert seen == {("callback", "task"), ("task", "callback")}  # both due at 2.0
    assert result.stats["virtual_time"] == 2.0


def test_an_interpreter_whose_tasks_it_cannot_follow_gets_a_sentence(monkeypatch):
    from pytest_concurrency.explore import aio

    monkeypatch.setattr(aio, "_PROBLEM", [])
    monkeypatch.delattr(asyncio.events, "_set_running_loop")
    with pytest.raises(ValueError, match="explore cannot run asyncio tasks on this Python: "
                                         "asyncio.events._set_running_loop is gone"):
        explore(lambda: None, [_sets_flag])


def test_a_task_that_outlives_its_cancellation_makes_the_search_incomplete():
    async def starts_stubborn(s):
        async def stubborn():
            while True:
                try:
                    await s.never.wait()
                except asyncio.CancelledError:
                    continue  # swallows every cancellation

        asyncio.create_task(stubborn())
        await asyncio.sleep(0)

    result = explore(lambda: _state(never=asyncio.Event()), [starts_stubborn], None,
                     strategy="dpor")
    assert result.failure is None
    assert not result.complete
    assert result.incomplete.startswith("task 1 was still waiting after the actors finished "
                                        "and it was cancelled, at test_aio.py:")


def test_a_thread_that_never_calls_the_loop_still_makes_the_search_incomplete():
    def bump(s):  # races with the tasks on s.value, without a word to the loop
        s.value += 1

    async def starts_a_thread(s):
        thread = threading.Thread(target=bump, args=(s,))
        thread.start()
        thread.join()

    result = explore(lambda: _state(value=0), [starts_a_thread], None, strategy="dpor")
    assert result.failure is None
    assert not result.complete
    line = bump.__code__.co_firstlineno
    assert result.incomplete == f"a thread outside the schedule, at test_aio.py:{line}"


def test_the_time_limit_stops_a_search_between_two_steps():
    async def forever(s):
        while True:
            await asyncio.sleep(1)

    result = explore(lambda: _state(), [forever, forever], None, schedules=5, seed=0,
                     time_limit=0.2)
    assert result.out_of_time
    assert result.failure is not None and result.failure.kind == "timeout"
    assert "worker 0 still running after" in result.failure.report
    assert "at test_aio.py:" in result.failure.report



def test_a_schedule_cut_by_the_time_limit_keeps_its_reason_while_its_finally_blocks_run():
    # the time limit ends the schedule between two steps; closing it runs the tasks'
    # finally blocks, one of which computes past the limit: the verdict still names where
    # the workers waited, not the finally block that the watchdog then stops
    async def forever(s):
        try:
            while True:
                await asyncio.sleep(1)
        finally:
            start = time.process_time()
            while time.process_time() - start < 0.5:
                pass

    line = forever.__code__.co_firstlineno + 3
    result = explore(lambda: _state(), [forever, forever], None, schedules=5, seed=0,
                     time_limit=0.2)
    assert result.out_of_time
    assert result.failure is not None and result.failure.kind == "timeout"
    assert "worker 0 still running after" in result.failure.report
    assert f"(waiting at test_aio.py:{line})" in result.failure.report
    assert "finally block" not in result.failure.report

# ---- the clock the code reads ------------------------------------------------------------

async def _reads_the_clocks(s):
    loop = asyncio.get_running_loop()
    before = (loop.time(), time.monotonic(), time.perf_counter(), time.time())
    await asyncio.sleep(10)
    after = (loop.time(), time.monotonic(), time.perf_counter(), time.time())
    s.log.append((before, after))


def test_the_time_functions_on_the_loop_read_the_loop_s_virtual_clock():
    seen = []
    result = explore(lambda: _state(log=seen), [_reads_the_clocks], None, schedules=1)
    assert result.failure is None
    [(before, after)] = seen
    assert before[0] == before[1]  # time.monotonic() is the loop's time(), as in asyncio
    assert [a - b for a, b in zip(after, before, strict=True)] == \
        [pytest.approx(10, abs=1e-6)] * 4
    assert time.monotonic() < before[1] + 10  # no real time passed for it


class _TTLCache:
    """Reloads its value once it is older than 5 s, by time.monotonic()."""

    def __init__(self):
        self.value, self.at, self.loads, self.lock = None, 0.0, 0, asyncio.Lock()

    async def get(self):
        if self.value is None or time.monotonic() - self.at > 5:
            await asyncio.sleep(0.1)  # the load
            self.loads += 1
            self.value, self.at = self.loads, time.monotonic()
        return self.value

    async def get_locked(self):
        async with self.lock:
            return await self.get()


async def _ttl_user(c):
    await c.get()
    await asyncio.sleep(10)  # the value expires
    return await c.get()


async def _ttl_user_locked(c):
    await c.get_locked()
    await asyncio.sleep(10)
    return await c.get_locked()


def _loaded_twice(c, _returns):
    assert c.loads == 2, f"loaded {c.loads} times"


def test_a_ttl_measured_with_time_monotonic_expires_on_the_virtual_clock():
    bug = explore(_TTLCache, [_ttl_user, _ttl_user], _loaded_twice, strategy="dpor")
    assert bug.failure is not None and "loaded 4 times" in bug.failure.message
    fixed = explore(_TTLCache, [_ttl_user_locked, _ttl_user_locked], _loaded_twice,
                    strategy="dpor")
    assert fixed.failure is None, fixed.failure.report
    assert fixed.complete, fixed.incomplete


async def _blocks_the_loop(s):
    s.log.append(("blocker", time.monotonic()))
    time.sleep(8)  # a blocking call: no task runs meanwhile, the clock moves on
    s.log.append(("blocker", time.monotonic()))


async def _other(s):
    s.log.append(("other", time.monotonic()))


def test_time_sleep_in_a_coroutine_blocks_the_loop_for_virtual_seconds():
    seen = []
    result = explore(lambda: _state(log=[]), [_blocks_the_loop, _other],
                     lambda s, _r: seen.append(list(s.log)), schedules=5)
    assert result.failure is None, result.failure.report
    assert {log[0][0] for log in seen} == {"blocker", "other"}  # either may start first
    for log in seen:
        whos = [who for who, _ in log]
        first = whos.index("blocker")
        assert whos[first:first + 2] == ["blocker", "blocker"], whos  # nothing in between
        assert log[first + 1][1] - log[first][1] == 8
        other = log[whos.index("other")][1]
        assert other == (log[first][1] if whos[0] == "other" else log[first + 1][1])


# ---- a step that never gives the loop back ------------------------------------------------

async def _spins(s):
    await asyncio.sleep(0)
    while not s.go:  # spins on the CPU, never awaiting: the loop is blocked for good
        pass


async def _returns(s):
    return None


def _loop_threads():
    """The loop threads alive, once those that were stopped have ended (at once, unless
    the machine is busy)."""
    threads = [t for t in threading.enumerate() if t.name == "explore-worker-loop"]
    for thread in threads:
        thread.join(0.1 if thread.is_alive() and not _stopping(thread) else 30)
    return [t for t in threads if t.is_alive()]


def _stopping(thread):
    frame = sys._current_frames().get(thread.ident)
    return frame is not None and "_spins" in {f.f_code.co_name for f in _stack(frame)}


def _stack(frame):
    while frame is not None:
        yield frame
        frame = frame.f_back


def test_a_coroutine_spinning_on_the_cpu_is_a_worker_that_never_finishes_and_is_stopped():
    before = _loop_threads()
    f = explore(lambda: _state(go=False), [_spins, _returns], seed=0, hang_timeout=0.5).failure
    assert f is not None and f.kind == "spin", f and f.report
    assert "deadlock" not in f.report
    assert re.search(r"worker 0 still running after [\d.]+ s \(blocking the loop at "
                     r"test_aio\.py:\d+: [\d.]+ s of CPU in one step", f.message), f.message
    assert not re.search(r"\b0\.0 s of CPU", f.message)
    assert f.involved == (0,)
    # stopped where it spun, not left burning a CPU (a thread of an earlier test may end
    # meanwhile: only a new one left alive would be ours)
    assert set(_loop_threads()) <= set(before)


def test_the_time_limit_stops_a_step_that_never_gives_the_loop_back():
    before = _loop_threads()
    result = explore(lambda: _state(go=False), [_spins, _returns], seed=0, time_limit=0.5)
    f = result.failure
    assert result.out_of_time and f is not None and f.kind == "timeout", f and f.report
    assert "worker 0 still running after" in f.report
    assert "(blocking the loop at test_aio.py:" in f.report
    assert set(_loop_threads()) <= set(before)


async def _logs_around_a_sleep(s, name):
    s.log.append(name)
    await asyncio.sleep(0)
    s.log.append(name)


def test_pct_samples_every_order_of_two_starts_and_wake_ups():
    """Either actor may start first, and start after the other's sleep(0) wake-up;
    the two wake-ups may run in either order: PCT must sample all six orders (its
    change points must not always land on the same steps)."""
    actors = [functools.partial(_logs_around_a_sleep, name=name) for name in "ab"]
    for seed in range(3):
        seen = set()
        explore(lambda: _state(log=[]), actors, None, seed=seed,
                observe=lambda s, _r, _p, seen=seen: seen.add("".join(s.log)))
        assert seen == {"abab", "abba", "aabb", "baba", "baab", "bbaa"}, (seed, seen)


# ---- the actors' start order ------------------------------------------------------------

@pytest.mark.parametrize("strategy", ["pct", "random", "dfs", "dpor"])
@pytest.mark.parametrize("name", ["missed_start", "closed_outbox"])
def test_a_bug_only_a_late_listed_actor_starting_first_shows_is_found(name, strategy):
    """The actors are independent clients: the second may start first (and the bug
    needs it to). Every strategy samples that order; DPOR does not call it verified."""
    k = K.BUGGY[name]
    result = explore(k.setup, k.actors, k.check, strategy=strategy, seed=0, schedules=50)
    assert result.failure is not None, f"{name} not found by {strategy}"
    assert result.failure.kind == K.EXPECTED_KIND[name], result.failure.report
    assert not result.complete
    fixed = explore(k.setup, K.FIXED[name + "_fixed"].actors, k.check, strategy=strategy,
                    seed=0, schedules=50)
    assert fixed.failure is None, fixed.failure.report


def test_dpor_verifies_the_start_order_twins_in_a_few_schedules():
    # measured on 3.11: 2 (missed_start_fixed) and 4 (closed_outbox_fixed) schedules
    for name, most in (("missed_start_fixed", 3), ("closed_outbox_fixed", 6)):
        k = K.FIXED[name]
        result = explore(k.setup, k.actors, k.check, strategy="dpor", schedules=100)
        assert result.failure is None, result.failure.report
        assert result.complete, result.incomplete
        assert 2 <= result.schedules_run <= most, (name, result.schedules_run)


async def _arrives(s, name):
    s.log.append(name)


@pytest.mark.parametrize("strategy", ["pct", "random", "dfs", "dpor"])
def test_any_actor_may_start_first_and_dpor_counts_both_orders(strategy):
    actors = [functools.partial(_arrives, name=name) for name in "abc"]
    seen = set()
    result = explore(lambda: _state(log=[]), actors, None, strategy=strategy, seed=0,
                     schedules=60, observe=lambda s, _r, _p: seen.add("".join(s.log)))
    assert seen == {"abc", "acb", "bac", "bca", "cab", "cba"}, seen
    if strategy == "dpor":
        assert result.complete and result.schedules_run == 6, result.schedules_run


async def _polls_for_the_other(s):
    while not s.ready:  # polling: the other may not have started yet
        await asyncio.sleep(0)


async def _makes_ready(s):
    s.ready = True


def test_a_start_delayed_too_long_runs_and_the_verdict_says_so():
    result = explore(lambda: _state(ready=False), [_polls_for_the_other, _makes_ready], None,
                     strategy="dpor", schedules=500)
    assert result.failure is None, result.failure.report
    assert not result.complete
    assert "worker 1's start was delayed past 64 steps" in result.incomplete, result.incomplete
