"""pytest-concurrency: run a test body under threads, processes and schedules."""

__version__ = "0.1.0"

from .context import WorkerInfo, current_worker
from .outcomes import WorkerFailures
from .results import Outcomes, Results

__all__ = ["Outcomes", "Results", "WorkerFailures", "WorkerInfo", "current_worker"]
