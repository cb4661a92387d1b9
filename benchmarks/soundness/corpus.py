"""The soundness corpus: racy programs that share state in ways explore must not miss.

Each program is a bug of one kind of sharing, written as explore() arguments
(setup, actors, check), with a twin fixed by a lock.  The kinds (``category``):

- aliases: one object reached under two names (an instance and its ``__dict__``
  or ``vars()``, a dict and its views, a bytearray and a memoryview of it or a
  ctypes number made ``from_buffer`` of it, a module's globals and ``globals()``,
  an object and a weak proxy to it);
- C code with state of its own: a property whose getter is ``operator.attrgetter``,
  ``itemgetter``, ``functools.lru_cache`` and ``cached_property``, the ``operator``
  functions, itertools over shared lists, a C function calling back;
- the environment: ``os.environ``, ``os.getenv``, ``os.chdir``, the socket
  module's default timeout;
- I/O: a file read and rewritten (with ``open`` or ``os.open``), a socket;
- code without source: code compiled from a string and run by ``exec``;
- an untraced library: a module outside explore's roots whose global its
  functions change (``lib.incr()``: a call whose arguments are all immutable);
- nondeterminism: a body whose path depends on ``os.urandom``, ``random`` or the
  real clock (no number of schedules covers every value: never verified);
- weak references and finalizers.

``expect`` says what DPOR should say of the twin: "verified", or "incomplete" where
explore cannot see what the program does (I/O, an untraced library, code without
source, weak references, finalizers) - and never "verified" for a buggy program. A
program with ``since`` is buggy only from that Python version (``cached_property``
took a lock until 3.12), or only on a free-threaded build (``"free-threaded"``: a C
function iterating a dict is one step under the GIL; explore cannot make such a bug
happen, DPOR must not call the program verified there).  ``instrument`` is what
makes an untraced library traced.

Kept in its own directory: explore's roots for these programs are this
directory, so ``soundness_lib`` (beside it) is a library explore does not trace.
"""
from __future__ import annotations

import ctypes
import functools
import itertools
import operator
import os
import random
import socket
import sys
import sysconfig
import tempfile
import threading
import time
import types
import weakref

import soundness_lib as lib


class Kernel(types.SimpleNamespace):
    """name, category, setup, actors, check, twin (a Kernel), expect, since, instrument."""


PROGRAMS: dict[str, Kernel] = {}


def program(name, category, setup, actors, check, fixed_actors, expect="verified",
            since=(3, 11), instrument=(), fixed_setup=None):
    twin = Kernel(name=name, category=category, setup=fixed_setup or setup,
                  actors=fixed_actors, check=check, expect=expect, instrument=instrument)
    PROGRAMS[name] = Kernel(name=name, category=category, setup=setup, actors=actors,
                            check=check, twin=twin, expect=expect, since=since,
                            instrument=instrument)


def _ns(**kw):
    return types.SimpleNamespace(lock=threading.Lock(), **kw)


def locked(actor):
    """``actor`` run under the state's lock (the fixed twin)."""
    @functools.wraps(actor)
    def fixed(s):
        with s.lock:
            return actor(s)
    return fixed


class Box:
    """A plain object with an instance dict."""

    def __init__(self, n=0):
        self.n = n


# ---- aliases --------------------------------------------------------------------------------

def _box():
    return _ns(obj=Box())


def inc_attr(s):
    s.obj.n += 1


def inc_dict(s):
    s.obj.__dict__["n"] += 1


def inc_vars(s):
    namespace = vars(s.obj)
    current = namespace["n"]
    namespace["n"] = current + 1


def _n_is(count):
    def check(s, _returns):
        assert s.obj.n == count, f"lost update: n is {s.obj.n}, expected {count}"
    return check


program("dict_alias", "aliases", _box, [inc_attr, inc_dict], _n_is(2),
        [locked(inc_attr), locked(inc_dict)])
program("vars_alias", "aliases", _box, [inc_vars, inc_attr], _n_is(2),
        [locked(inc_vars), locked(inc_attr)])
