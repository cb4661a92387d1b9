"""Marker + CLI + ini -> one validated, frozen RunSpec per test item and mode.

This is the only place that reads the ``concurrency`` marker and the
``--concurrency-*`` options.  Precedence: marker > CLI > ini > default.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from . import options

if TYPE_CHECKING:
    from .budget import Limit

_T = TypeVar("_T")

MODES = ("thread", "process", "hybrid", "explore")
START_METHODS = ("fork", "forkserver", "spawn")
LEAK_POLICIES = ("fail", "warn", "ignore")
FIXTURE_MODES = ("shared", "per-worker")

MARKER_ARGS = (
    "modes",
    "workers",
    "processes",
    "threads",
    "iterations",
    "timeout",
    "start_method",
    "schedules",
    "strategy",
    "seed",
    "instrument",
    "leaks",
    "fixtures",
    "lock_order",
)

DEFAULTS: dict[str, Any] = {
    "workers": 4,
    "iterations": 1,
    "timeout": 60.0,
    "schedules": 200,
    "strategy": "pct",
    "leaks": "fail",
}
EXPLORE_WORKERS = 2
# The longest timeout the runners' waits accept (poll() takes int milliseconds);
# anything longer, float("inf") included, is clamped to it: no practical timeout.
MAX_TIMEOUT = 1_000_000.0  # seconds, 11.6 days
TIMEOUT_CAP_FACTOR = 10  # a run or teardown still making progress may go on this long
MAX_THREADS = 10_000  # threads in one process, unless the OS allows fewer
PROCESSES_PER_CPU = 16  # child processes at once, per usable CPU ...
MIN_PROCESS_LIMIT = 64  # ... and at least this many

# the options whose values become Settings (see options.py)
SETTINGS_OPTIONS = ("workers", "iterations", "timeout", "start_method", "schedules",
                    "strategy", "seed", "leaks", "apply", "replay", "fixtures",
                    "timeout_cap")


class SpecError(options.OptionError):
    """Invalid marker, option or ini input; the message names argument and value."""


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything a runner needs to know about one concurrent run."""

    mode: str
    workers: int
    iterations: int = 1
    processes: int = 1
    threads: int = 1
    timeout: float = 60.0
    start_method: str = "fork"
    schedules: int = 200
    strategy: str = "pct"
    seed: int | None = None
    instrument: tuple[str, ...] = ()
    leaks: str = "fail"
    budget: tuple[Limit, ...] = ()  # from @pytest.mark.concurrency_budget
    strict: bool = False  # inconclusive budget verdicts fail instead of warning
    fixtures: str = "shared"  # or "per-worker": fresh function-scoped fixtures per call
    # a run still making progress at its timeout may go on until this many seconds
    # (equal to timeout: it fails there, "still running, making progress")
    timeout_cap: float = 60.0
    # lock-order inversions seen across the run: "fail", "warn" or "ignore" (always
    # outside explore, which alone sees every lock acquisition)
    lock_order: str = "ignore"

    @property
    def layout(self) -> str:
        if self.mode == "hybrid":
            return f"{self.processes}x{self.threads}"
        return str(self.workers)


def default_start_method() -> str:
    return "fork" if sys.platform.startswith("linux") else "spawn"


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# ---------------------------------------------------------------- checks


def _choices(values: Iterable[object]) -> str:
    return ", ".join(repr(v) for v in values)


def _shown(value: object) -> str:
    """``value`` for a message, cut (parsing.py is imported when a value is bad or
    given: a session of plain tests reads no number)."""
    from .parsing import shown

    return shown(value)


def _int(name: str, value: Any, minimum: int = 1, bounded: bool = True) -> int:
    """An int >= ``minimum``; ``bounded``: within 64 bits (parsing.MAX_INT)."""
    from . import parsing

    try:
        return parsing.integer(value, minimum, parsing.MAX_INT if bounded else None)
    except parsing.NumberError as exc:
        raise SpecError(f"{name}={_shown(value)}: {exc}") from None


def _count(name: str, value: Any) -> int:
    """A count >= 1 without a maximum (iterations, schedules): a loop's bound, which
    the timeout ends."""
    return _int(name, value, 1, bounded=False)


