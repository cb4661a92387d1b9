"""Classic concurrency bug kernels, each with a fixed twin, as explore() arguments."""
import queue
import threading
import types

MODULE_LOCK = threading.Lock()  # created at import, before any explore() patches
MODULE_COND = threading.Condition()


def helper(v):
    return v + 1


class Kernel(types.SimpleNamespace):
    """setup, actors, check (check may be None)."""


def _state(**kw):
    return types.SimpleNamespace(**kw)


# 1. lost update: s.value += 1
def _inc(s):
    s.value += 1


def _inc_locked(s):
    with s.lock:
        s.value += 1


def _inc_module_lock(s):
    with MODULE_LOCK:
        s.value += 1


def _value_is_2(s, _returns):
    assert s.value == 2, f"lost update: value is {s.value}, expected 2"


lost_update = Kernel(setup=lambda: _state(value=0), actors=[_inc, _inc], check=_value_is_2)
lost_update_fixed = Kernel(setup=lambda: _state(value=0, lock=threading.Lock()),
                           actors=[_inc_locked, _inc_locked], check=_value_is_2)
lost_update_module_lock = Kernel(setup=lambda: _state(value=0),
                                 actors=[_inc_module_lock, _inc_module_lock],
                                 check=_value_is_2)


# 2. lost update with a call in the window
def _inc_call(s):
    v = s.value
    v = helper(v)
    s.value = v


def _inc_call_locked(s):
    with s.lock:
        v = s.value
        v = helper(v)
        s.value = v


lost_update_call = Kernel(setup=lambda: _state(value=0), actors=[_inc_call, _inc_call],
                          check=_value_is_2)
lost_update_call_fixed = Kernel(setup=lambda: _state(value=0, lock=threading.RLock()),
                                actors=[_inc_call_locked, _inc_call_locked],
                                check=_value_is_2)


# 3. check-then-act on a dict
def _get_or_create(s):
    if "k" not in s.cache:
        s.cache["k"] = object()
    return s.cache["k"]


def _get_or_create_locked(s):
    with s.lock:
        if "k" not in s.cache:
            s.cache["k"] = object()
        return s.cache["k"]


def _same_object(_s, returns):
    assert returns[0] is returns[1], "two different objects were created for one key"


check_then_act = Kernel(setup=lambda: _state(cache={}), actors=[_get_or_create] * 2,
                        check=_same_object)
check_then_act_fixed = Kernel(setup=lambda: _state(cache={}, lock=threading.Lock()),
                              actors=[_get_or_create_locked] * 2, check=_same_object)


# 4. broken lazy init (double-checked, without the lock)
class Expensive:
    def __init__(self, s):
        s.created += 1


def _lazy(s):
    if s.instance is None:
        if s.instance is None:
            s.instance = Expensive(s)
    return s.instance


def _lazy_locked(s):
    if s.instance is None:
        with s.lock:
            if s.instance is None:
                s.instance = Expensive(s)
    return s.instance


def _created_once(s, returns):
    assert s.created == 1, f"lazy init ran {s.created} times"
    assert returns[0] is returns[1]


lazy_init = Kernel(setup=lambda: _state(instance=None, created=0), actors=[_lazy] * 2,
                   check=_created_once)
lazy_init_fixed = Kernel(setup=lambda: _state(instance=None, created=0, lock=threading.Lock()),
                         actors=[_lazy_locked] * 2, check=_created_once)


# 5. ABBA deadlock
def _ab(s):
    with s.a:
        with s.b:
            s.n += 1


def _ba(s):
    with s.b:
        with s.a:
            s.n += 1


def _locks():
    return _state(a=threading.Lock(), b=threading.Lock(), n=0)


abba = Kernel(setup=_locks, actors=[_ab, _ba], check=None)
abba_fixed = Kernel(setup=_locks, actors=[_ab, _ab], check=None)


# 6. missed notify: wait without a predicate loop, so a notify before the wait is lost
def _waiter(s):
    with s.cond:
        s.cond.wait()
    return s.ready


def _waiter_loop(s):
    with s.cond:
        while not s.ready:
            s.cond.wait()
    return s.ready


def _notifier(s):
    with s.cond:
        s.ready = True
        s.cond.notify()


def _cond():
    return _state(cond=threading.Condition(), ready=False)


missed_notify = Kernel(setup=_cond, actors=[_waiter, _notifier], check=None)
missed_notify_fixed = Kernel(setup=_cond, actors=[_waiter_loop, _notifier], check=None)


# 7. publish before init: the flag is set before the data is written
def _publish_early(s):
    s.ready = True
    s.data = 42


def _publish(s):
    s.data = 42
    s.ready = True


def _read(s):
    if s.ready:
        return s.data
    return "not ready"


def _saw_data(_s, returns):
    assert returns[1] in (42, "not ready"), f"reader saw ready but data={returns[1]!r}"


publish = Kernel(setup=lambda: _state(ready=False, data=None),
                 actors=[_publish_early, _read], check=_saw_data)
publish_fixed = Kernel(setup=lambda: _state(ready=False, data=None),
                       actors=[_publish, _read], check=_saw_data)