program("dict_alias_3", "aliases", _box, [inc_dict, inc_attr, inc_dict], _n_is(3),
        [locked(inc_dict), locked(inc_attr), locked(inc_dict)])


def _keys():
    d = {}
    return _ns(d=d, keys=d.keys())


def get_or_create_by_view(s):
    if "k" not in s.keys:
        s.d["k"] = object()
    return s.d["k"]


def _one_object(_s, returns):
    assert all(r is returns[0] for r in returns), "two objects were created for one key"


program("keys_view_check_then_act", "aliases", _keys, [get_or_create_by_view] * 2,
        _one_object, [locked(get_or_create_by_view)] * 2)


def _accounts():
    d = {"a": 50, "b": 50}
    return _ns(d=d, values=d.values(), items=d.items())


def move(s):
    s.d["a"] -= 10
    s.d["b"] += 10


def total_of_view(s):
    return sum(s.values)


def _total_100(_s, returns):
    assert returns[1] == 100, f"torn read: the total is {returns[1]}"


program("values_view_sum", "aliases", _accounts, [move, total_of_view], _total_100,
        [locked(move), locked(total_of_view)])


def add_key(s):
    s.d["c"] = 0


def keys_of_items(s):
    return [key for key, _value in s.items]


program("items_view_iteration", "aliases", _accounts, [keys_of_items, add_key], None,
        [locked(keys_of_items), locked(add_key)])


def _bytes():
    buffer = bytearray(1)
    return _ns(buffer=buffer, view=memoryview(buffer))


def inc_view(s):
    s.view[0] += 1


def inc_buffer(s):
    s.buffer[0] += 1


def _byte_is_2(s, _returns):
    assert s.buffer[0] == 2, f"lost update: the byte is {s.buffer[0]}"


program("memoryview_alias", "aliases", _bytes, [inc_view, inc_buffer], _byte_is_2,
        [locked(inc_view), locked(inc_buffer)])


def _c_int_over_bytes():
    buffer = bytearray(4)
    return _ns(buffer=buffer, number=ctypes.c_int32.from_buffer(buffer))


def inc_c_int(s):
    s.number.value += 1  # a C getter and setter on the bytearray's memory


program("ctypes_from_buffer_alias", "aliases", _c_int_over_bytes, [inc_c_int, inc_buffer],
        _byte_is_2, [locked(inc_c_int), locked(inc_buffer)])

COUNT = 0


def _count():
    global COUNT
    COUNT = 0
    return _ns()


def inc_global(s):
    global COUNT
    COUNT += 1


def inc_globals_dict(s):
    globals()["COUNT"] += 1


def _count_is_2(_s, _returns):
    assert COUNT == 2, f"lost update: COUNT is {COUNT}"


program("globals_alias", "aliases", _count, [inc_global, inc_globals_dict], _count_is_2,
        [locked(inc_global), locked(inc_globals_dict)])


def _proxied():
    obj = Box()
    return _ns(obj=obj, proxy=weakref.proxy(obj))


def inc_proxy(s):
    s.proxy.n += 1


program("weak_proxy_alias", "aliases", _proxied, [inc_proxy, inc_attr], _n_is(2),
        [locked(inc_proxy), locked(inc_attr)])


# ---- C code with state of its own ---------------------------------------------------------------

class Account:
    """Its balance is read through a C getter (``operator.attrgetter``)."""

    balance = property(operator.attrgetter("_balance"))

    def __init__(self, balance):
        self._balance = balance

    def withdraw(self, amount):
        if self.balance >= amount:
            self._balance -= amount


def _account():
    return _ns(account=Account(100))


def withdraw_60(s):
    s.account.withdraw(60)


def _not_overdrawn(s, _returns):
    assert s.account._balance >= 0, f"overdrawn: {s.account._balance}"


program("attrgetter_property", "C code with state", _account, [withdraw_60] * 2,
        _not_overdrawn, [locked(withdraw_60)] * 2)

BOTH = operator.itemgetter("a", "b")


def total_of_getter(s):
    return sum(BOTH(s.d))


