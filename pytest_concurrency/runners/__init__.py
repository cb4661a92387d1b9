"""One execution model per module; :func:`run` picks the one a spec asks for."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any


@dataclasses.dataclass
class RunOutcome:
    """What a runner hands back: values, failures, captured output, wall time."""

    values: dict[int, list]  # worker index -> one value per completed iteration
    failures: list  # outcomes.Failure
    outputs: list[tuple[str, str]]  # (report section title, text) from children
    wall: float
    seed: int | None = None  # start-jitter seed of thread/process/hybrid runs
    measurement: object = None  # metrics.Measurement, filled in by running.execute


def run(spec, target: Callable, args: tuple = (), kwargs: Mapping[str, Any] | None = None,
        *, tb_style: str = "long", arg_kind: str = "argument", config=None,
        replay: str | None = None, roots=(), nodeid: str = "", refresh=None) -> RunOutcome:
    """Run ``target(*args, **kwargs)`` in every worker ``spec.iterations`` times.

    ``arg_kind`` names what ``kwargs`` are in error messages ("fixture" when
    they are a test's fixture values); ``config`` is the pytest config, whose
    settings spawned children use to explain failed assertions.  explore mode
    uses ``replay`` (a token), ``roots`` (directories of user code), ``nodeid``
    (for the replay command) and ``refresh`` (fresh ``kwargs`` per schedule).
    """
    kwargs = dict(kwargs or {})
    if spec.mode == "thread":
        return thread.run(spec, functools.partial(target, *args, **kwargs), tb_style)
    if spec.mode == "process":
        return process.run(spec, target, args, kwargs, tb_style, arg_kind, config)
    if spec.mode == "hybrid":
        return hybrid.run(spec, target, args, kwargs, tb_style, arg_kind, config)
    if spec.mode == "explore":
        return explore.run(spec, target, args, kwargs, replay=replay, roots=roots,
                           nodeid=nodeid, refresh=refresh)
    raise NotImplementedError(f"{spec.mode} mode is not available in this version")


from . import explore, hybrid, process, thread  # noqa: E402 - they import RunOutcome