def _seconds(name: str, value: Any) -> float:
    """Seconds > 0; above MAX_TIMEOUT (infinity and any larger int included)
    clamped to it."""
    from . import parsing

    try:
        number = parsing.real(value, above=0, infinite=True, what="a number of seconds")
    except parsing.NumberError as exc:
        raise SpecError(f"{name}={_shown(value)}: {exc}") from None
    return min(number, MAX_TIMEOUT)


def _strategies() -> tuple[str, ...]:
    """explore's strategies (imported when a marker or option names one: every
    pytest session reads the settings, few use explore)."""
    from .explore.strategies import STRATEGIES

    return STRATEGIES


def _lock_order_policies() -> tuple[str, ...]:
    from .explore.lockorder import POLICIES

    return POLICIES


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def thread_limit() -> tuple[int, str]:
    """The most threads a worker process may run, and what sets that limit."""
    import resource

    found = [(MAX_THREADS, "pytest-concurrency's limit")]
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft != resource.RLIM_INFINITY:
        found.append((soft, "RLIMIT_NPROC (ulimit -u)"))
    for path in ("/proc/sys/kernel/threads-max", "/sys/fs/cgroup/pids.max"):
        value = _read_int(path)
        if value is not None:
            found.append((value, path))
    return min(found)


def process_limit() -> tuple[int, str]:
    """The most child processes one run may start, and why."""
    cpus = usable_cpus()
    limit = max(MIN_PROCESS_LIMIT, PROCESSES_PER_CPU * cpus)
    return limit, (f"{PROCESSES_PER_CPU} per usable CPU ({cpus}), at least "
                   f"{MIN_PROCESS_LIMIT}")


def _within(name: str, value: int, what: str, limit: tuple[int, str]) -> None:
    """SpecError if ``value`` (of ``what``: threads, processes) is over ``limit``."""
    most, why = limit
    if value > most:
        raise SpecError(f"{name}={_shown(value)}: more {what} than can be run at once "
                        f"(at most {most}: {why})")


def _choice(name: str, value: Any, choices: Collection[str]) -> str:
    if value not in choices:
        raise SpecError(f"{name}={_shown(value)}: valid choices are {_choices(choices)}")
    return value


def check_modes(given: Any, name: str = "modes") -> tuple[str, ...]:
    """A mode list; a string is one mode or a comma-separated list of them."""
    value = given
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not value:
        raise SpecError(
            f"{name}={_shown(given)}: expected a non-empty list of modes from "
            f"{_choices(MODES)}"
        )
    for mode in value:
        if mode not in MODES:
            raise SpecError(
                f"{name}={_shown(given)}: unknown mode {_shown(mode)}; valid "
                f"modes are {_choices(MODES)}"
            )
    return tuple(dict.fromkeys(value))


def _seed(name: str, value: Any) -> int | None:
    if value is None:
        return None
    return _int(name, value, minimum=0)


def _instrument(value: Any) -> tuple[str, ...]:
    """Package names: dotted identifiers (whether they can be imported is found
    out when explore runs)."""
    names = (value,) if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(v, str) for v in names):
        raise SpecError(f"instrument={_shown(value)}: expected a list of package "
                        "names, e.g. ['cachetools']")
    for name in names:
        if not name or not all(part.isidentifier() for part in name.split(".")):
            raise SpecError(f"instrument={_shown(value)}: {_shown(name)} is "
                            "not a package name (dotted identifiers, e.g. 'cachetools' or "
                            "'mypkg.cache')")
    return tuple(names)


# ---------------------------------------------------------------- settings


@dataclasses.dataclass(frozen=True)
class Settings:
    """CLI + ini values already merged (CLI wins), checked once per session."""

    workers: int = DEFAULTS["workers"]
    iterations: int = DEFAULTS["iterations"]
    timeout: float = DEFAULTS["timeout"]
    start_method: str | None = None
    schedules: int = DEFAULTS["schedules"]
    strategy: str = DEFAULTS["strategy"]
    seed: int | None = None
    leaks: str = DEFAULTS["leaks"]
    apply: tuple[str, ...] = ()
    replay: str | None = None
    strict: bool = False
    fixtures: str | None = None  # None: shared for marked tests, per-worker under apply
    timeout_cap: str | None = None  # "off", seconds or "<n>x"; None: 10x under apply
    detect_unsafe: bool = True  # run thread-unsafe tests serially in thread-like modes