program("itemgetter_torn_read", "C code with state", _accounts, [move, total_of_getter],
        _total_100, [locked(move), locked(total_of_getter)])


def _total_100_of_3(_s, returns):
    assert returns[2] == 100, f"torn read: the total is {returns[2]}"


program("itemgetter_torn_read_3", "C code with state", _accounts,
        [move, move, total_of_getter], _total_100_of_3,
        [locked(move), locked(move), locked(total_of_getter)])


class Conn:
    """A connection opened on first use of its handle."""

    def __init__(self):
        self.opened = 0

    @functools.cached_property
    def handle(self):
        self.opened += 1
        return object()

    def __hash__(self):
        return id(self)


def _conn():
    return _ns(conn=Conn())


def use_handle(s):
    return s.conn.handle


def _opened_once(s, returns):
    assert s.conn.opened == 1, f"opened {s.conn.opened} times"
    assert returns[0] is returns[1]


program("cached_property_once", "C code with state", _conn, [use_handle] * 2,
        _opened_once, [locked(use_handle)] * 2, since=(3, 12))


@functools.cache  # lru_cache(maxsize=None)
def open_connection(conn):
    conn.opened += 1
    return object()


def _conn_cached():
    open_connection.cache_clear()
    return _conn()


def connect(s):
    return open_connection(s.conn)


program("lru_cache_once", "C code with state", _conn_cached, [connect] * 2, _opened_once,
        [locked(connect)] * 2)


def _counts():
    return _ns(d={"n": 0})


def inc_operator(s):
    current = operator.getitem(s.d, "n")
    operator.setitem(s.d, "n", current + 1)


def _d_n_is_2(s, _returns):
    assert s.d["n"] == 2, f"lost update: {s.d['n']}"


program("operator_functions", "C code with state", _counts, [inc_operator] * 2, _d_n_is_2,
        [locked(inc_operator)] * 2)


def _lists():
    return _ns(a=[1, 2, 3], b=[])


def shift(s):
    item = s.a.pop()
    s.b.append(item)


def count_chained(s):
    return len(list(itertools.chain(s.a, s.b)))


def _three_items(_s, returns):
    assert returns[1] == 3, f"torn read: {returns[1]} items"


program("itertools_chain_torn_read", "C code with state", _lists, [shift, count_chained],
        _three_items, [locked(shift), locked(count_chained)])


def bump(s):
    current = s.obj.n
    s.obj.n = current + 1
    return current


def bump_through_map(s):
    return list(map(lambda _i: bump(s), range(1)))


program("map_callback", "C code with state", _box, [bump_through_map] * 2, _n_is(2),
        [locked(bump_through_map)] * 2)


# ---- the environment ----------------------------------------------------------------------------

def _environment():
    os.environ["SOUNDNESS_N"] = "0"
    os.environ.pop("SOUNDNESS_TOKEN", None)
    return _ns(tokens=itertools.count())


def inc_environ(s):
    os.environ["SOUNDNESS_N"] = str(int(os.environ["SOUNDNESS_N"]) + 1)


def _env_n_is_2(_s, _returns):
    assert os.environ["SOUNDNESS_N"] == "2", f"lost update: {os.environ['SOUNDNESS_N']}"


program("environ_counter", "environment", _environment, [inc_environ] * 2, _env_n_is_2,
        [locked(inc_environ)] * 2)


def token(s):
    found = os.getenv("SOUNDNESS_TOKEN")
    if found is None:
        found = f"token-{next(s.tokens)}"
        os.environ["SOUNDNESS_TOKEN"] = found
    return found


def _one_token(_s, returns):
    assert returns[0] == returns[1], f"two tokens: {returns}"


program("getenv_check_then_act", "environment", _environment, [token] * 2, _one_token,
        [locked(token)] * 2)

def with_default_timeout(seconds):
    def worker(s):
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(seconds)
        seen = socket.getdefaulttimeout()
        socket.setdefaulttimeout(old)
        return seen
    worker.__name__ = worker.__qualname__ = f"with_default_timeout_{int(seconds)}"
    return worker


