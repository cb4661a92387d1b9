"""Point pytest-concurrency at real third-party test suites and compare it with
pytest-run-parallel.

For each suite (pinned sdists from PyPI, downloaded at run time into a cache
directory outside the repository, each with its own virtual environment) it runs,
one after the other:

1. the plain suite (``pytest -p no:concurrency -p no:run-parallel``): the reference
   that it passes;
2. the suite under this plugin (``--concurrency-apply thread --concurrency-workers 4``,
   ``-p no:run-parallel``), read from ``--concurrency-report=<json>``;
3. the suite under pytest-run-parallel (``--parallel-threads 4``, ``-p no:concurrency``),
   read from its ``-v -rA`` output.

It prints, per suite, the tests each tool flagged (failed or errored), the tests each
ran serially, the wall time of each run, and a classification of every test that
pytest-concurrency flagged: ``race`` (a concurrency problem in the library under
test), ``technique`` (the test itself shares process state across threads),
``harness`` (caused by pytest-concurrency) or ``review`` (no rule and no reviewed
entry decided it). Classifications come from the REVIEWED table below (failures read
by hand) or, failing that, from rules (known harness messages; the innermost
traceback frame outside the standard library: in the plugin, in the library's
package, or in the test tree); each line says which.

    python benchmarks/real_suites.py                     # every suite, ~2 min each
    python benchmarks/real_suites.py --suite tenacity --details
    python benchmarks/real_suites.py --json /tmp/real_suites.json
    python3.13t benchmarks/real_suites.py                # on the interpreter running it

It is a measurement, not a test: the exit status is 0 unless a suite could not be
set up. See benchmarks/README.md for the last recorded results.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent  # the checkout whose plugin is measured
RUNNER_REQUIREMENTS = ("pytest==9.2.0", "pytest-run-parallel==0.10.0")
VENV_FORMAT = 1  # bump to rebuild every cached venv


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str  # on PyPI
    version: str
    package: str  # the import package: frames in it are the library's
    deps: tuple[str, ...]  # what its tests need besides pytest, pinned
    uses: str  # what the suite exercises, for the report
    args: tuple[str, ...] = ()  # extra pytest arguments

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


SUITES = (
    Suite("structlog", "26.1.0", "structlog",
          ("pytest-asyncio==1.5.0", "time-machine==3.6.0"),
          "tmp_path, capsys/caplog, unittest.mock, pytest-asyncio (auto mode), contextvars"),
    Suite("tenacity", "9.2.1", "tenacity", ("tornado==6.6.1",),
          "unittest.TestCase with subTest, unittest.mock, asyncio loops run by the tests"),
    Suite("cachetools", "8.0.2", "cachetools", (),
          "unittest.TestCase with subTest, unittest.mock, locks and conditions"),
    Suite("python-dotenv", "1.2.4", "dotenv", ("click==8.5.1",),
          "tmp_path, monkeypatch, mock.patch.dict(os.environ), click's CliRunner, "
          "subprocesses"),
)

# ---------------------------------------------------------------- classification

CLASSES = ("race", "technique", "harness", "review")

# Harness problems found so far, by key; the reviewed table and the message rules
# point here. All were fixed (tests/test_per_worker_state.py reproduces each) and the
# reviewed entries that blamed them are gone; the message rules stay, to catch a
# regression. The last recorded run: benchmarks/README.md, "Real suites".
HARNESS = {
    "testcase-instance": "the test class instance (unittest setUp state such as tornado's "
                         "self.io_loop, attributes set on self) is shared by all workers, "
                         "while pytest makes one per test",
    "teardown-order": "per-worker fixtures are torn down in setup order, not in reverse: "
                      "fixtures that save and restore process state (os.chdir) fail and "
                      "leave the session in another directory",
    "async-fixture-kwarg": "a sync test that requests a pytest-asyncio fixture is called "
                           "with pytest-asyncio's internal _function_scoped_runner argument",
    "contextvars": "context variables leak between tests on pooled worker threads, and "
                   "what fixtures set is not visible to the body",
    "capsys-buffer": "per-worker capsys misses bytes written to sys.stdout.buffer",
    "capture-helper-threads": "per-worker capsys/caplog miss output of threads the test "
                              "starts (asyncio's default executor)",
    "timeout": "timed out on a test that passes plainly",
}

# (regex on any failure message, harness key): high-confidence rules
HARNESS_MESSAGES = (
    (r"unexpected keyword argument '_function_scoped_runner'", "async-fixture-kwarg"),
    (r"FixtureTeardownError: fixture .* failed to tear down after worker", "teardown-order"),
    (r"timed out after \d|still running after \d", "timeout"),
)

# Flags classified by reading the failure: (suite, test id pattern, class, key or note).
# For "harness" the last field is a HARNESS key.
REVIEWED: tuple[tuple[str, str, str, str], ...] = (
    # structlog
    ("structlog", "tests/processors/test_processors.py::TestCallsiteParameterAdder::test_async*",
     "technique", "structlog.configure() is process-global: every worker logs through the "
                  "last worker's logger factory (and its StringIO)"),
    ("structlog", "tests/processors/test_renderers.py::TestTimeStamper::*", "technique",
     "@time_machine.travel patches the process-wide clock: the first worker to finish "
     "ends the travel for all (neither tool detects time_machine)"),
    ("structlog", "tests/test_testing.py::*", "technique",
     "structlog.testing.capture_logs() swaps the process-global processor chain"),
    ("structlog", "tests/test_config.py::*", "technique",
     "structlog's configuration is process-global (configure/reset_defaults)"),
    ("structlog", "tests/test_output.py::test_write_locks_released_on_gc*", "technique",
     "counts the entries of the module-global WRITE_LOCKS, which other workers add to"),
    ("structlog", "tests/test_output.py::TestLoggers::test_lock*", "technique",
     "checks the module-global WRITE_LOCKS registry"),
    ("structlog", "tests/test_stdlib.py::TestLoggerFactory::test_ignores_frames", "technique",
     "walks the stack up to __main__, which a worker thread's stack does not have "
     "(assumes the main thread)"),
    ("structlog", "tests/test_stdlib.py::TestBoundLogger::test_stdlib_passthrough_methods*",
     "technique", "replaces methods of the shared logging.getLogger('Test') by hand"),
    ("structlog", "tests/test_stdlib.py::TestProcessorFormatter::*", "technique",
     "configures the root logger's handlers (process-global)"),
    ("structlog", "tests/test_stdlib.py::TestLoggerFactory::*", "technique",
     "uses the process-global logging configuration"),
    # tenacity
    ("tenacity", "tests/test_tenacity.py::TestDecoratorWrapper::test_retry_*", "race",
     "tenacity shares one statistics dict among all calls of a decorated function "
     "(wrapped_f.statistics, cleared by every call), though its docs say statistics are "
     "local to the calling thread: another thread's call clears or overwrites it "
     "(KeyError 'idle_for', wrong attempt_number); reproduced with bare threads"),
    ("tenacity", "tests/test_asyncio.py::TestAsyncio::test_retry*", "race",
     "the same shared statistics dict, in AsyncRetrying (KeyError 'idle_for')"),
    ("tenacity", "tests/test_asyncio.py::TestContextManager::test_sleeps", "technique",
     "asserts that the retry loop took under 1.1 ms of wall time: timing-sensitive, fails "
     "whenever threads share the CPUs (under pytest-run-parallel too)"),
    ("tenacity", "tests/test_tenacity.py::TestStatistics*", "race",
     "reads wrapped_f.statistics, shared by all threads (see TestDecoratorWrapper)"),
    ("tenacity", "tests/test_tenacity.py::TestBeforeAfterAttempts::test_before_sleep_log_*",
     "technique", "logs to logging.getLogger(self.id()), one logger shared by all workers, "
                  "and counts the records its handler got"),
    ("tenacity", "tests/test_tornado.py::TestTornado::test_old_tornado", "technique",
     "deletes tornado.gen.is_coroutine_function by hand and puts it back"),
    # cachetools
    ("cachetools", "tests/test_cachedmethod.py::*::test_class_call_keyword_receiver", "race",
     "the class-level @cachedmethod wrapper initialises its receiver name lazily and "
     "publishes '' before the real name: a concurrent first call pops kwargs[''] and raises "
     "'Cannot call @cachedmethod through the class without an instance'; reproduced with "
     "bare threads"),
    # python-dotenv
    ("python-dotenv", "tests/test_cli.py::*", "technique",
     "click's CliRunner.invoke swaps sys.stdin/stdout/stderr process-wide, and the cli "
     "fixture chdirs into its own directory (os.chdir is process-wide)"),
)

FRAME = re.compile(r"^(\S[^:\n]*\.py):(\d+): ?(\w*)$", re.M)


def review_entry(suite: str, test: str) -> tuple[str, str] | None:
    for name, pattern, cls, what in REVIEWED:
        if name == suite and fnmatch.fnmatchcase(test, pattern):
            return cls, what
    return None


def classify(suite: Suite, test: str, failures: list[dict[str, Any]],
             stdlib: str, plain_failed: bool) -> dict[str, Any]:
    """One of CLASSES for a test that pytest-concurrency flagged, with where it came from."""
    if plain_failed:
        return {"class": "plain", "source": "fails in the plain run too", "note": ""}
    text = "\n".join(f.get("message", "") + "\n" + f.get("summary", "") for f in failures)
    for pattern, key in HARNESS_MESSAGES:
        if re.search(pattern, text):
            return {"class": "harness", "source": "rule: known harness message",
                    "note": key}
    reviewed = review_entry(suite.name, test)
    if reviewed is not None:
        return {"class": reviewed[0], "source": "reviewed", "note": reviewed[1]}
    first = failures[0].get("message", "") if failures else ""
    frames = [m.group(1) for m in FRAME.finditer(first)]
    for path in reversed(frames):  # innermost first
        if path.startswith(stdlib) or "/_pytest/" in path or "/pluggy/" in path:
            continue
        if "pytest_concurrency/" in path:
            return {"class": "harness", "source": "rule: innermost frame in the plugin",
                    "note": path}
        if f"site-packages/{suite.package}/" in path or path.startswith(f"{suite.package}/") \
                or f"/src/{suite.package}/" in path or path.startswith(f"src/{suite.package}/"):
            return {"class": "race", "source": "rule: innermost frame in the library",
                    "note": path}
        if "site-packages/" not in path:
            return {"class": "technique", "source": "rule: innermost frame in the tests",
                    "note": path}
        return {"class": "review", "source": "rule: innermost frame in a dependency",
                "note": path}
    return {"class": "review", "source": "no rule matched", "note": ""}


# ---------------------------------------------------------------- environments


def run_quiet(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}")
    return done


def sdist(suite: Suite, cache: Path) -> Path:
    """The suite's sdist from PyPI, downloaded once into the cache."""
    where = cache / "sdists"
    where.mkdir(parents=True, exist_ok=True)
    wanted = re.sub(r"[-_.]+", "_", suite.name).lower() + f"_{suite.version}.tar.gz"

    def cached() -> Path | None:
        return next((p for p in where.glob("*.tar.gz")
                     if re.sub(r"[-_]+", "_", p.name).lower() == wanted), None)

    found = cached()
    if found is None:
        print(f"  downloading the {suite.requirement} sdist", flush=True)
        # --no-binary for this package only: its build dependencies may come as wheels
        run_quiet([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                   suite.name, "--disable-pip-version-check", "-q", "-d", str(where),
                   suite.requirement])
        found = cached()
    if found is None:
        raise SystemExit(f"pip downloaded no sdist of {suite.requirement} into {where}")
    return found