def _parse_int_text(name: str, text: str, allow_auto: bool = False,
                    minimum: int = 1, bounded: bool = True) -> int:
    if allow_auto and text.strip() == "auto":
        return usable_cpus()
    from . import parsing

    try:
        return parsing.integer(text, minimum, parsing.MAX_INT if bounded else None, text=True)
    except parsing.NumberError as exc:
        if exc.reason != "text":  # digits, out of range
            raise SpecError(f"{name}={_shown(text)}: {exc}") from None
        raise SpecError(
            f"{name}={_shown(text)}: expected an integer"
            + (" or 'auto'" if allow_auto else "")) from None


def settings_from_values(values: Mapping[str, str | None]) -> Settings:
    """Build Settings from raw option strings (``None`` = not given).

    ``values`` maps the names in SETTINGS_OPTIONS to the CLI value if given,
    else the ini value if set, else None.
    """
    kwargs: dict[str, Any] = {}
    text = values.get("workers")
    if text:
        kwargs["workers"] = _parse_int_text("--concurrency-workers", text, allow_auto=True)
    for name in ("iterations", "schedules"):
        text = values.get(name)
        if text:
            kwargs[name] = _parse_int_text(f"--concurrency-{name}", text, bounded=False)
    text = values.get("seed")
    if text:
        kwargs["seed"] = _parse_int_text("--concurrency-seed", text, minimum=0)
    text = values.get("timeout")
    if text:
        kwargs["timeout"] = _cli_seconds("--concurrency-timeout", text)
    choices: dict[str, Callable[[], Collection[str]]] = {
        "start_method": lambda: START_METHODS, "strategy": _strategies,
        "leaks": lambda: LEAK_POLICIES}
    for name, valid in choices.items():
        text = values.get(name)
        if text:
            kwargs[name] = _choice(f"--concurrency-{name.replace('_', '-')}", text, valid())
    text = values.get("apply")
    if text:
        kwargs["apply"] = check_modes(text, "--concurrency-apply")
    text = values.get("replay")
    if text:
        from .explore import token

        try:
            token.decode(text)  # a token that cannot be replayed stops the session now
        except token.TokenError as exc:
            raise SpecError(f"--concurrency-replay={_shown(text)}: {exc}") from None
        kwargs["replay"] = text.strip()
    text = values.get("fixtures")
    if text:
        kwargs["fixtures"] = _choice("--concurrency-fixtures", text.strip(), FIXTURE_MODES)
    text = values.get("timeout_cap")
    if text:
        timeout_cap(text.strip(), 1.0, "--concurrency-timeout-cap")  # checked once, here
        kwargs["timeout_cap"] = text.strip()
    return Settings(**kwargs)


def timeout_cap(text: str | None, timeout: float, name: str = "--concurrency-timeout-cap",
                applied: bool = False) -> float:
    """Seconds a run still making progress at ``timeout`` may go on until: ``off``
    (fail at the timeout), a number of seconds, or a multiple of the timeout
    (``10x``); without a value, 10x for tests run by --concurrency-apply and
    ``off`` for marked ones, whose timeout was chosen for them."""
    if text is None:
        return min(MAX_TIMEOUT, timeout * (TIMEOUT_CAP_FACTOR if applied else 1))
    if text == "off":
        return timeout
    from . import parsing

    try:
        if text.endswith("x"):
            factor = parsing.real(text[:-1], minimum=1, infinite=True, text=True)
            return min(MAX_TIMEOUT, timeout * factor)
        return max(timeout, _cli_seconds(name, text))
    except (parsing.NumberError, SpecError):
        raise SpecError(f"{name}={_shown(text)}: expected 'off', seconds, or a "
                        "multiple of the timeout such as '10x'") from None


