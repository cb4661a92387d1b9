"""DPOR: verifies the fixed kernels complete, finds the bugs, claims completeness only
when it may, and sees exactly the outcomes an exhaustive search sees."""
import os
import random
import select
import threading
import types

import bug_kernels as K
import pytest

from pytest_concurrency.explore import engine, explore
from pytest_concurrency.explore.accesses import dependent
from pytest_concurrency.explore.dpor import DPOR, GUARDED, RELEASES
from pytest_concurrency.explore.scheduler import Schedule
from pytest_concurrency.explore.selftest import problem
from pytest_concurrency.explore.strategies import DFS

pytestmark = pytest.mark.skipif(problem() is not None, reason=f"dpor: {problem()}")

# (step timeout, hang timeout) for programs none of whose steps blocks outside the
# scheduler: a busy machine must not make a slow step look blocked (a detached worker
# changes the schedules' choices, and the verdict says it blocked).
PATIENT = (5.0, 10.0)


TWO_WORKERS = [name for name, kernel in K.FIXED.items() if len(kernel.actors) == 2]
THREE_WORKERS = [name for name, kernel in K.FIXED.items() if len(kernel.actors) == 3]


@pytest.mark.parametrize("name", TWO_WORKERS)
def test_fixed_twin_with_two_workers_is_verified_in_at_most_10_schedules(name):
    kernel = K.FIXED[name]
    result = explore(kernel.setup, kernel.actors, kernel.check, strategy="dpor",
                     schedules=50, step_timeout=PATIENT[0])
    assert result.failure is None
    assert result.complete, result.incomplete
    assert result.schedules_run <= 10


@pytest.mark.parametrize("name", THREE_WORKERS)
def test_fixed_twin_with_three_workers_is_verified_in_at_most_800_schedules(name):
    kernel = K.FIXED[name]
    result = explore(kernel.setup, kernel.actors, kernel.check, strategy="dpor",
                     schedules=2000, step_timeout=PATIENT[0])
    assert result.failure is None
    assert result.complete, result.incomplete
    assert result.schedules_run <= 800


@pytest.mark.parametrize("name", list(K.BUGGY))
def test_every_bug_is_found(name):
    kernel = K.BUGGY[name]
    result = explore(kernel.setup, kernel.actors, kernel.check, strategy="dpor",
                     schedules=50)
    assert result.failure is not None
    assert result.failure.schedule < 3  # found in at most 3 schedules
    assert result.failure.kind == K.EXPECTED_KIND[name]
    assert not result.complete and result.incomplete == "stopped at the first failure"


def test_a_dpor_token_replays_its_failure():
    kernel = K.BUGGY["lost_update"]
    found = explore(kernel.setup, kernel.actors, kernel.check, strategy="dpor").failure
    again = explore(kernel.setup, kernel.actors, kernel.check, replay=found.token).failure
    assert again is not None and again.message == found.message
    assert again.strategy == "dpor"


# ---- completeness is claimed only when nothing uncontrolled happened ------------------

def _box():
    return types.SimpleNamespace(value=0, stop=threading.Event())


def _blocks_outside(s):
    select.select([], [], [], 0.2)  # a real wait the scheduler cannot see into
    s.value += 1


def _sleeps(s):
    import time

    time.sleep(0.01)  # virtual time: a timer decides, not the schedule
    s.value += 1


RUNS = [0]


def _differs_between_runs(s):
    RUNS[0] += 1
    if RUNS[0] % 3 == 0:  # state outside setup(): the same schedule runs differently
        s.value += 1
    s.value += 1


def _leaves_a_thread(s):
    threading.Thread(target=s.stop.wait, daemon=True).start()
    s.value += 1


@pytest.mark.parametrize("actor, why", [
    (_blocks_outside, "a worker blocked outside the scheduler"),
    (_sleeps, "virtual time passed for a timed wait or sleep"),
    (_differs_between_runs, "the body did not run the same way twice"),
    (_leaves_a_thread, "threads were left running at the end"),
])
def test_completeness_is_not_claimed_when_something_was_not_controlled(actor, why):
    # Only the worker that blocks for real should be taken as blocked: a slow step of
    # the others (a busy machine) must not be.
    patience = 0.02 if actor is _blocks_outside else PATIENT[0]
    result = explore(_box, [actor, actor], strategy="dpor", schedules=100,
                     step_timeout=patience)
    assert result.failure is None or result.failure.kind == "assertion"
    assert result.exhausted or result.schedules_run == 100
    assert not result.complete
    assert result.incomplete.startswith(why), result.incomplete


