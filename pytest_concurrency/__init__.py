"""pytest-concurrency: run a test body under threads, processes and schedules."""

__version__ = "0.1.0"

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers see them; at run time __getattr__ imports them
    from .context import WorkerInfo, current_worker
    from .outcomes import WorkerFailures
    from .results import Outcomes, Results

__all__ = ["Outcomes", "Results", "WorkerFailures", "WorkerInfo", "current_worker"]

# Each public name is imported from its module on first use, so that loading the
# plugin stays cheap for suites without concurrent tests.
_HOMES = {"WorkerInfo": "context", "current_worker": "context", "Outcomes": "results",
          "Results": "results", "WorkerFailures": "outcomes"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
