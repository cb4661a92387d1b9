"""What a session reports, and what it compares against: the report options
read once at configure, and the baseline they name."""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

import pytest

from .. import options

if TYPE_CHECKING:
    from .records import Baseline

REPORT_FORMATS = (".json", ".md", ".html")
DEFAULT_BASELINE = "concurrency-baseline.json"


@dataclasses.dataclass(frozen=True)
class ReportSettings:
    """What the session reports, and what it compares against."""

    reports: tuple[str, ...] = ()  # absolute paths; the format comes from the suffix
    baseline: str | None = None  # the baseline file to compare with (None: no comparing)
    save_baseline: str | None = None  # the baseline file to save this run into
    compare_fail: float | None = None  # fail a test slower than its baseline by this
    junit: bool = False  # key metrics as JUnit user_properties
    step_summary: bool = True  # append Markdown to $GITHUB_STEP_SUMMARY when it is set

    @property
    def threshold(self) -> float:
        from .compare import DEFAULT_THRESHOLD

        return self.compare_fail if self.compare_fail is not None else DEFAULT_THRESHOLD


COLLECTOR = "concurrency-report"  # the plugin name of the session's report collector
REPORTS = pytest.StashKey[ReportSettings]()
BASELINE: pytest.StashKey[Baseline] = pytest.StashKey()  # the baseline read at configure
MACHINE = pytest.StashKey[str]()  # this machine's baseline key, worked out once


def read(config: pytest.Config) -> ReportSettings:
    """The report options; raises OptionError naming a bad one."""
    reports = options.paths(config, "report")
    for path in reports:
        suffix = os.path.splitext(path)[1].lower()
        if suffix not in REPORT_FORMATS:
            raise options.OptionError(
                f"--concurrency-report={path!r}: unknown format {suffix or '(none)'!r}; use "
                f"a path ending in {', '.join(REPORT_FORMATS)}")
    text = options.value(config, "compare_fail")
    threshold = None
    if text:
        from . import compare

        try:
            threshold = compare.parse_rule(text).threshold
        except compare.CompareError as exc:
            raise options.OptionError(str(exc)) from None
    named = options.paths(config, "baseline")
    path = named[0] if named else os.path.join(str(config.rootpath), DEFAULT_BASELINE)
    save = options.flag(config, "save_baseline")
    for option, target in [*(("--concurrency-report", p) for p in reports),
                           *([("--concurrency-baseline", path)] if save else [])]:
        from . import files

        problem = files.unwritable(target)
        if problem:
            raise options.OptionError(f"{option}={target!r}: {problem}")
    return ReportSettings(
        reports=tuple(reports),
        baseline=path if (named or threshold is not None) else None,
        save_baseline=path if save else None,
        compare_fail=threshold,
        junit=options.flag(config, "junit"),
        step_summary=options.flag(config, "step_summary")
        and bool(os.environ.get("GITHUB_STEP_SUMMARY")),
    )


def configure(config: pytest.Config) -> ReportSettings:
    """Read the report options and the baseline they name into the config's stash
    (a bad file stops the session now, not after its last test)."""
    settings = config.stash[REPORTS] = read(config)
    path = settings.baseline or settings.save_baseline
    if path:
        from . import baseline, document

        try:
            stored = baseline.load(path)
        except document.ReportError as exc:
            raise options.OptionError(str(exc)) from None
        if settings.baseline:
            config.stash[BASELINE] = stored
            config.stash[MACHINE] = document.platform_info()["machine"]
    return settings
