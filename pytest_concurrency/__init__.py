"""pytest-concurrency: run a test body under threads, processes and schedules."""

from .context import WorkerInfo, current_worker
from .outcomes import WorkerFailures
from .results import Outcomes, Results

__all__ = ["Outcomes", "Results", "WorkerFailures", "WorkerInfo", "current_worker"]
