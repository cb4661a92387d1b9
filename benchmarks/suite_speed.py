"""Fast per test: whole pytest runs of trivial suites under the plugin, against
the alternatives a user would otherwise reach for.

    python benchmarks/suite_speed.py [--rounds N] [--json PATH]

Three comparisons, every variant a ``python -m pytest`` subprocess, all of them
interleaved in ONE run (every round runs every variant once, the order rotated
each round, so drift in machine load hits all alike):

* thread: N trivial tests (``def test_n(): pass``) with 8 threads per test,
  ``--concurrency-apply thread --concurrency-workers 8`` against
  pytest-run-parallel's ``--parallel-threads 8`` (each run disables the other
  plugin).  Target: ours at most 1.0x.
* process: M trivial tests with 4 processes per test,
  ``--concurrency-apply process --concurrency-workers 4`` against the same
  tests each doing a bare ``os.fork()``/``os.waitpid()`` of 4 children
  (``-p no:concurrency``).  Target: at most 1.5x.
* unmarked: K trivial tests that nothing makes concurrent, with the plugin
  installed against ``-p no:concurrency``: what a suite pays for having the
  plugin before it asks for anything.  Target: at most 1.02x.

A plain run of each suite (no concurrency at all) gives the per-test overhead:
``(median(variant) - median(plain)) / tests``.  Each ratio is
``median(ours) / median(theirs)`` of the subprocess's wall time; pytest's own
"N passed in X s" (session start to end: no interpreter start-up or plugin
import) is reported beside it.  This is a measurement, not a test: no test
asserts on timings, and the exit status is always 0.

See benchmarks/README.md for the method and the last recorded run.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import machine  # benchmarks/machine.py, next to this script

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

THREAD_TARGET = 1.0   # ours at most 1.0x pytest-run-parallel
PROCESS_TARGET = 1.5  # ours at most 1.5x bare os.fork/os.waitpid in the test
UNMARKED_TARGET = 1.02  # an unmarked suite at most 2% slower with the plugin installed

PASSED = re.compile(r"(\d+) passed.* in ([0-9.]+)s")


# ---------------------------------------------------------------- suites


def write_suite(directory: str, tests: int, body: str = "    pass\n",
                header: str = "") -> str:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "pytest.ini"), "w") as f:
        f.write("[pytest]\n")  # so that nothing above the temp dir is read
    path = os.path.join(directory, "test_suite.py")
    with open(path, "w") as f:
        f.write(header)
        f.writelines(f"\n\ndef test_{i}():\n{body}" for i in range(tests))
    return path


FORK_HEADER = '''import os


def fork_and_wait(count):
    """What process mode does, by hand: fork the workers, each runs the body
    (nothing) and exits; wait for all of them."""
    pids = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
'''


# ---------------------------------------------------------------- harness


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Variant:
    """One pytest command, run in a subprocess from the suite's directory."""

    def __init__(self, name: str, directory: str, args: list[str], env: dict[str, str],
                 expect: int) -> None:
        self.name = name
        self.directory = directory
        self.args = args
        self.command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--rootdir", directory, *args]
        self.env = env
        self.expect = expect
        self.wall: list[float] = []
        self.session: list[float] = []

    def run(self, extra: tuple[str, ...] = ()) -> tuple[float, str]:
        start = time.perf_counter()
        proc = subprocess.run(self.command + list(extra), cwd=self.directory, env=self.env,
                              capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{self.name}: pytest exited with {proc.returncode}:\n"
                               f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return elapsed, proc.stdout

    def sample(self) -> tuple[float, float]:
        elapsed, out = self.run()
        found = PASSED.findall(out)
        if not found or int(found[-1][0]) != self.expect:
            raise RuntimeError(f"{self.name}: expected {self.expect} passed:\n{out[-3000:]}")
        return elapsed, float(found[-1][1])

    def shell(self) -> str:
        shown = ["python" if a == sys.executable else a for a in self.command]
        return " ".join(a for a in shown if a not in ("--rootdir", self.directory))


def interleave(variants: list[Variant], rounds: int, warmup: int) -> None:
    for r in range(warmup + rounds):
        k = r % len(variants)
        for variant in variants[k:] + variants[:k]:
            gc.collect()
            wall, session = variant.sample()
            if r >= warmup:
                variant.wall.append(wall)
                variant.session.append(session)


def check_setup(variants: dict[str, Variant], thread_tests: int, process_tests: int,
                thread_workers: int) -> None:
    """Each variant really does what its name says, before anything is timed."""
    for name, kind in (("thread: concurrency", "[thread]"),
                       ("process: concurrency", "[process]"),
                       ("thread: concurrency @base", "[thread]"),
                       ("process: concurrency @base", "[process]")):
        if name in variants:
            _, out = variants[name].run(("--collect-only",))
            want = thread_tests if kind == "[thread]" else process_tests
            variants[name].sample()  # and it passes
            if out.count(kind) != want:
                raise RuntimeError(f"{name}: expected {want} {kind} items:\n{out[-2000:]}")
    if "thread: run-parallel" in variants:
        _, out = variants["thread: run-parallel"].run()
        if f"Collected {thread_tests} items to run in parallel" not in out \
                and "All tests were run in parallel" not in out:
            raise RuntimeError(f"pytest-run-parallel did not run the tests with "
                               f"{thread_workers} threads:\n{out[-2000:]}")


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15,
                        help="interleaved rounds per variant (default 15)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="rounds run first and thrown away (default 1)")
    parser.add_argument("--thread-tests", type=int, default=200)
    parser.add_argument("--thread-workers", type=int, default=8)
    parser.add_argument("--process-tests", type=int, default=50)
    parser.add_argument("--process-workers", type=int, default=4)
    parser.add_argument("--unmarked-tests", type=int, default=2000)
    parser.add_argument("--only", choices=("thread", "process", "unmarked"),
                        help="run one of the three comparisons")
    parser.add_argument("--baseline-tree", metavar="DIR",
                        help="also time the plugin of another checkout (say, `git archive "
                             "HEAD~3 | tar -x -C DIR`) in the same interleave: before/after "
                             "rows and ratios, marked @base")
    parser.add_argument("--json", metavar="PATH", help="also write every number here")
    args = parser.parse_args(argv)

    run_parallel = importlib.util.find_spec("pytest_run_parallel") is not None
    notes = []
    with tempfile.TemporaryDirectory(prefix="suite-speed-") as tmp:
        # This machine sets PYTHONDONTWRITEBYTECODE: without a bytecode cache every
        # run would recompile pytest, its plugins and ours, which an installed
        # package never does.  The cache lives in the temp dir, not the checkout.
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONDONTWRITEBYTECODE", "PYTEST_ADDOPTS",
                            "PYTEST_DISABLE_PLUGIN_AUTOLOAD")}
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
        no_rp = ["-p", "no:run-parallel"] if run_parallel else []
        base_env = dict(env)
        if args.baseline_tree:
            base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [
                os.path.abspath(args.baseline_tree), os.environ.get("PYTHONPATH")]))
        tn, tw = args.thread_tests, args.thread_workers
        pn, pw = args.process_tests, args.process_workers
        thread_dir = os.path.join(tmp, "thread")
        process_dir = os.path.join(tmp, "process")
        fork_dir = os.path.join(tmp, "fork")
        unmarked_dir = os.path.join(tmp, "unmarked")
        write_suite(unmarked_dir, args.unmarked_tests)
        write_suite(thread_dir, tn)
        write_suite(process_dir, pn)
        write_suite(fork_dir, pn, body=f"    fork_and_wait({pw})\n", header=FORK_HEADER)

        variants: dict[str, Variant] = {}
        if args.only in (None, "thread"):
            variants["thread: concurrency"] = Variant(
                "thread: concurrency", thread_dir,
                ["--concurrency-apply", "thread", "--concurrency-workers", str(tw), *no_rp],
                env, tn)
            if run_parallel:
                variants["thread: run-parallel"] = Variant(
                    "thread: run-parallel", thread_dir,
                    ["--parallel-threads", str(tw), "-p", "no:concurrency"], env, tn)
            else:
                notes.append("pytest-run-parallel is not installed (pip install "
                             "pytest-run-parallel): its row and ratio are left out")
            if args.baseline_tree:
                variants["thread: concurrency @base"] = Variant(
                    "thread: concurrency @base", thread_dir,
                    variants["thread: concurrency"].args, base_env, tn)
            variants["thread: plain"] = Variant(
                "thread: plain", thread_dir, ["-p", "no:concurrency", *no_rp], env, tn)
        if args.only in (None, "process"):
            variants["process: concurrency"] = Variant(
                "process: concurrency", process_dir,
                ["--concurrency-apply", "process", "--concurrency-workers", str(pw), *no_rp],
                env, pn)
            if args.baseline_tree:
                variants["process: concurrency @base"] = Variant(
                    "process: concurrency @base", process_dir,
                    variants["process: concurrency"].args, base_env, pn)
            variants["process: bare fork"] = Variant(
                "process: bare fork", fork_dir, ["-p", "no:concurrency", *no_rp], env, pn)
            variants["process: plain"] = Variant(
                "process: plain", process_dir, ["-p", "no:concurrency", *no_rp], env, pn)

        if args.only in (None, "unmarked"):
            variants["unmarked: concurrency"] = Variant(
                "unmarked: concurrency", unmarked_dir, [*no_rp], env, args.unmarked_tests)
            variants["unmarked: plain"] = Variant(
                "unmarked: plain", unmarked_dir, ["-p", "no:concurrency", *no_rp], env,
                args.unmarked_tests)

        info = {**machine.describe(), "commit": machine.commit(),
                "rounds": args.rounds, "warmup": args.warmup,
                "load_before": machine.load(),
                "commands": {name: v.shell() for name, v in variants.items()}}
        print(f"# {info['date']}  commit {info['commit']}  Python {info['python']}  "
              f"{info['platform']}  cpus={info['cpus']} (usable {info['usable_cpus']})  "
              f"rounds={args.rounds}  load {info['load_before']}")
        for name, v in variants.items():
            print(f"#   {name:<22} {v.shell()}")
        for note in notes:
            print(f"# {note}")

        check_setup(variants, tn, pn, tw)
        started = time.perf_counter()
        interleave(list(variants.values()), args.rounds, args.warmup)
        info["seconds"] = round(time.perf_counter() - started, 1)
        info["load_after"] = machine.load()

    rows = [{"variant": v.name, "median_s": statistics.median(v.wall),
             "p10_s": pct(v.wall, 0.1), "p90_s": pct(v.wall, 0.9),
             "session_median_s": statistics.median(v.session),
             "wall": v.wall, "session": v.session} for v in variants.values()]
    by = {row["variant"]: row for row in rows}
    comparisons = [("thread: concurrency", "thread: run-parallel", THREAD_TARGET),
                   ("process: concurrency", "process: bare fork", PROCESS_TARGET),
                   ("unmarked: concurrency", "unmarked: plain", UNMARKED_TARGET),
                   ("thread: concurrency @base", "thread: run-parallel", None),
                   ("process: concurrency @base", "process: bare fork", None),
                   ("thread: concurrency", "thread: concurrency @base", None),
                   ("process: concurrency", "process: concurrency @base", None)]
    ratios = []
    for name, base, target in comparisons:
        if name in by and base in by:
            for measure, key in (("wall", "median_s"), ("pytest 'in Xs'", "session_median_s")):
                ratio = by[name][key] / by[base][key]
                judged = target is not None and measure == "wall"
                ratios.append({"variant": name, "baseline": base, "measure": measure,
                               "ratio": ratio, "target": target if judged else None,
                               "verdict": ("PASS" if ratio <= target else "FAIL")
                               if judged and target is not None else ""})
    overheads = []
    for name, plain, tests, workers in (
            ("thread: concurrency", "thread: plain", tn, tw),
            ("thread: run-parallel", "thread: plain", tn, tw),
            ("thread: concurrency @base", "thread: plain", tn, tw),
            ("process: concurrency @base", "process: plain", pn, pw),
            ("process: concurrency", "process: plain", pn, pw),
            ("process: bare fork", "process: plain", pn, pw)):
        if name in by and plain in by:
            overheads.append({
                "variant": name, "tests": tests, "workers": workers,
                "per_test_ms": (by[name]["median_s"] - by[plain]["median_s"]) / tests * 1e3,
                "per_test_session_ms": (by[name]["session_median_s"]
                                        - by[plain]["session_median_s"]) / tests * 1e3})

    print()
    print(f"{'variant':<27} {'median s':>9} {'p10 s':>7} {'p90 s':>7} {'pytest in s':>12}")
    for row in rows:
        print(f"{row['variant']:<27} {row['median_s']:>9.3f} {row['p10_s']:>7.3f} "
              f"{row['p90_s']:>7.3f} {row['session_median_s']:>12.3f}")
    print()
    print(f"{'ratio (median / median)':<60} {'measure':<15} {'ratio':>6} {'target':>7}  result")
    for r in ratios:
        target = f"<= {r['target']:g}" if r["target"] is not None else "-"
        print(f"{r['variant'] + ' / ' + r['baseline']:<60} {r['measure']:<15} "
              f"{r['ratio']:>5.2f}x {target:>7}  {r['verdict'] or 'info'}")
    print()
    print("per-test cost over a plain run (median wall / pytest 'in Xs' difference / tests):")
    for o in overheads:
        print(f"  {o['variant']:<27} {o['per_test_ms']:6.2f} ms  "
              f"({o['per_test_session_ms']:.2f} ms in pytest's own time), "
              f"{o['tests']} tests x {o['workers']} workers")
    for a, b in (("thread: concurrency", "thread: run-parallel"),
                 ("process: concurrency", "process: bare fork")):
        oa = next((o for o in overheads if o["variant"] == a), None)
        ob = next((o for o in overheads if o["variant"] == b), None)
        if oa and ob:
            print(f"  {a} - {b}: {oa['per_test_ms'] - ob['per_test_ms']:+.2f} ms per test")
    print(f"# {info['seconds']} s, load before {info['load_before']}, after {info['load_after']}")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "notes": notes, "variants": rows, "ratios": ratios,
                       "overheads": overheads}, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
