"""The real primitives, captured at import, for the scheduler's own use."""

from __future__ import annotations

import _thread
import queue
import threading
import time
from types import ModuleType

allocate_lock = _thread.allocate_lock
get_ident = _thread.get_ident
start_new_thread = _thread.start_new_thread
Thread = threading.Thread
sleep = time.sleep
monotonic = time.monotonic
perf_counter = time.perf_counter
wall_time = time.time

# module -> the names primitives.Patcher replaces in it while a schedule runs
PATCH_TARGETS: dict[ModuleType, tuple[str, ...]] = {
    threading: ("Thread", "Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore",
                "Event", "Barrier"),
    queue: ("Queue", "SimpleQueue", "LifoQueue"),
    time: ("sleep", "monotonic", "time", "perf_counter"),
}
