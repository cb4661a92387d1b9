"""pytest-concurrency: run a test body under threads, processes and schedules."""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from .context import WorkerInfo, current_worker
from .results import Outcomes, Results

if TYPE_CHECKING:  # type checkers see it; at run time __getattr__ imports it
    from .outcomes import WorkerFailures

__all__ = ["Outcomes", "Results", "WorkerFailures", "WorkerInfo", "current_worker"]


def __getattr__(name: str) -> Any:
    # WorkerFailures lives with the machinery that raises it, imported on first use
    # so that loading the plugin stays cheap for suites without concurrent tests.
    if name == "WorkerFailures":
        from .outcomes import WorkerFailures

        return WorkerFailures
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
