"""Overhead of pytest-concurrency's runners against bare threads and processes.

    python benchmarks/overhead.py [--rounds N] [--workers N] [--json PATH]

Every variant starts ``--workers`` workers that run a trivial body once and
waits for all of them.  The variants are interleaved (A, B, C, D, A, B, ...
for every round, with the order rotated each round) so that drift in machine
load hits all of them alike; each number reported is a median over rounds and
each ratio is median(plugin) / median(bare) from this one run.

A second, informative section times whole pytest runs of a generated file of
trivial tests, marked ``@pytest.mark.concurrency(modes=["thread"], workers=W)``
against the same tests unmarked, and reports the per-test overhead in ms.

See benchmarks/README.md for what the numbers mean and the last recorded run.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import machine  # benchmarks/machine.py, next to this script

# Python 3.12+ warns when forking a process that has threads; the bare
# baselines fork on purpose, exactly like the plugin's process mode.
warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork.*")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # use the checkout's plugin even when not pip-installed

THREAD_TARGET = 2.0   # plugin thread mode within 2x of bare threads
PROCESS_TARGET = 1.5  # plugin process mode (fork) within 1.5x of bare fork


def body():
    """The trivial test body every variant runs."""
    return 1


# ---------------------------------------------------------------- bare baselines


def bare_threads(workers):
    barrier = threading.Barrier(workers)
    results = [None] * workers

    def work(i):
        barrier.wait()
        results[i] = body()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _mp_work():
    body()


def bare_mp_fork(workers):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_mp_work) for _ in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return [p.exitcode for p in procs]


def _mp_barrier_work(barrier):
    barrier.wait()
    body()


def bare_mp_fork_barrier(workers):
    """Informative: what aligning the start of processes on a shared barrier costs."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(workers)
    procs = [ctx.Process(target=_mp_barrier_work, args=(barrier,))
             for _ in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return [p.exitcode for p in procs]


def bare_os_fork(workers):
    pids = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # child
            try:
                body()
            finally:
                os._exit(0)
        pids.append(pid)
    return [os.waitpid(pid, 0)[1] for pid in pids]


# ---------------------------------------------------------------- plugin runners


def plugin_variant(mode, workers):
    """A zero-argument callable running ``body`` through the plugin's runner.

    Returns (callable, None) or (None, reason) when the plugin is not usable.
    """
    try:
        from pytest_concurrency import runners
        from pytest_concurrency.spec import RunSpec
    except Exception as exc:  # noqa: BLE001 - plugin not installed / broken
        return None, f"plugin not importable: {exc!r}"
    spec = RunSpec(mode=mode, workers=workers, iterations=1,
                   processes=workers if mode == "process" else 1,
                   threads=1 if mode == "process" else workers,
                   start_method="fork", leaks="ignore")

    def run():
        return runners.run(runners.RunRequest(spec, body))

    try:  # one call to check the API works before timing it
        run()
    except Exception as exc:  # noqa: BLE001 - report why, time the rest
        return None, f"runners.run failed: {exc!r}"
    return run, None


# ---------------------------------------------------------------- harness


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def interleave(variants, rounds, warmup=5):
    """Run each variant once per round, order rotated; return seconds per variant."""
    names = list(variants)
    samples = {name: [] for name in names}
    for r in range(warmup + rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            gc.collect()
            elapsed = timed(variants[name])
            if r >= warmup:
                samples[name].append(elapsed)
    return samples


def summarize(samples):
    return [{"variant": name, "median_ms": statistics.median(values) * 1e3,
             "p10_ms": pct(values, 0.10) * 1e3, "p90_ms": pct(values, 0.90) * 1e3,
             "rounds": len(values)} for name, values in samples.items()]


def compare(samples, comparisons):
    """comparisons: (plugin variant, bare variant, target or None) triples."""
    rows = []
    for name, base, target in comparisons:
        if name not in samples:
            continue
        ratio = statistics.median(samples[name]) / statistics.median(samples[base])
        verdict = "" if target is None else ("PASS" if ratio <= target else "FAIL")
        rows.append({"variant": name, "baseline": base, "ratio": ratio,
                     "target": target, "verdict": verdict})
    return rows


def print_tables(rows, ratios):
    print(f"{'variant':<24} {'median ms':>10} {'p10 ms':>9} {'p90 ms':>9}")
    for row in rows:
        print(f"{row['variant']:<24} {row['median_ms']:>10.3f} {row['p10_ms']:>9.3f} "
              f"{row['p90_ms']:>9.3f}")
    if ratios:
        print()
        print(f"{'ratio (median / median)':<48} {'ratio':>6} {'target':>7}  result")
        for r in ratios:
            target = f"<= {r['target']:.1f}" if r["target"] is not None else "-"
            print(f"{r['variant'] + ' / ' + r['baseline']:<48} {r['ratio']:>5.2f}x "
                  f"{target:>7}  {r['verdict'] or 'info'}")


# ---------------------------------------------------------------- pytest level


def write_tests(directory, count, workers, marked):
    decorator = (f'@pytest.mark.concurrency(modes=["thread"], workers={workers})'
                 if marked else "")
    path = os.path.join(directory, f"test_{'marked' if marked else 'plain'}.py")
    with open(path, "w") as f:
        f.write("import pytest\n\n")
        f.writelines(f"\n{decorator}\ndef test_trivial_{i}():\n    assert 1\n\n"
                     for i in range(count))
    return path


def pytest_level(tests, workers, rounds):
    """Median wall seconds of a pytest run, marked vs plain; per-test overhead."""
    with tempfile.TemporaryDirectory() as tmp:
        files = {"pytest plain": write_tests(tmp, tests, workers, marked=False),
                 "pytest marked": write_tests(tmp, tests, workers, marked=True)}

        # Only our plugin is loaded (not whatever else is installed here), so
        # both variants pay the same startup and the difference is the plugin's.
        env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [
                       REPO, os.environ.get("PYTHONPATH")])))
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "-p", "pytest_concurrency.plugin", "-o", "addopts=", "--rootdir", tmp]

        def pytest(*extra):
            proc = subprocess.run(base + list(extra), cwd=tmp, env=env, check=False,
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"pytest {' '.join(extra)} failed:\n"
                                   f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
            return proc.stdout

        # the marked tests must really become thread-mode items
        ids = pytest("--collect-only", files["pytest marked"])
        if ids.count("[thread]") != tests:
            raise RuntimeError(f"expected {tests} [thread] items, got:\n{ids[-2000:]}")

        variants = {name: (lambda p=path: pytest(p)) for name, path in files.items()}
        samples = interleave(variants, rounds, warmup=1)
    plain = statistics.median(samples["pytest plain"])
    marked = statistics.median(samples["pytest marked"])
    return samples, {"tests": tests, "workers": workers,
                     "plain_s": plain, "marked_s": marked,
                     "per_test_overhead_ms": (marked - plain) / tests * 1e3}


# ---------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=120,
                        help="interleaved rounds per variant (default 120)")
    parser.add_argument("--workers", type=int, default=8,
                        help="threads / processes per run (default 8)")
    parser.add_argument("--pytest-tests", type=int, default=50,
                        help="trivial tests in the generated pytest file (0 skips)")
    parser.add_argument("--pytest-rounds", type=int, default=5,
                        help="interleaved pytest runs per variant (default 5)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers here")
    args = parser.parse_args(argv)
    w = args.workers

    variants = {
        "bare threads": lambda: bare_threads(w),
        "bare mp fork Process": lambda: bare_mp_fork(w),
        "bare os.fork/waitpid": lambda: bare_os_fork(w),
        "bare mp fork+Barrier": lambda: bare_mp_fork_barrier(w),
    }
    comparisons = [
        ("plugin thread", "bare threads", THREAD_TARGET),
        ("plugin process", "bare mp fork Process", PROCESS_TARGET),
        ("plugin process", "bare os.fork/waitpid", PROCESS_TARGET),
        ("plugin process", "bare mp fork+Barrier", None),
    ]
    notes = []
    for mode, name in (("thread", "plugin thread"), ("process", "plugin process")):
        fn, reason = plugin_variant(mode, w)
        if fn is None:
            notes.append(f"{name}: skipped, {reason}")
        else:
            variants[name] = fn

    info = {**machine.describe(), "workers": w, "rounds": args.rounds}
    print(f"# {info['date']}  Python {info['python']}  {info['platform']}  "
          f"cpus={info['cpus']} (usable {info['usable_cpus']})  workers={w}  "
          f"rounds={args.rounds}")
    for note in notes:
        print(f"# {note}")

    samples = interleave(variants, args.rounds)
    rows, ratios = summarize(samples), compare(samples, comparisons)
    print()
    print_tables(rows, ratios)
    result = {"info": info, "notes": notes, "variants": rows, "ratios": ratios}

    if args.pytest_tests > 0:
        print()
        print(f"# pytest level: {args.pytest_tests} trivial tests, "
              f"`pytest -q -p no:cacheprovider`, "
              f"{args.pytest_rounds} interleaved runs each")
        try:
            psamples, summary = pytest_level(args.pytest_tests, w, args.pytest_rounds)
        except Exception as exc:  # noqa: BLE001 - the runner numbers still stand
            print(f"# skipped: {exc}")
            result["pytest"] = {"error": str(exc)}
        else:
            prows = summarize(psamples)
            pratios = compare(psamples, [("pytest marked", "pytest plain", None)])
            print_tables(prows, pratios)
            print(f"per-test overhead of thread mode x{w}: "
                  f"{summary['per_test_overhead_ms']:.2f} ms "
                  f"(({summary['marked_s']:.3f} s - {summary['plain_s']:.3f} s) / "
                  f"{args.pytest_tests} tests)")
            result["pytest"] = {"summary": summary, "variants": prows,
                                "ratios": pratios}

    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