# 8. dict mutated during iteration (RuntimeError in the iterating worker)
def _sum_values(s):
    total = 0
    for key in s.d:
        total += s.d[key]
    return total


def _sum_values_locked(s):
    with s.lock:
        return _sum_values(s)


def _add_key(s):
    s.d["new"] = 1


def _add_key_locked(s):
    with s.lock:
        s.d["new"] = 1


dict_iteration = Kernel(setup=lambda: _state(d={"a": 1, "b": 2}),
                        actors=[_sum_values, _add_key], check=None)
dict_iteration_fixed = Kernel(setup=lambda: _state(d={"a": 1, "b": 2}, lock=threading.Lock()),
                              actors=[_sum_values_locked, _add_key_locked], check=None)


# 9. queue consumer: checks empty(), then blocks in get()
def _consume(s):
    if not s.q.empty():
        return s.q.get()
    return None


def _consume_nowait(s):
    try:
        return s.q.get_nowait()
    except queue.Empty:
        return None


def _one_item():
    q = queue.Queue()
    q.put("item")
    return _state(q=q)


queue_consumer = Kernel(setup=_one_item, actors=[_consume, _consume], check=None)
queue_consumer_fixed = Kernel(setup=_one_item, actors=[_consume_nowait] * 2, check=None)


BUGGY = {
    "lost_update": lost_update,
    "lost_update_call": lost_update_call,
    "check_then_act": check_then_act,
    "lazy_init": lazy_init,
    "abba_deadlock": abba,
    "missed_notify": missed_notify,
    "publish_before_init": publish,
    "dict_iteration": dict_iteration,
    "queue_consumer": queue_consumer,
}
FIXED = {
    "lost_update": lost_update_fixed,
    "lost_update_module_lock": lost_update_module_lock,
    "lost_update_call": lost_update_call_fixed,
    "check_then_act": check_then_act_fixed,
    "lazy_init": lazy_init_fixed,
    "abba_deadlock": abba_fixed,
    "missed_notify": missed_notify_fixed,
    "publish_before_init": publish_fixed,
    "dict_iteration": dict_iteration_fixed,
    "queue_consumer": queue_consumer_fixed,
}
EXPECTED_KIND = {
    "lost_update": "assertion", "lost_update_call": "assertion",
    "check_then_act": "assertion", "lazy_init": "assertion",
    "abba_deadlock": "deadlock", "missed_notify": "deadlock",
    "publish_before_init": "assertion", "dict_iteration": "exception",
    "queue_consumer": "deadlock",
}


# 10. bank transfer: check the balance, then debit it (two transfers overdraw)
def _transfer(s):
    if s.accounts["a"] >= 60:
        s.accounts["a"] -= 60
        s.accounts["b"] += 60


def _transfer_locked(s):
    with s.lock:
        _transfer(s)


def _no_overdraft(s, _returns):
    assert s.accounts["a"] >= 0, f"overdrawn: {s.accounts}"
    assert s.accounts["a"] + s.accounts["b"] == 100, f"money changed: {s.accounts}"


bank_transfer = Kernel(setup=lambda: _state(accounts={"a": 100, "b": 0}),
                       actors=[_transfer] * 2, check=_no_overdraft)
bank_transfer_fixed = Kernel(setup=lambda: _state(accounts={"a": 100, "b": 0},
                                                  lock=threading.Lock()),
                             actors=[_transfer_locked] * 2, check=_no_overdraft)


# 11. id generator: read the counter, then store it plus one (two callers get one id)
def _next_id(s):
    given = s.counter
    s.counter = given + 1
    return given


def _next_id_locked(s):
    with s.lock:
        return _next_id(s)


def _unique_ids(_s, returns):
    assert len(set(returns)) == len(returns), f"duplicate ids: {returns}"


id_generator = Kernel(setup=lambda: _state(counter=0), actors=[_next_id] * 2,
                      check=_unique_ids)
id_generator_fixed = Kernel(setup=lambda: _state(counter=0, lock=threading.Lock()),
                            actors=[_next_id_locked] * 2, check=_unique_ids)


# 12. lazy singleton with three threads (check-then-create, double-checked when fixed)
def _created_once_3(s, returns):
    assert s.created == 1, f"lazy init ran {s.created} times"
    assert returns[0] is returns[1] is returns[2]


lazy_singleton_3 = Kernel(setup=lambda: _state(instance=None, created=0), actors=[_lazy] * 3,
                          check=_created_once_3)
lazy_singleton_3_fixed = Kernel(
    setup=lambda: _state(instance=None, created=0, lock=threading.Lock()),
    actors=[_lazy_locked] * 3, check=_created_once_3)

BUGGY.update({"bank_transfer": bank_transfer, "id_generator": id_generator,
              "lazy_singleton_3": lazy_singleton_3})
FIXED.update({"bank_transfer": bank_transfer_fixed, "id_generator": id_generator_fixed,
              "lazy_singleton_3": lazy_singleton_3_fixed})
EXPECTED_KIND.update({"bank_transfer": "assertion", "id_generator": "assertion",
                      "lazy_singleton_3": "assertion"})
