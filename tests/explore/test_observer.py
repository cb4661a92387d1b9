"""What DPOR cannot see is never taken as nothing: it makes the verdict incomplete
and names it.  Objects reached under several names share one number; every
function gets its own code back, also when the exploration fails."""
import _thread
import fractions
import gc
import types
import weakref

import pytest

from pytest_concurrency.explore import explore, observer, selftest
from pytest_concurrency.explore.accesses import Objects
from pytest_concurrency.explore.selftest import problem

pytestmark = pytest.mark.skipif(problem() is not None, reason=f"dpor: {problem()}")


def _state():
    return types.SimpleNamespace(n=0, items=[])


def _count(s):
    s.n += 1


def _numbers(limit):
    yield from range(limit)


MADE_BEFORE = _numbers(100)  # a generator whose frame runs the code of before the swap


def _next_of_old_generator(s):
    s.items.append(next(MADE_BEFORE))


SENT_TO = _numbers(100)


def _send_to_old_generator(s):
    s.items.append(SENT_TO.send(None))


@pytest.mark.parametrize("actor", [_next_of_old_generator, _send_to_old_generator])
def test_a_generator_made_before_the_exploration_is_a_blind_spot(actor):
    result = explore(_state, [actor, _count], strategy="dpor")
    assert result.failure is None and not result.verified
    assert "a generator of _numbers" in result.incomplete
    assert "made before the exploration" in result.incomplete


def _sort_fractions(s):
    s.items = sorted([fractions.Fraction(2), fractions.Fraction(1)])


def test_a_librarys_python_code_run_from_c_code_is_a_blind_spot():
    result = explore(_state, [_sort_fractions, _count], strategy="dpor")
    assert result.failure is None and not result.verified
    assert "Python code explore did not rewrite, run from C code" in result.incomplete


def _in_a_thread_of_its_own(s):
    done = _thread.allocate_lock()
    done.acquire()

    def other():
        _count(s)
        done.release()

    _thread.start_new_thread(other, ())
    done.acquire()  # a real lock: the worker waits outside the scheduler


def test_code_run_by_a_thread_explore_does_not_control_is_a_blind_spot():
    result = explore(_state, [_in_a_thread_of_its_own, _count], strategy="dpor",
                     schedules=3)
    assert not result.verified
    assert "code run by a thread explore does not control" in result.incomplete


def _failing_setup():
    raise RuntimeError("setup fails")


def test_every_function_has_its_own_code_back_after_an_exploration_that_fails():
    code = _count.__code__
    with pytest.raises(RuntimeError, match="setup fails"):
        explore(_failing_setup, [_count, _count], strategy="dpor")
    assert _count.__code__ is code


def test_every_function_has_its_own_code_back_after_an_exploration():
    code = _count.__code__
    assert explore(_state, [_count, _count], strategy="dpor").schedules_run
    assert _count.__code__ is code


def test_a_start_that_fails_half_way_puts_everything_back(monkeypatch):
    def no_tool_id(self):
        raise RuntimeError("explore: every sys.monitoring tool id is in use")

    monkeypatch.setattr(observer.Guard, "start", no_tool_id)
    code, collecting = _count.__code__, gc.isenabled()
    with pytest.raises(RuntimeError, match="tool id is in use"):
        explore(_state, [_count, _count], strategy="dpor")
    assert _count.__code__ is code
    assert gc.isenabled() == collecting
    assert observer.hooks.STATE.controller is None and not observer.audit.SWITCH.on


def test_an_interpreter_dpor_is_not_tested_on_is_never_verified(monkeypatch):
    monkeypatch.setattr(observer, "TESTED", ())
    result = explore(_state, [_count], strategy="dpor")
    assert not result.verified
    assert "which DPOR is not tested on" in result.incomplete


def test_an_interpreter_whose_rewritten_code_misbehaves_cannot_verify(monkeypatch):
    monkeypatch.setattr(selftest, "_run", lambda rewritten, names: (rewritten,))
    selftest.problem.cache_clear()
    try:
        with pytest.raises(ValueError, match="strategy='dpor' cannot verify here: its "
                                             "rewritten code computes"):
            explore(_state, [_count], strategy="dpor")
    finally:
        selftest.problem.cache_clear()


class _Plain:
    pass


def test_aliases_share_one_number():
    objects = Objects()
    obj, data, buffer = _Plain(), {"a": 1}, bytearray(2)
    assert objects(obj) == objects(vars(obj)) == objects(obj.__dict__)
    assert objects(data) == objects(data.keys()) == objects(data.values()) == \
        objects(data.items())
    assert objects(buffer) == objects(memoryview(buffer)) == objects(memoryview(buffer)[1:])
    assert objects(types) == objects(vars(types))
    assert objects(_Plain) == objects(_Plain.__dict__)
    assert objects(weakref.proxy(obj)) == objects(obj)
    assert len({objects(obj), objects(data), objects(buffer), objects(types),
                objects(_Plain)}) == 5


def test_an_object_that_died_gives_its_address_a_new_number():
    objects = Objects()
    first = _Plain()
    number, address = objects(first), id(first)
    del first
    gc.collect()
    later = [_Plain() for _ in range(50)]
    reused = [each for each in later if id(each) == address]
    assert all(objects(each) != number for each in reused)
    assert objects(later[0]) not in (number,)


def test_a_finalizer_runs_when_it_would_without_explore():
    freed = []

    class Resource:
        def __del__(self):
            freed.append(True)

    objects = Objects()
    resource = Resource()
    objects(resource)
    del resource
    assert freed == [True]