def _cli_seconds(name: str, text: str) -> float:
    """Seconds from the command line or ini file: a number > 0 or ``inf``; above
    MAX_TIMEOUT clamped to it."""
    from . import parsing

    try:
        number = parsing.real(text, above=0, infinite=True, text=True,
                              what="a number of seconds")
    except parsing.NumberError as exc:
        raise SpecError(f"{name}={_shown(text)}: {exc}") from None
    return min(number, MAX_TIMEOUT)


# ---------------------------------------------------------------- resolve


def marker_kwargs(markers: Iterable[pytest.Mark]) -> dict[str, Any]:
    """Merge ``concurrency`` markers, closest (function) last so it wins."""
    merged: dict[str, Any] = {}
    for mark in reversed(list(markers)):
        if mark.args:
            raise SpecError(
                f"positional arguments {_shown(mark.args)} are not accepted; "
                f"use keywords, e.g. modes={_shown(list(mark.args))}"
            )
        merged.update(mark.kwargs)
    return merged


def resolve(kwargs: Mapping[str, Any], settings: Settings,
            applied: bool = False) -> tuple[RunSpec, ...]:
    """One RunSpec per requested mode, or SpecError naming the bad argument.
    ``applied``: the test is concurrent by --concurrency-apply, not by a marker."""
    unknown = sorted(set(kwargs) - set(MARKER_ARGS))
    if unknown:
        raise SpecError(
            f"unknown argument {unknown[0]!r}={_shown(kwargs[unknown[0]])}; "
            f"valid arguments are {', '.join(MARKER_ARGS)}"
        )
    modes = check_modes(kwargs.get("modes", ("thread",)))

    def given(name: str, check: Callable[[str, Any], _T], fallback: _T) -> _T:
        value = kwargs.get(name)
        return fallback if value is None else check(name, value)

    workers = given("workers", _int, settings.workers)
    iterations = given("iterations", _count, settings.iterations)
    processes = given("processes", _int, None)
    threads = given("threads", _int, None)
    timeout = given("timeout", _seconds, settings.timeout)
    start_method = given(
        "start_method", lambda n, v: _choice(n, v, START_METHODS),
        settings.start_method or default_start_method(),
    )
    schedules = given("schedules", _count, settings.schedules)
    strategy = given("strategy", lambda n, v: _choice(n, v, _strategies()), settings.strategy)
    seed = _seed("seed", kwargs["seed"]) if kwargs.get("seed") is not None else settings.seed
    instrument = _instrument(kwargs.get("instrument", ()))
    leaks = given("leaks", lambda n, v: _choice(n, v, LEAK_POLICIES), settings.leaks)
    fixtures = given("fixtures", lambda n, v: _choice(n, v, FIXTURE_MODES),
                     settings.fixtures or ("per-worker" if applied else "shared"))
    lock_order = given("lock_order", lambda n, v: _choice(n, v, _lock_order_policies()), None)
    if lock_order not in (None, "ignore") and "explore" not in modes:
        raise SpecError(
            f"lock_order={_shown(lock_order)}: lock order is checked in explore mode "
            "only (thread, process and hybrid runs do not see lock acquisitions); add "
            "'explore' to modes")

    common: dict[str, Any] = dict(
        iterations=iterations, timeout=timeout, start_method=start_method,
        schedules=schedules, strategy=strategy, seed=seed, instrument=instrument, leaks=leaks,
        fixtures=fixtures, timeout_cap=timeout_cap(settings.timeout_cap, timeout,
                                                   applied=applied))
    specs: list[RunSpec] = []
    for mode in modes:
        processes_, threads_ = layout(mode, kwargs.get("workers") or None, workers,
                                      processes, threads)
        specs.append(RunSpec(mode, processes_ * threads_, processes=processes_,
                             threads=threads_, lock_order=(lock_order or "fail") if
                             mode == "explore" else "ignore", **common))
    _check_layouts(specs, kwargs)
    return tuple(specs)


