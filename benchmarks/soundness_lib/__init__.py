"""A library the soundness corpus uses from outside explore's roots: explore does
not rewrite it unless asked (``instrument=["soundness_lib"]``).  Its functions
change module state that no argument of theirs reaches."""
import threading

value = 0
registry: dict = {}
_lock = threading.Lock()  # made at import: a real lock


def reset():
    global value
    value = 0
    registry.clear()


def incr():
    """value += 1, not atomic."""
    global value
    current = value
    value = current + 1


def incr_locked():
    global value
    with _lock:
        current = value
        value = current + 1


def add(amount):
    global value
    current = value
    value = current + amount


def register(key):
    """Get or create the object for key: check, then act."""
    found = registry.get(key)
    if found is None:
        found = registry[key] = object()
    return found


def current():
    return value