def _default_timeout():
    socket.setdefaulttimeout(None)
    return _ns()


def _each_saw_its_own(_s, returns):
    assert returns == [1.0, 2.0], f"a worker saw the other's default timeout: {returns}"


program("socket_default_timeout", "environment", _default_timeout,
        [with_default_timeout(1.0), with_default_timeout(2.0)], _each_saw_its_own,
        [locked(with_default_timeout(1.0)), locked(with_default_timeout(2.0))])


_DIRS = [tempfile.mkdtemp(prefix="soundness-") for _ in range(2)]


def _dirs():
    return _ns(dirs=_DIRS)


def chdir_0(s):
    os.chdir(s.dirs[0])
    return os.getcwd() == s.dirs[0]


def chdir_1(s):
    os.chdir(s.dirs[1])
    return os.getcwd() == s.dirs[1]


def _both_where_they_went(_s, returns):
    assert all(returns), f"a worker was not in the directory it changed to: {returns}"


program("chdir_race", "environment", _dirs, [chdir_0, chdir_1], _both_where_they_went,
        [locked(chdir_0), locked(chdir_1)])


# ---- I/O ------------------------------------------------------------------------------------

_FILE = os.path.join(tempfile.mkdtemp(prefix="soundness-"), "counter.txt")


def _file():
    with open(_FILE, "w") as handle:
        handle.write("0")
    return _ns(path=_FILE)


def inc_file(s):
    with open(s.path) as handle:
        current = int(handle.read())
    with open(s.path, "w") as handle:
        handle.write(str(current + 1))


def _file_is_2(s, _returns):
    with open(s.path) as handle:
        text = handle.read()
    assert text == "2", f"lost update: the file says {text}"


program("file_read_modify_write", "I/O", _file, [inc_file] * 2, _file_is_2,
        [locked(inc_file)] * 2, expect="incomplete")


def inc_file_descriptor(s):
    fd = os.open(s.path, os.O_RDWR)
    try:
        current = int(os.read(fd, 10))
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, str(current + 1).encode())
    finally:
        os.close(fd)


program("file_descriptor_read_modify_write", "I/O", _file, [inc_file_descriptor] * 2,
        _file_is_2, [locked(inc_file_descriptor)] * 2, expect="incomplete")


def _sockets():
    left, right = socket.socketpair()
    return _ns(left=left, right=right)


def echo_0(s):
    s.left.send(b"0")
    return s.right.recv(1)


def echo_1(s):
    s.left.send(b"1")
    return s.right.recv(1)


def _own_bytes(s, returns):
    s.left.close()
    s.right.close()
    assert returns == [b"0", b"1"], f"a worker read the other's byte: {returns}"


program("socket_messages", "I/O", _sockets, [echo_0, echo_1], _own_bytes,
        [locked(echo_0), locked(echo_1)], expect="incomplete")


# ---- an untraced library ---------------------------------------------------------------------

def _library():
    lib.reset()
    return _ns()


def lib_incr(s):
    lib.incr()


def _lib_value_is_2(_s, _returns):
    assert lib.current() == 2, f"lost update in the library: {lib.current()}"


program("library_global", "untraced library", _library, [lib_incr] * 2, _lib_value_is_2,
        [locked(lib_incr)] * 2, expect="incomplete", instrument=("soundness_lib",))


def lib_add(s):
    lib.add(1)


program("library_global_3", "untraced library", _library, [lib_incr, lib_add, lib_incr],
        lambda _s, _r: _check_lib(3), [locked(lib_incr), locked(lib_add), locked(lib_incr)],
        expect="incomplete", instrument=("soundness_lib",))


def _check_lib(count):
    assert lib.current() == count, f"lost update in the library: {lib.current()}"


def lib_register(s):
    return lib.register("k")


program("library_registry", "untraced library", _library, [lib_register] * 2, _one_object,
        [locked(lib_register)] * 2, expect="incomplete", instrument=("soundness_lib",))


