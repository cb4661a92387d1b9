"""asyncio bug kernels, each with a fixed twin, as explore() arguments (tasks, not
threads: every actor is a coroutine function).  benchmarks/explore_kernels.py
measures them with --aio."""
import asyncio
import contextlib
import types


class Kernel(types.SimpleNamespace):
    """setup, actors, check (check may be None); sleeps: the virtual seconds a round
    sleeps (real seconds outside explore)."""


def _state(**kw):
    return types.SimpleNamespace(**kw)


# 1. lost update across an await: read, await, write back
async def _increment(s):
    value = s.value
    await asyncio.sleep(0)  # a database round trip
    s.value = value + 1


async def _increment_locked(s):
    async with s.lock:
        value = s.value
        await asyncio.sleep(0)
        s.value = value + 1


def _value_is_2(s, _returns):
    assert s.value == 2, f"lost update: value is {s.value}, expected 2"


lost_update = Kernel(setup=lambda: _state(value=0), actors=[_increment, _increment],
                     check=_value_is_2)
lost_update_fixed = Kernel(setup=lambda: _state(value=0, lock=asyncio.Lock()),
                           actors=[_increment_locked, _increment_locked], check=_value_is_2)


# 2. double initialisation: the check and the fill straddle the connect
async def _connect(s):
    await asyncio.sleep(0)
    s.connects += 1
    return object()


async def _get_connection(s):
    if s.conn is None:
        s.conn = await _connect(s)
    return s.conn


async def _get_connection_locked(s):
    async with s.lock:
        if s.conn is None:
            s.conn = await _connect(s)
    return s.conn


def _connected_once(s, returns):
    assert s.connects == 1, f"connected {s.connects} times"
    assert returns[0] is returns[1], "the two tasks got different connections"


double_init = Kernel(setup=lambda: _state(conn=None, connects=0),
                     actors=[_get_connection, _get_connection], check=_connected_once)
double_init_fixed = Kernel(setup=lambda: _state(conn=None, connects=0, lock=asyncio.Lock()),
                           actors=[_get_connection_locked, _get_connection_locked],
                           check=_connected_once)


# 3. check-then-act on a dict across an await: a cache filled twice
async def _fetch(s, key):
    await asyncio.sleep(0)
    s.fetches += 1
    return [key]


async def _cached(s):
    if "user:1" not in s.cache:
        s.cache["user:1"] = await _fetch(s, "user:1")
    return s.cache["user:1"]


async def _cached_fixed(s):
    # one task per key: the second caller awaits the first caller's fetch
    if "user:1" not in s.cache:
        s.cache["user:1"] = asyncio.ensure_future(_fetch(s, "user:1"))
    return await s.cache["user:1"]


def _fetched_once(s, returns):
    assert s.fetches == 1, f"fetched {s.fetches} times"
    assert returns[0] is returns[1], "the callers got different values for one key"


check_then_act = Kernel(setup=lambda: _state(cache={}, fetches=0), actors=[_cached, _cached],
                        check=_fetched_once)
check_then_act_fixed = Kernel(setup=lambda: _state(cache={}, fetches=0),
                              actors=[_cached_fixed, _cached_fixed], check=_fetched_once)


# 4. lock-order deadlock between asyncio.Locks
async def _transfer(s):
    async with s.accounts:
        await asyncio.sleep(0)
        async with s.audit:
            s.moves += 1


async def _report(s):
    async with s.audit:
        await asyncio.sleep(0)
        async with s.accounts:
            s.reports += 1


async def _report_ordered(s):
    async with s.accounts:
        await asyncio.sleep(0)
        async with s.audit:
            s.reports += 1


def _locks():
    return _state(accounts=asyncio.Lock(), audit=asyncio.Lock(), moves=0, reports=0)


abba_deadlock = Kernel(setup=_locks, actors=[_transfer, _report], check=None)
abba_deadlock_fixed = Kernel(setup=_locks, actors=[_transfer, _report_ordered], check=None)


# 5. a lost Condition wake-up: the consumer checks before it takes the lock
async def _produce(s):
    async with s.cond:
        await asyncio.sleep(0)  # preparing the job, under the lock
        s.items.append("job")
        s.cond.notify()


async def _consume(s):
    if not s.items:
        async with s.cond:
            await s.cond.wait()
    return s.items.pop()


async def _consume_fixed(s):
    async with s.cond:
        await s.cond.wait_for(lambda: s.items)
        return s.items.pop()


def _cond():
    return _state(cond=asyncio.Condition(), items=[])


lost_wakeup = Kernel(setup=_cond, actors=[_produce, _consume], check=None)
lost_wakeup_fixed = Kernel(setup=_cond, actors=[_produce, _consume_fixed], check=None)


# 6. a lost Event wake-up: cleared after the check, so a set in between is lost
async def _signal(s):
    await asyncio.sleep(0)
    s.ready = True
    s.event.set()