# ---- DPOR sees every outcome an exhaustive search sees ---------------------------------

def _state():
    return types.SimpleNamespace(a=0, b=0, d={}, items=[], lock=threading.Lock(),
                                 ready=threading.Event(), cond=threading.Condition())


def _p_inc(s):
    s.a += 1
    return s.a


def _p_read_write(s):
    seen = s.a
    s.b = seen + 1
    return seen


def _p_keys(s):
    s.d["x"] = 1
    return "y" in s.d


def _p_other_key(s):
    s.d["y"] = 2
    return "x" in s.d


def _p_append(s):
    s.items.append(1)
    return len(s.items)


def _p_locked(s):
    with s.lock:
        s.a += 1
        seen = s.b
    return seen


def _p_unlocked_b(s):
    s.b += 1
    with s.lock:
        return s.a


def _p_publish(s):
    s.b = 5
    s.ready.set()


def _p_subscribe(s):
    if s.ready.wait(0):
        return s.b
    return None


def _p_notify(s):
    with s.cond:
        s.a = 1
        s.cond.notify()


def _p_wait_for(s):
    with s.cond:
        s.cond.wait_for(lambda: s.a == 1)
        return s.b


def _p_spawn_join(s):
    box = []
    thread = threading.Thread(target=lambda: box.append(s.a))
    thread.start()
    s.a += 1
    thread.join()
    return box[0]


PROGRAMS = {
    "increments": [_p_inc, _p_inc],
    "read-write": [_p_read_write, _p_inc],
    "dict keys": [_p_keys, _p_other_key],
    "list": [_p_append, _p_append],
    "lock and unlocked": [_p_locked, _p_unlocked_b],
    "event": [_p_publish, _p_subscribe],
    "condition": [_p_wait_for, _p_notify],
}


class _VisibleDFS(DFS):
    """The baseline: every order of the steps that touch something shared (unbounded
    preemptions), the steps that touch nothing run first, as DPOR runs them."""

    def choose(self, enabled, current, step):
        runnable = [w for w in enabled if w.guard is None or w.guard()] or enabled[:1]
        if current is not None and not current.event and current in runnable:
            return current
        for worker in runnable:
            if not worker.event:
                return worker
        return super().choose(runnable, current, step)


def _outcomes(actors, strategy, limit=20000):
    """Every distinct outcome (results, final state, or the failure) of the schedules
    ``strategy`` runs on the same precise switch points as DPOR."""
    explorer = engine.Engine(_state, actors, "access", (os.path.dirname(__file__),), (),
                             *PATIENT, precise=True)
    found, runs = set(), 0
    explorer.start()
    try:
        for index in range(limit):
            strategy.begin(index, len(actors))
            schedule = Schedule(explorer, strategy)
            schedule.run()
            strategy.end(schedule.steps)
            runs += 1
            if not schedule.pruned:
                state = schedule.state
                found.add("deadlock" if schedule.deadlock else (
                    state.a, state.b, tuple(sorted(state.d.items())), tuple(state.items),
                    tuple(worker.ret for worker in schedule.workers[:len(actors)])))
            if strategy.exhausted:
                break
    finally:
        explorer.stop()
    assert strategy.exhausted
    return found, runs


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_dpor_sees_every_outcome_of_the_exhaustive_search(name):
    actors = PROGRAMS[name]
    everything, all_runs = _outcomes(actors, _VisibleDFS(bound=1000))
    seen, dpor_runs = _outcomes(actors, DPOR())
    assert seen == everything
    assert dpor_runs <= all_runs