# ---- code without source ----------------------------------------------------------------------

_GENERATED = compile("s.obj.n = s.obj.n + 1", "<generated>", "exec")


def inc_generated(s):
    exec(_GENERATED, {"s": s})


program("exec_generated_code", "code without source", _box, [inc_generated, inc_attr],
        _n_is(2), [locked(inc_generated), locked(inc_attr)], expect="incomplete")


# ---- nondeterminism -----------------------------------------------------------------------------

def racy_sometimes(s):
    if os.urandom(1)[0] & 1:
        current = s.obj.n
        s.obj.n = current + 1
    else:
        with s.lock:
            s.obj.n += 1


def locked_either_way(s):
    if os.urandom(1)[0] & 1:
        with s.lock:
            s.obj.n += 1
    else:
        with s.lock:
            s.obj.n += 1


program("urandom_branch", "nondeterminism", _box, [racy_sometimes] * 2, _n_is(2),
        [locked_either_way] * 2, expect="incomplete")


def racy_when_random(s):
    if random.random() < 0.5:
        current = s.obj.n
        s.obj.n = current + 1
    else:
        with s.lock:
            s.obj.n += 1


def locked_when_random(s):
    with s.lock:
        if random.random() < 0.5:
            s.obj.n += 1
        else:
            s.obj.n = s.obj.n + 1


program("random_branch", "nondeterminism", _box, [racy_when_random] * 2, _n_is(2),
        [locked_when_random] * 2, expect="incomplete")


def racy_on_odd_nanoseconds(s):
    if time.perf_counter_ns() & 1:
        current = s.obj.n
        s.obj.n = current + 1
    else:
        with s.lock:
            s.obj.n += 1


def locked_on_any_nanosecond(s):
    with s.lock:
        if time.perf_counter_ns() & 1:
            s.obj.n += 1
        else:
            s.obj.n = s.obj.n + 1


program("clock_branch", "nondeterminism", _box, [racy_on_odd_nanoseconds] * 2, _n_is(2),
        [locked_on_any_nanosecond] * 2, expect="incomplete")


# ---- weak references and finalizers ------------------------------------------------------------

class Thing:
    pass


def _weak_cache():
    return _ns(cache=weakref.WeakValueDictionary(), keep=[])


def get_or_create_weakly(s):
    found = s.cache.get("k")
    if found is None:
        found = Thing()
        s.cache["k"] = found
    s.keep.append(found)
    return found


program("weak_value_cache", "weak references", _weak_cache, [get_or_create_weakly] * 2,
        _one_object, [locked(get_or_create_weakly)] * 2, expect="incomplete")


class Resource:
    """Counts its releases when it is collected."""

    def __init__(self, owner):
        self.owner = owner

    def __del__(self):
        self.owner.freed += 1


def _resources():
    return _ns(freed=0)


def use_and_drop(s):
    resource = Resource(s)
    del resource


def _freed_2(s, _returns):
    assert s.freed == 2, f"lost update in a finalizer: freed is {s.freed}"


program("finalizer_counter", "weak references", _resources, [use_and_drop] * 2, _freed_2,
        [locked(use_and_drop)] * 2, expect="incomplete")


FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def applies(kernel) -> bool:
    """Whether ``kernel``'s program is buggy on this Python."""
    if kernel.since == "free-threaded":
        return FREE_THREADED
    return sys.version_info[:2] >= kernel.since


def findable(kernel) -> bool:
    """Whether explore can make the bug happen: not a C function's work torn on a
    free-threaded build (explore runs a C call as one step)."""
    return kernel.since != "free-threaded"


# ---- C iteration, atomic under the GIL only -------------------------------------------------

def replace_both(s):
    s.d.update({"a": 40, "b": 60})


def _total_100_under_the_gil(_s, returns):
    assert returns[1] == 100, f"torn read: the total is {returns[1]}"


program("update_during_sum", "free-threaded C iteration", _accounts,
        [replace_both, total_of_view], _total_100_under_the_gil,
        [locked(replace_both), locked(total_of_view)], since="free-threaded")