async def _await_signal(s):
    if not s.ready:
        await asyncio.sleep(0)
        s.event.clear()  # "reset for the next round", after the check
        await s.event.wait()


async def _await_signal_fixed(s):
    s.event.clear()  # before the check: a set after it is not lost
    if not s.ready:
        await s.event.wait()


def _event():
    return _state(event=asyncio.Event(), ready=False)


lost_event = Kernel(setup=_event, actors=[_signal, _await_signal], check=None)
lost_event_fixed = Kernel(setup=_event, actors=[_signal, _await_signal_fixed], check=None)


# 7. a cancellation that leaves state half-updated: the timeout fires mid-transfer
async def _move(s):
    s.checking -= 10
    await asyncio.sleep(1.0)  # the ledger write; the caller's timeout is 1 s too
    s.savings += 10


async def _move_fixed(s):
    await asyncio.sleep(1.0)  # the ledger write first: no state is changed before it
    s.checking -= 10
    s.savings += 10


async def _with_timeout(move, s):
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(move(s), timeout=1.0)


async def _mover(s):
    await _with_timeout(_move, s)


async def _mover_fixed(s):
    await _with_timeout(_move_fixed, s)


def _balanced(s, _returns):
    assert s.checking + s.savings == 200, \
        f"money lost: checking {s.checking} + savings {s.savings} != 200"


half_update = Kernel(setup=lambda: _state(checking=100, savings=100),
                     actors=[_mover, _mover], check=_balanced, sleeps=1.0)
half_update_fixed = Kernel(setup=lambda: _state(checking=100, savings=100),
                           actors=[_mover_fixed, _mover_fixed], check=_balanced, sleeps=1.0)


# 8. a lost "server is up" notification: the client checks outside the Condition's
# lock; only a client that starts before the server can miss it
async def _server_up(s):
    async with s.up_changed:
        s.up = True
        s.up_changed.notify_all()


async def _client(s):
    if not s.up:
        await asyncio.sleep(0)  # "waiting for the server" to the log
        async with s.up_changed:
            await s.up_changed.wait()
    return "connected"


async def _client_fixed(s):
    async with s.up_changed:  # the check under the lock the notify takes
        await s.up_changed.wait_for(lambda: s.up)
    return "connected"


def _server():
    return _state(up_changed=asyncio.Condition(), up=False)


missed_start = Kernel(setup=_server, actors=[_server_up, _client], check=None)
missed_start_fixed = Kernel(setup=_server, actors=[_server_up, _client_fixed], check=None)


# 9. a message sent into a closed outbox: send checks "open", then writes; close drains.
# Only a sender that starts before the closer loses its message
async def _close_outbox(s):
    s.closed = True
    await asyncio.sleep(0)  # flushing the transport
    while not s.outbox.empty():
        s.delivered.append(s.outbox.get_nowait())


async def _send(s):
    if s.closed:
        return "rejected"
    await asyncio.sleep(0)  # encoding the message
    s.outbox.put_nowait("hello")
    return "sent"


async def _close_outbox_locked(s):
    async with s.lock:
        await _close_outbox(s)


async def _send_locked(s):
    async with s.lock:
        return await _send(s)


def _outbox():
    return _state(outbox=asyncio.Queue(), delivered=[], closed=False, lock=asyncio.Lock())


def _sent_is_delivered(s, returns):
    if returns[1] == "sent":
        assert s.delivered == ["hello"], \
            f"message lost: sent, but delivered {s.delivered} and {s.outbox.qsize()} left"


closed_outbox = Kernel(setup=_outbox, actors=[_close_outbox, _send], check=_sent_is_delivered)
closed_outbox_fixed = Kernel(setup=_outbox, actors=[_close_outbox_locked, _send_locked],
                             check=_sent_is_delivered)


BUGGY = {
    "lost_update": lost_update,
    "double_init": double_init,
    "check_then_act": check_then_act,
    "abba_deadlock": abba_deadlock,
    "lost_wakeup": lost_wakeup,
    "lost_event": lost_event,
    "half_update": half_update,
    "missed_start": missed_start,
    "closed_outbox": closed_outbox,
}
FIXED = {
    "lost_update_fixed": lost_update_fixed,
    "double_init_fixed": double_init_fixed,
    "check_then_act_fixed": check_then_act_fixed,
    "abba_deadlock_fixed": abba_deadlock_fixed,
    "lost_wakeup_fixed": lost_wakeup_fixed,
    "lost_event_fixed": lost_event_fixed,
    "half_update_fixed": half_update_fixed,
    "missed_start_fixed": missed_start_fixed,
    "closed_outbox_fixed": closed_outbox_fixed,
}
EXPECTED_KIND = {
    "lost_update": "assertion",
    "double_init": "assertion",
    "check_then_act": "assertion",
    "abba_deadlock": "deadlock",
    "lost_wakeup": "deadlock",
    "lost_event": "deadlock",
    "half_update": "assertion",
    "missed_start": "deadlock",
    "closed_outbox": "assertion",
}
