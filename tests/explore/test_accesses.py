"""What DPOR sees of a step: accesses described by what is called, aliases that
share one object's number, and which events are dependent."""
import heapq

from pytest_concurrency.explore import accesses
from pytest_concurrency.explore.accesses import ALL, Calls, Objects, dependent


def test_a_method_call_on_a_shared_object_is_described_by_its_name_and_key():
    objects, calls = Objects(), Calls(lambda code: False)
    shared = {"k": 1}
    reads = calls.callable_outcome(shared.get, ["k"], objects).event
    writes = calls.callable_outcome(shared.__setitem__, ["k", 2], objects).event
    other = calls.callable_outcome(shared.__setitem__, ["j", 2], objects).event
    assert reads == ((objects(shared), "k", False),)
    assert dependent(reads, writes) and not dependent(reads, other)


def test_a_c_function_writes_what_its_table_says():
    objects, calls = Objects(), Calls(lambda code: False)
    items = [3, 1, 2]
    event = calls.callable_outcome(heapq.heapify, [items], objects).event
    assert event == ((objects(items), ALL, True),)


def test_a_call_into_rewritten_code_is_nothing_by_itself():
    def user(box):
        box.append(1)

    objects, calls = Objects(), Calls(lambda code: code is user.__code__)
    assert calls.callable_outcome(user, [[]], objects).event == ()


def test_objects_keep_their_numbers_and_a_module_is_its_namespace():
    objects = Objects()
    first, second = object(), object()
    assert (objects(first), objects(second), objects(first)) == (0, 1, 0)
    assert objects(accesses) == objects(vars(accesses))


def test_a_ctypes_object_is_numbered_as_the_memory_it_is():
    import ctypes

    class Pair(ctypes.Structure):
        _fields_ = [("a", ctypes.c_int32), ("b", ctypes.c_int32 * 2)]

    objects = Objects()
    buffer = bytearray(12)
    over = Pair.from_buffer(buffer)
    assert objects(over) == objects(buffer) == objects(over.b)  # from_buffer, a field
    own = ctypes.c_int32(0)
    assert objects(own) != objects(buffer)
    # Memory it cannot name (a pointer's contents, from_address): every step's.
    assert objects(ctypes.pointer(own).contents) == accesses.EVERYTHING
    assert objects(ctypes.c_int32.from_address(ctypes.addressof(own))) == accesses.EVERYTHING


def test_a_c_getter_of_a_library_type_reads_all_of_its_object():
    import ctypes

    objects, calls = Objects(), Calls(lambda code: False)
    number = ctypes.c_int32(0)
    event = calls.attribute(number, "value", "w", objects).event
    assert event == ((objects(number), ALL, True),)