def test_a_started_thread_is_ordered_after_its_start_and_before_its_join():
    # Exhausting every order of a started thread's steps takes minutes; the outcomes
    # are few: the thread reads a before or after either increment (0, 1 or 2 seen),
    # and the two unguarded increments may lose one (a = 1 or 2).
    seen, runs = _outcomes([_p_spawn_join, _p_inc], DPOR())
    assert {(a, box) for a, _b, _d, _items, (box, _inc) in seen} == {
        (1, 0), (1, 1), (2, 0), (2, 1), (2, 2)}
    assert runs <= 50  # 36 on 3.11


# ---- the linear race finding adds exactly the backtrack points of the pairwise scan -----

class _PairwiseDPOR(DPOR):
    """DPOR as it was first written: every step compared with every earlier step
    that touched one of its objects (quadratic). The reference for the linear one."""

    def _races(self):
        trace = self.trace
        clocks, stamps, history = {}, [], {}
        for j, (worker, event, _kind) in enumerate(trace):
            before = clocks.get(worker)
            if before is None:
                origin = self.origin.get(worker)
                before = dict(stamps[origin]) if origin is not None else {}
            candidates = sorted({i for number, _part, _writes in event
                                 for i in history.get(number, ())}, reverse=True)
            stamp = dict(before)
            stamp[worker] = before.get(worker, 0) + 1
            for i in candidates:
                if dependent(trace[i].event, event):
                    for key, value in stamps[i].items():
                        if value > stamp.get(key, 0):
                            stamp[key] = value
            stamps.append(stamp)
            clocks[worker] = stamp
            self._pairwise_race(j, trace[j], before, candidates, stamps)
            for number, _part, _writes in event:
                history.setdefault(number, []).append(j)

    def _pairwise_race(self, j, step, before, candidates, stamps):
        worker, event = step.worker, step.event
        for i in candidates:
            other, other_event, other_kind = self.trace[i]
            if other == worker or not dependent(other_event, event):
                continue
            if step.kind == GUARDED and other_kind == RELEASES:
                continue
            if stamps[i][other] <= before.get(other, 0):
                continue
            node = self.path[i]
            if worker not in node.enabled:
                waiting = node.pending.get(worker)
                if waiting is not None and dependent(waiting, other_event):
                    continue
            self._pairwise_backtrack(i, j, worker, stamps)
            return

    def _pairwise_backtrack(self, i, j, worker, stamps):
        node = self.path[i]
        if worker in node.enabled:
            candidates = {worker}
        else:
            def after(a, b):
                owner = self.trace[a].worker
                return stamps[a][owner] <= stamps[b].get(owner, 0)

            window = [k for k in range(i + 1, j) if not after(i, k)] + [j]
            initials = {self.trace[k].worker for position, k in enumerate(window)
                        if not any(after(e, k) for e in window[:position])}
            candidates = initials & set(node.enabled) or set(node.enabled)
        if any((node.backtrack | node.done) >> each & 1 for each in candidates):
            return
        node.backtrack |= 1 << min(candidates)


def _choices_of(strategy, setup, actors):
    explorer = engine.Engine(setup, actors, "access", (os.path.dirname(__file__),), (),
                             *PATIENT, precise=True)
    runs = []
    explorer.start()
    try:
        for index in range(5000):
            strategy.begin(index, len(actors))
            schedule = Schedule(explorer, strategy)
            schedule.run()
            strategy.end(schedule.steps)
            runs.append(tuple(schedule.choices))
            if strategy.exhausted:
                break
    finally:
        explorer.stop()
    return runs


SEARCHES = {**{name: (_state, actors) for name, actors in PROGRAMS.items()},
            "spawn and join": (_state, [_p_spawn_join, _p_inc]),
            **{f"fixed {name}": (kernel.setup, kernel.actors) for name, kernel in K.FIXED.items()},
            **{f"buggy {name}": (kernel.setup, kernel.actors) for name, kernel in K.BUGGY.items()}}


def _op_read_a(s):
    return s.a


def _op_write_a(s):
    s.a += 1


def _op_write_b(s):
    s.b = s.a


def _op_key_x(s):
    s.d["x"] = s.d.get("x", 0) + 1


def _op_key_y(s):
    return s.d.get("y")


def _op_whole_dict(s):
    return len(s.d)


def _op_clear(s):
    s.d.clear()


def _op_locked(s):
    with s.lock:
        s.b += 1