def layout(mode: str, asked: int | None, workers: int, processes: int | None = None,
           threads: int | None = None) -> tuple[int, int]:
    """(processes, threads per process) of a mode: ``asked`` workers given
    explicitly, else ``workers`` (the option's or the default)."""
    if mode == "hybrid":
        return processes or 2, threads or max(1, workers // 2)
    if mode == "process":
        return workers, 1
    if mode == "explore":
        return 1, asked or EXPLORE_WORKERS
    return 1, workers


def for_workers(run_spec: RunSpec, n: int) -> RunSpec:
    """``run_spec`` laid out for exactly ``n`` workers running once each (one per
    actor of ``run_actors``); hybrid mode keeps its threads per process if they
    divide ``n``, else runs one thread per process."""
    threads = run_spec.threads if run_spec.mode == "hybrid" and n % run_spec.threads == 0 \
        else 1 if run_spec.mode == "hybrid" else None
    processes_, threads_ = layout(run_spec.mode, n, n, n // threads if threads else None,
                                  threads)
    return dataclasses.replace(run_spec, workers=processes_ * threads_, processes=processes_,
                               threads=threads_, iterations=1)


def _check_layouts(specs: Sequence[RunSpec], kwargs: Mapping[str, Any]) -> None:
    """SpecError naming the argument when a layout asks for more threads or
    processes than can be run."""
    threads, processes = thread_limit(), process_limit()
    workers = "workers" if kwargs.get("workers") is not None else "--concurrency-workers"
    for run_spec in specs:
        if run_spec.mode == "hybrid":
            _within("processes" if kwargs.get("processes") else workers,
                    run_spec.processes, "processes", processes)
            _within("threads" if kwargs.get("threads") else workers,
                    run_spec.threads, "threads in one process", threads)
        elif run_spec.mode == "process":
            _within(workers, run_spec.processes, "processes", processes)
        else:
            _within(workers, run_spec.threads, "threads in one process", threads)


# ---------------------------------------------------------------- pytest glue


SETTINGS = pytest.StashKey[Settings]()

SPEC_ARG = "_concurrency_spec"  # the parametrized argument that makes one item per mode
SPEC = pytest.StashKey[RunSpec]()  # a concurrent item's RunSpec, stored at collection
# (parent nodeid, function name) -> the problem of its marker, reported at its setup
INVALID = pytest.StashKey[dict[tuple[str, str], str]]()


def spec_of(node: pytest.Item) -> RunSpec | None:
    """The RunSpec of a concurrent test item (None for any other item)."""
    return node.stash.get(SPEC, None)


def tb_style(config: pytest.Config) -> str:
    style = config.getoption("tbstyle", "auto")
    return "long" if style == "auto" else style


def read_settings(config: pytest.Config) -> Settings:
    """CLI value if given, else ini value; raises SpecError (or OptionError)
    naming the option, for every option of the plugin's, read now or later."""
    options.check_flags(config)
    settings = settings_from_values({name: options.value(config, name)
                                     for name in SETTINGS_OPTIONS})
    return dataclasses.replace(settings, strict=options.flag(config, "strict"),
                               detect_unsafe=options.flag(config, "detect_unsafe"))


def parse_budget(markers: Iterable[pytest.Mark]) -> tuple[Limit, ...]:
    """The limits of ``concurrency_budget`` markers, closest marker winning per key."""
    merged: dict[str, Any] = {}
    for mark in reversed(list(markers)):
        if mark.args:
            raise SpecError(
                "concurrency_budget takes keywords only, got positional "
                f"{_shown(mark.args)}"
            )
        merged.update(mark.kwargs)
    if not merged:
        return ()
    from . import budget

    try:
        return budget.parse(merged)
    except budget.BudgetError as exc:
        raise SpecError(str(exc)) from None


def specs_for(markers: Iterable[pytest.Mark], settings: Settings,
              budgets: Iterable[pytest.Mark] = ()) -> tuple[RunSpec, ...] | None:
    """The specs of a test with these ``concurrency`` markers (None: not concurrent)."""
    limits = parse_budget(budgets)
    markers = list(markers)
    if not markers:
        if not settings.apply:
            return None
        specs = resolve({"modes": settings.apply}, settings, applied=True)
    else:
        specs = resolve(marker_kwargs(markers), settings)
    return tuple(dataclasses.replace(s, budget=limits, strict=settings.strict)
                 for s in specs)