def venv_for(suite: Suite, archive: Path, cache: Path, rebuild: bool) -> Path:
    """A virtual environment with the suite's package (built from its sdist), its test
    dependencies, both plugins, and this checkout's plugin installed editable."""
    tag = f"{sys.implementation.name}{sys.version_info[0]}.{sys.version_info[1]}" + (
        "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else "")  # python3.13t
    venv = cache / "venvs" / f"{suite.name}-{suite.version}-{tag}"
    stamp = {"format": VENV_FORMAT, "python": sys.executable, "plugin": str(ROOT),
             "requirements": [*RUNNER_REQUIREMENTS, *suite.deps, archive.name]}
    stamp_file = venv / "real_suites.json"
    if not rebuild and stamp_file.is_file():
        try:
            if json.loads(stamp_file.read_text()) == stamp:
                return venv
        except ValueError:
            pass
    print(f"  making {venv}", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    run_quiet([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    run_quiet([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
               *RUNNER_REQUIREMENTS, *suite.deps, str(archive), "-e", str(ROOT)])
    stamp_file.write_text(json.dumps(stamp))
    return venv


def unpack(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:  # pragma: no cover - Pythons without extraction filters
            tar.extractall(into)  # noqa: S202 - a pinned sdist from PyPI
    (top,) = [p for p in into.iterdir() if p.is_dir()]
    return top


# ---------------------------------------------------------------- runs

VARIANTS = ("plain", "concurrency", "run-parallel")
LABELS = {"plain": "plain pytest", "concurrency": "pytest-concurrency",
          "run-parallel": "pytest-run-parallel"}


@dataclasses.dataclass
class Run:
    variant: str
    wall: float
    returncode: int | None  # None: killed at the time limit
    counts: dict[str, int]
    flagged: dict[str, str]  # test id -> one-line reason
    serial: dict[str, str]  # test id -> why it ran serially
    failures: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    log: str = ""


def pytest_command(variant: str, venv: Path, out: Path, workers: int) -> list[str]:
    cmd = [str(venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-v",
           "-rA", f"--basetemp={out / 'basetemp'}", f"--junitxml={out / 'junit.xml'}"]
    if variant == "plain":
        return [*cmd, "-p", "no:concurrency", "-p", "no:run-parallel"]
    if variant == "concurrency":
        return [*cmd, "-p", "no:run-parallel", "--concurrency-apply", "thread",
                "--concurrency-workers", str(workers), "--concurrency-step-summary", "off",
                f"--concurrency-report={out / 'report.json'}"]
    return [*cmd, "-p", "no:concurrency", "--parallel-threads", str(workers)]


def environment(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "COV_CORE_")) and k not in (
               "PYTHONPATH", "GITHUB_STEP_SUMMARY", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               COLUMNS="200", PY_COLORS="0", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def run_variant(variant: str, suite: Suite, venv: Path, archive: Path, work: Path,
                workers: int, limit: float) -> Run:
    out = work / variant
    out.mkdir()
    source = unpack(archive, out / "src")  # a fresh copy: tests may write into it
    cmd = [*pytest_command(variant, venv, out, workers), *suite.args]
    log_path = out / "pytest.log"
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=source, env=environment(venv), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            returncode: int | None = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            returncode = None
    wall = time.perf_counter() - start
    text = log_path.read_text(errors="replace")
    run = Run(variant, wall, returncode, final_counts(text), {}, {}, log=str(log_path))
    known = progress_ids(text)
    for word, test, message in summary_lines(text, known):
        if word in ("FAILED", "ERROR", "PARALLEL FAILED") or word.startswith("FAILED ("):
            test = base_id(test) if variant == "concurrency" else test
            run.flagged.setdefault(test, message)
    if variant == "concurrency":
        read_report(run, out / "report.json")
    elif variant == "run-parallel":
        run.serial.update(run_parallel_serial(text))
    return run


def base_id(nodeid: str) -> str:
    """'t.py::test[thread-1]' -> 't.py::test[1]' (the mode is pytest-concurrency's)."""
    head, bracket, params = nodeid.partition("[")
    if not bracket:
        return nodeid
    first, dash, rest = params[:-1].partition("-")
    if first != "thread":
        return nodeid
    return f"{head}[{rest}]" if dash else head  # 'test[thread-]' is 'test[]'


def final_counts(text: str) -> dict[str, int]:
    lines = [line for line in text.splitlines() if re.match(r"^=+ .*\d+ \w+.* in [\d.]+s", line)]
    counts: dict[str, int] = {}
    if lines:
        for number, word in re.findall(r"(\d+) (\w+(?: passed)?)", lines[-1]):
            counts[{"error": "errors"}.get(word, word)] = int(number)
    return counts


PROGRESS = re.compile(r"^(\S.*?::.*?) (?:PARALLEL )?(?:PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)"
                      r"\b")


def progress_ids(text: str) -> set[str]:
    return {m.group(1) for m in map(PROGRESS.match, text.splitlines()) if m}


SUMMARY_WORDS = ("PARALLEL FAILED", "PARALLEL PASSED", "FAILED", "ERROR", "PASSED", "XPASS",
                 "XFAIL")


def summary_lines(text: str, known: set[str]) -> list[tuple[str, str, str]]:
    """(word, nodeid, message) of the short test summary."""
    _, _, summary = text.rpartition("short test summary info")
    found = []
    for line in summary.splitlines()[1:]:
        if line.startswith("="):
            break
        word = next((w for w in SUMMARY_WORDS if line.startswith(w + " ")), None)
        if word is None:
            continue
        rest = line[len(word) + 1:]
        if rest.startswith("([thread-unsafe]"):  # pytest-run-parallel: FAILED ([...]: why) id
            close = rest.find(") ")
            word, rest = f"{word} (thread-unsafe)", rest[close + 2:]
        elif rest.startswith("[thread-unsafe]"):
            continue  # PASSED [thread-unsafe]: why id
        candidates = [k for k in known if rest == k or rest.startswith(k + " - ")]
        nodeid = max(candidates, key=len) if candidates else rest.split(" - ", 1)[0]
        message = rest[len(nodeid) + 3:] if rest.startswith(nodeid + " - ") else ""
        found.append((word, nodeid, message))
    return found


def run_parallel_serial(text: str) -> dict[str, str]:
    """pytest-run-parallel's list of tests not run in parallel (printed with -v)."""
    _, _, section = text.partition("pytest-run-parallel report")
    serial = {}
    for line in section.splitlines()[1:]:
        if line.startswith("="):
            break
        m = re.match(r"^(.*?) was (?:not run in parallel|skipped): (.*)$", line)
        if m:
            serial[m.group(1)] = m.group(2)
    return serial


def read_report(run: Run, path: Path) -> None:
    if not path.is_file():
        return
    for entry in json.loads(path.read_text()).get("tests", []):
        test = base_id(entry["nodeid"])  # (the report's "test" drops an empty param id)
        if entry.get("serial") or entry.get("outcome") == "serial":
            run.serial[test] = entry.get("serial") or "serial"
        if entry.get("outcome") in ("failed", "error"):
            failures = entry.get("failures") or []
            run.failures[test] = failures
            run.flagged[test] = failures[0]["summary"] if failures else entry["outcome"]


# ---------------------------------------------------------------- one suite


def stdlib_of(venv: Path) -> str:
    done = run_quiet([str(venv / "bin" / "python"), "-c",
                      "import sysconfig; print(sysconfig.get_paths()['stdlib'])"])
    return done.stdout.strip()


def measure(suite: Suite, cache: Path, workers: int, limit: float, rebuild: bool,
            keep: bool) -> dict[str, Any]:
    print(f"\n== {suite.requirement}: {suite.uses}", flush=True)
    archive = sdist(suite, cache)
    venv = venv_for(suite, archive, cache, rebuild)
    stdlib = stdlib_of(venv)
    work = Path(tempfile.mkdtemp(prefix=f"real-suites-{suite.name}-"))
    runs: dict[str, Run] = {}
    try:
        for variant in VARIANTS:  # one after the other, so machine load hits all alike
            print(f"  running {LABELS[variant]} ...", end="", flush=True)
            runs[variant] = run_variant(variant, suite, venv, archive, work, workers, limit)
            print(f" {runs[variant].wall:.1f} s", flush=True)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    plain_failed = set(runs["plain"].flagged)
    ours = runs["concurrency"]
    classified = {
        test: {**classify(suite, test, ours.failures.get(test, []), stdlib,
                          test in plain_failed),
               "summary": ours.flagged[test]}
        for test in sorted(ours.flagged)
    }
    freeze = run_quiet([str(venv / "bin" / "python"), "-m", "pip", "freeze",
                        "--disable-pip-version-check"]).stdout.split()
    return {"suite": suite.name, "version": suite.version, "uses": suite.uses,
            "packages": freeze, "work": str(work) if keep else None,
            "runs": {v: dataclasses.asdict(r) | {"failures": None} for v, r in runs.items()},
            "classified": classified}


# ---------------------------------------------------------------- printing


def tested(run: dict[str, Any]) -> int:
    c = run["counts"]
    return sum(c.get(k, 0) for k in ("passed", "failed", "errors", "xfailed", "xpassed"))


def print_suite(result: dict[str, Any], details: bool) -> None:
    runs = result["runs"]
    print(f"\n{result['suite']} {result['version']}")
    print(f"  {'run':<22}{'wall s':>8}{'tests':>7}{'flagged':>9}{'serial':>8}  outcome line")
    for variant in VARIANTS:
        run = runs[variant]
        counts = ", ".join(f"{n} {w}" for w, n in run["counts"].items() if "warning" not in w)
        if run["returncode"] is None:
            counts = "killed at the time limit; " + counts
        serial = "-" if variant == "plain" else str(len(run["serial"]))
        print(f"  {LABELS[variant]:<22}{run['wall']:>8.1f}{tested(run):>7}"
              f"{len(run['flagged']):>9}{serial:>8}  {counts}")
    classified = result["classified"]
    tally = Counter(c["class"] for c in classified.values())
    print("  pytest-concurrency's flags: " + ", ".join(
        f"{tally[c]} {c}" for c in (*CLASSES, "plain") if tally[c]) if tally else
        "  pytest-concurrency flagged nothing")
    for test, c in classified.items():
        note = HARNESS.get(c["note"], c["note"]) if c["class"] == "harness" else c["note"]
        key = f" [{c['note']}]" if c["class"] == "harness" else ""
        print(f"    {c['class']:<9} {test}{key}")
        if details:
            print(f"              {c['source']}: {note}")
            print(f"              {c['summary'][:150]}")
    ours, theirs = runs["concurrency"], runs["run-parallel"]
    plain = set(runs["plain"]["flagged"])
    only_theirs = sorted(set(theirs["flagged"]) - set(ours["flagged"]) - plain)
    print(f"  flagged by pytest-run-parallel only: {len(only_theirs)}; by both: "
          f"{len(set(theirs['flagged']) & set(ours['flagged']))}")
    common = Counter(m.split(":")[0] if "coroutine was expected" not in m else m[:60]
                     for t, m in theirs["flagged"].items() if t not in plain)
    if common:
        print("  pytest-run-parallel's most common flags: " + "; ".join(
            f"{n}x {m[:60]}" for m, n in common.most_common(3)))
    serial_ours, serial_theirs = set(ours["serial"]), set(theirs["serial"])
    print(f"  serial in both: {len(serial_ours & serial_theirs)}; only pytest-concurrency: "
          f"{len(serial_ours - serial_theirs)}; only pytest-run-parallel: "
          f"{len(serial_theirs - serial_ours)}")
    if details:
        for test in only_theirs:
            print(f"    run-parallel only: {test} - {theirs['flagged'][test][:110]}")
        for test in sorted(serial_ours - serial_theirs):
            print(f"    serial, ours only: {test} ({ours['serial'][test]})")
        for test in sorted(serial_theirs - serial_ours):
            print(f"    serial, run-parallel only: {test} ({theirs['serial'][test]})")


def print_table(results: list[dict[str, Any]], workers: int) -> None:
    print(f"\nsummary ({workers} threads; flagged = failed or errored; serial = run once; "
          "wall = whole session)")
    head = (f"{'suite':<22}{'tests':>6}{'plain':>9} |{'ours':>5}{'serial':>7}{'wall':>8}"
            f" |{'r-p':>5}{'serial':>7}{'wall':>8} | ours: race technique harness review")
    print(head)
    for r in results:
        runs = r["runs"]
        tally = Counter(c["class"] for c in r["classified"].values())
        plain = runs["plain"]
        ok = "pass" if not plain["flagged"] else f"{len(plain['flagged'])} fail"
        cells = [f"{r['suite']} {r['version']}"[:21].ljust(22), f"{tested(plain):>6}",
                 f"{ok:>5}{plain['wall']:>3.0f}s", " |"]
        for v in ("concurrency", "run-parallel"):
            run = runs[v]
            cells += [f"{len(run['flagged']):>5}", f"{len(run['serial']):>7}",
                      f"{run['wall']:>7.0f}s", " |"]
        cells.append(f" {tally['race']:>10}{tally['technique']:>10}{tally['harness']:>8}"
                     f"{tally['review']:>7}")
        print("".join(cells))
    keys = Counter(c["note"] for r in results for c in r["classified"].values()
                   if c["class"] == "harness")
    if keys:
        print("harness problems (flags): " + "; ".join(f"{k} ({n})" for k, n in keys.items()))


def machine() -> dict[str, Any]:
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit,
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "load_average": load, "runners": list(RUNNER_REQUIREMENTS)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="suites: " + ", ".join(f"{s.name} {s.version}" for s in SUITES))
    parser.add_argument("--suite", action="append", choices=[s.name for s in SUITES],
                        help="run only this suite (repeatable; default: all)")
    parser.add_argument("--workers", type=int, default=4,
                        help="threads per test for both plugins (default 4)")
    parser.add_argument("--cache-dir", type=Path, default=Path(
        os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pytest-concurrency"
        / "real-suites", help="sdists and venvs are kept here (default: %(default)s)")
    parser.add_argument("--rebuild", action="store_true", help="remake the suites' venvs")
    parser.add_argument("--time-limit", type=float, default=600,
                        help="seconds one pytest run may take before it is killed (600)")
    parser.add_argument("--details", action="store_true",
                        help="print each flag's classification source and message, and "
                             "the tests only one tool flagged or ran serially")
    parser.add_argument("--keep", action="store_true",
                        help="keep the runs' logs and reports (their directory is printed)")
    parser.add_argument("--json", type=Path, help="write every result to this file")
    args = parser.parse_args(argv)
    cache = args.cache_dir.resolve()
    if cache == ROOT or ROOT in cache.parents:
        parser.error("--cache-dir must be outside the repository")
    info = machine()
    print(f"{info['date']}, plugin at {info['commit']} ({ROOT}), {info['python']}, "
          f"{info['platform']}, {info['cpus']} CPUs, load {info['load_average']}")
    print(f"cache: {cache}; stdlib of this Python: {sysconfig.get_paths()['stdlib']}")
    results = []
    for suite in SUITES:
        if args.suite and suite.name not in args.suite:
            continue
        results.append(measure(suite, cache, args.workers, args.time_limit, args.rebuild,
                               args.keep))
        print_suite(results[-1], args.details)
        if args.keep:
            print(f"  logs and reports: {results[-1]['work']}")
    print_table(results, args.workers)
    if args.json:
        info["load_average_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
        args.json.write_text(json.dumps({"machine": info, "workers": args.workers,
                                         "harness_problems": HARNESS, "suites": results},
                                        indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