def _op_append(s):
    s.items.append(s.b)


OPS = [_op_read_a, _op_write_a, _op_write_b, _op_key_x, _op_key_y, _op_whole_dict,
       _op_clear, _op_locked, _op_append]


def _random_program(seed):
    """Two or three workers, each a few operations on shared attributes, dict keys,
    the whole dict, a list and a lock, drawn with ``seed``."""
    rng = random.Random(seed)
    programs = [[rng.choice(OPS) for _ in range(rng.randint(1, 3))]
                for _ in range(rng.choice((2, 2, 3)))]
    return _state, [_actor_of(ops) for ops in programs]


def _actor_of(ops):
    def actor(s):
        return tuple(op(s) for op in ops)
    return actor


SEARCHES.update({f"random program {seed}": _random_program(seed) for seed in range(12)})


PAIRS = random.Random(0).sample([(a, b) for a in OPS for b in OPS if a is not b], 10)


@pytest.mark.parametrize("actors", PAIRS, ids=lambda pair: "-".join(
    op.__name__.removeprefix("_op_") for op in pair))
def test_dpor_sees_every_outcome_of_the_exhaustive_search_on_more_pairs(actors):
    everything, _ = _outcomes(actors, _VisibleDFS(bound=1000))
    seen, _ = _outcomes(actors, DPOR())
    assert seen == everything


@pytest.mark.parametrize("name", list(SEARCHES))
def test_the_linear_race_finding_runs_the_schedules_of_the_pairwise_one(name):
    setup, actors = SEARCHES[name]
    linear = _choices_of(DPOR(), setup, actors)
    assert linear == _choices_of(_PairwiseDPOR(), setup, actors)


def test_the_searches_compared_are_not_trivial():
    counts = [len(_choices_of(DPOR(), *SEARCHES[name])) for name in SEARCHES]
    assert sum(count > 2 for count in counts) >= 8, counts


# Inside a class the compiler spells ``__count`` as ``_Counter__count`` (name
# mangling): the step's event must name the variable the code really touches.
_Counter__count = 0


class Counter:
    def __init__(self):
        self.__n = 0

    def bump_attribute(self):
        self.__n += 1

    def bump_attribute_inside(self):
        def bump():
            self.__n += 1
        bump()

    def attribute(self):
        return self.__n

    def bump_global(self):
        global __count
        __count += 1

    def closure(self):
        __n = 0

        def bump():
            nonlocal __n
            __n += 1

        def value():
            return __n
        return types.SimpleNamespace(bump=bump, value=value, lock=threading.Lock())


def _private_global():
    global _Counter__count
    _Counter__count = 0
    return types.SimpleNamespace(counter=Counter(), lock=threading.Lock())


def _private_global_is_2(_s, _returns):
    assert _Counter__count == 2, f"lost update: {_Counter__count}"


def _private_attribute_is_2(s, _returns):
    assert s.counter.attribute() == 2, f"lost update: {s.counter.attribute()}"


def _private_cell_is_2(s, _returns):
    assert s.value() == 2, f"lost update: {s.value()}"


def _bump_locked(bump):
    def locked(s):
        with s.lock:
            bump(s)
    return locked


PRIVATE = {
    "global": (_private_global, [lambda s: s.counter.bump_global()] * 2, _private_global_is_2),
    "cell": (lambda: Counter().closure(), [lambda s: s.bump()] * 2, _private_cell_is_2),
    "attribute in a method and in its inner function": (
        _private_global, [lambda s: s.counter.bump_attribute(),
                          lambda s: s.counter.bump_attribute_inside()],
        _private_attribute_is_2),
}


@pytest.mark.parametrize("name", list(PRIVATE))
def test_a_private_name_in_a_class_is_the_variable_the_compiler_mangles_it_to(name):
    setup, actors, check = PRIVATE[name]
    found = explore(setup, actors, check, strategy="dpor", schedules=50)
    assert found.failure is not None and "lost update" in found.failure.message
    fixed = explore(setup, [_bump_locked(bump) for bump in actors], check, strategy="dpor",
                    schedules=50)
    assert fixed.failure is None and fixed.verified, fixed.incomplete
