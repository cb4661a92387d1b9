"""Budgets, metrics and the advisor: the numbers issue 5 asks for.

    python benchmarks/budgets.py [--quick] [--json PATH]

1. suite overhead: 2000 trivial unmarked tests, pytest with the plugin vs without;
2. CPU-bound pure-Python body, 2 workers: thread / process speedup and the advice,
   next to bare ``multiprocessing`` fork on the same body;
3. I/O-bound body (``time.sleep(0.05)``), 8 workers: thread speedup and the advice;
4. the cost of measuring: ``runners.run`` inside ``metrics.Meter`` vs bare.

Variants are interleaved (A B A B ..., order rotated every round) and every
number is a median or a ratio of medians from this one run.  This is a
measurement, never a test: the exit status is always 0.  See
benchmarks/README.md for the method and the last recorded numbers.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings

# Python 3.12+ warns when forking a process that has threads (the memory sampler).
warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork.*")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # use the checkout's plugin even when not pip-installed

import machine  # noqa: E402 - benchmarks/, next to this script

from pytest_concurrency import metrics, runners, spec  # noqa: E402
from pytest_concurrency.report import document  # noqa: E402
from pytest_concurrency.stats import Estimate  # noqa: E402

PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
SUITE_TESTS, SUITE_FILES = 2000, 20
CPU_SECONDS = 0.15  # one call of the CPU-bound body
IO_SECONDS = 0.05
rows = []  # every line of the final table


def interleave(variants: dict, rounds: int, warmup: int = 1) -> dict:
    """Seconds per call of each variant; one call each per round, order rotated."""
    names = list(variants)
    samples = {name: [] for name in names}
    for r in range(warmup + rounds):
        k = r % len(names)
        gc.collect()  # once per round: a full collection here costs ~10 ms (pytest imported)
        for name in names[k:] + names[:k]:
            start = time.perf_counter()
            variants[name]()
            if r >= warmup:
                samples[name].append(time.perf_counter() - start)
    return samples


def row(check, measured, value, target, ok):
    """One table line; ``ok`` None = informative."""
    verdict = "info" if ok is None else ("PASS" if ok else "FAIL")
    rows.append({"check": check, "measured": measured, "value": value,
                 "target": target, "result": verdict})


def ratio_row(check, samples, a, b, limit, unit="s", both_ways=False):
    """Row for median(a) / median(b); ``limit`` None = informative."""
    ma, mb = statistics.median(samples[a]), statistics.median(samples[b])
    r = ma / mb
    scale, fmt = (1e3, "{:.2f} ms") if unit == "ms" else (1, "{:.3f} s")
    measured = f"{fmt.format(ma * scale)} / {fmt.format(mb * scale)}"
    if limit is None:
        row(check, measured, f"{r:.3f}x", "-", None)
    elif both_ways:
        row(check, measured, f"{r:.3f}x", f"within {limit - 1:.0%}", abs(r - 1) <= limit - 1)
    else:
        row(check, measured, f"{r:.3f}x", f"<= {limit:.2f}x", r <= limit)
    return r


def paired_row(check, samples, a, b):
    """Informative row: the median of the paired ratios a[i] / b[i] and its interval."""
    paired = Estimate.of([x / y for x, y in zip(samples[a], samples[b], strict=True)])
    row(check, f"median of {paired.n}, {paired.confidence:.0%} interval",
        f"{paired.median:.3f}x", f"[{paired.low:.3f}x, {paired.high:.3f}x]", None)


# ---------------------------------------------------------------- 1. suite overhead


def run_pytest(args, cwd, env) -> subprocess.CompletedProcess:
    proc = subprocess.run(PYTEST + args, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pytest {' '.join(args)} failed:\n{proc.stdout[-3000:]}"
                           f"\n{proc.stderr[-2000:]}")
    return proc


def suite_overhead(rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "pytest.ini"), "w") as f:
            f.write("[pytest]\n")  # the rootdir: nothing above it is read
        per_file = SUITE_TESTS // SUITE_FILES
        for n in range(SUITE_FILES):
            with open(os.path.join(tmp, f"test_suite_{n}.py"), "w") as f:
                f.writelines(f"def test_{n * per_file + i}():\n    pass\n\n\n"
                             for i in range(per_file))
        # A bytecode cache, as an installed package has, even where
        # PYTHONDONTWRITEBYTECODE is set; kept in the temp dir, not the checkout.
        installed = {k: v for k, v in os.environ.items()
                     if k not in ("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTHONDONTWRITEBYTECODE")}
        installed["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        bare = dict(installed, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
        commands = {
            "plugin": (["-p", "pytest_concurrency.plugin"], bare),
            "no plugin": ([], bare),
            "installed": ([], installed),
            "installed, -p no:concurrency": (["-p", "no:concurrency"], installed),
        }
        inner = {name: [] for name in commands}  # pytest's own "in X s"
        cpu = {name: [] for name in commands}  # the subprocess's CPU time (user + system)

        def variant(name):
            args, env = commands[name]

            def call():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                out = run_pytest(args, tmp, env).stdout
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[name].append(after.ru_utime + after.ru_stime
                                 - before.ru_utime - before.ru_stime)
                found = re.search(r"(\d+) passed in ([\d.]+)s", out)
                if not found or int(found.group(1)) != SUITE_TESTS:
                    raise RuntimeError(f"expected {SUITE_TESTS} passed:\n{out[-1000:]}")
                inner[name].append(float(found.group(2)))
            return call

        samples = interleave({name: variant(name) for name in commands}, rounds)
        code = ("import time, pytest; t = time.perf_counter(); import pytest_concurrency.plugin; "
                "print(time.perf_counter() - t)")
        imports = [float(subprocess.run([sys.executable, "-c", code], env=bare, check=True,
                                        capture_output=True, text=True).stdout)
                   for _ in range(6)][1:]
    for name in inner:
        inner[name] = inner[name][1:]  # drop the warm-up run, as interleave does
        cpu[name] = cpu[name][1:]
    ratio_row("1 suite wall: plugin / no plugin", samples, "plugin", "no plugin", 1.02)
    paired_row("1 suite wall: paired ratios plugin / no plugin", samples, "plugin",
               "no plugin")
    # CPU time is what the plugin adds; wall time adds whatever the machine's load does
    # to each run (+-20% here), which hides a 2% difference in all but quiet runs
    ratio_row("1 suite CPU: plugin / no plugin", cpu, "plugin", "no plugin", 1.02)
    paired_row("1 suite CPU: paired ratios plugin / no plugin", cpu, "plugin", "no plugin")
    fastest = {name: [min(values)] for name, values in cpu.items()}  # the least disturbed
    ratio_row("1 suite CPU, fastest run: plugin / no plugin", fastest, "plugin", "no plugin",
              None)
    ratio_row("1 suite pytest 'in Xs': plugin / no plugin", inner, "plugin", "no plugin", None)
    row("1 plugin import time after pytest", "median of 5 fresh interpreters",
        f"{statistics.median(imports) * 1e3:.0f} ms", "-", None)
    ratio_row("1 suite wall, autoload: installed / no:concurrency", samples, "installed",
              "installed, -p no:concurrency", None)
    return {"wall": samples, "cpu": cpu, "pytest_reported": inner, "plugin_import": imports}


# ---------------------------------------------------------------- 2+3. speedups

CPU_BODY = '''\
LOOPS = {loops}


def spin():
    x = 0
    for i in range(LOOPS):
        x += i
    return x
'''

TESTS = '''\
import time

import pytest

from cpu_body import spin


@pytest.mark.concurrency_budget(speedup=">=0.1")
@pytest.mark.concurrency(modes=["thread", "process"], workers=2)
def test_cpu():
    spin()


@pytest.mark.concurrency_budget(speedup=">=0.1")
@pytest.mark.concurrency(modes=["thread", "process"], workers=8)
def test_io():
    time.sleep({io})
'''


def calibrate() -> int:
    """Loop count of ``spin`` taking about CPU_SECONDS here."""
    def loop(n):
        x = 0
        for i in range(n):
            x += i
        return x
    n = 1_000_000
    start = time.perf_counter()
    loop(n)
    return int(n * CPU_SECONDS / (time.perf_counter() - start))


def paired_speedups(serial, concurrent, rounds: int) -> list[float]:
    """serial time / concurrent time per round, the two back to back, order alternating."""
    ratios = []
    for r in range(rounds + 1):
        times = {}
        for name, fn in ((("s", serial), ("c", concurrent)) if r % 2 else
                         (("c", concurrent), ("s", serial))):
            gc.collect()
            start = time.perf_counter()
            fn()
            times[name] = time.perf_counter() - start
        if r:  # the first round warms up
            ratios.append(times["s"] / times["c"])
    return ratios


def fork_procs(target, n):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=target) for _ in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()


def thread_all(target, n):
    threads = [threading.Thread(target=target) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def speedups(rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        loops = calibrate()
        files = {"pytest.ini": "[pytest]\n",
                 "cpu_body.py": CPU_BODY.format(loops=loops),
                 "test_speed.py": TESTS.format(io=IO_SECONDS)}
        for name, text in files.items():
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
        sys.path.insert(0, tmp)
        from cpu_body import spin  # the same code the tests run

        def sleep():
            time.sleep(IO_SECONDS)

        bare = {
            "cpu fork": paired_speedups(lambda: (spin(), spin()),
                                        lambda: fork_procs(spin, 2), rounds),
            "io threads": paired_speedups(lambda: [sleep() for _ in range(8)],
                                          lambda: thread_all(sleep, 8), rounds),
        }
        out = os.path.join(tmp, "report.json")
        env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
        try:
            proc = run_pytest(["-p", "pytest_concurrency.plugin", "-rw",
                               "--concurrency-report", out], tmp, env)
        except RuntimeError as exc:
            print(f"# speedup section failed: {exc}")
            return {"error": str(exc)}
        entries = document.load(out)["tests"]
    sys.path.remove(tmp)
    data = {(e["test"].split("::")[1], e["mode"]):
            {key: m["value"] for key, m in e["metrics"].items()} for e in entries}
    advice = dict(re.findall(r"^test_speed\.py::(test_\w+): (.*)$", proc.stdout, re.M))

    def speedup(test, mode):
        return data.get((test, mode), {}).get("speedup", float("nan"))

    spin_ms = statistics.median([_timed(spin) for _ in range(3)]) * 1e3
    cpu_t, cpu_p = speedup("test_cpu", "thread"), speedup("test_cpu", "process")
    bare_fork = statistics.median(bare["cpu fork"])
    row(f"2 cpu x2 ({spin_ms:.0f} ms body): thread speedup", "serial / thread",
        f"{cpu_t:.2f}x", "0.8-1.2x", 0.8 <= cpu_t <= 1.2)
    row("2 cpu x2: process speedup", "serial / process", f"{cpu_p:.2f}x", ">= 1.70x",
        cpu_p >= 1.7)
    row("2 cpu x2: bare mp fork speedup", "serial / 2 fork Process", f"{bare_fork:.2f}x",
        "-", None)
    row("2 cpu x2: plugin process / bare fork", "speedup / speedup",
        f"{cpu_p / bare_fork:.3f}x", "-", None)
    text = advice.get("test_cpu", "")
    row("2 cpu advice", text or "(no advice line)", "", "CPU-bound, use processes",
        text.startswith("CPU-bound") and "use processes" in text)
    io_t, io_p = speedup("test_io", "thread"), speedup("test_io", "process")
    bare_io = statistics.median(bare["io threads"])
    row(f"3 io x8 ({IO_SECONDS * 1e3:.0f} ms sleep): thread speedup", "serial / thread",
        f"{io_t:.2f}x", ">= 6.00x", io_t >= 6)
    row("3 io x8: process speedup", "serial / process", f"{io_p:.2f}x", "-", None)
    row("3 io x8: bare threading speedup", "serial / 8 Threads", f"{bare_io:.2f}x", "-", None)
    text = advice.get("test_io", "")
    row("3 io advice", text or "(no advice line)", "", "I/O-bound, use threads",
        text.startswith("I/O-bound") and "use threads" in text)
    return {"loops": loops, "spin_ms": spin_ms, "reports": entries, "advice": advice,
            "bare_speedups": bare, "pytest_tail": proc.stdout[-3000:]}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------- 4. cost of measuring


def trivial():
    return 1


def one_ms():
    time.sleep(0.001)


def measuring_cost(rounds: int) -> dict:
    result = {}
    for body_name, body in (("trivial", trivial), ("1ms sleep", one_ms)):
        for mode in ("thread", "process"):
            run_spec = spec.resolve({"modes": [mode], "workers": 8}, spec.Settings())[0]

            def off(run_spec=run_spec, body=body):
                runners.run(runners.RunRequest(run_spec, body))

            def on(run_spec=run_spec, body=body):
                with metrics.Meter():
                    runners.run(runners.RunRequest(run_spec, body))

            def on_memory(run_spec=run_spec, body=body):
                with metrics.Meter(memory=True):
                    runners.run(runners.RunRequest(run_spec, body))

            # a thread-mode run is short and its time spread wide: 4x the rounds
            n = rounds * 4 if mode == "thread" else rounds
            samples = interleave({"off": off, "on": on, "memory": on_memory}, n, warmup=5)
            name = f"4 measure {body_name} {mode} x8"
            ratio_row(f"{name}: Meter / bare", samples, "on", "off", 1.05, "ms",
                      both_ways=True)
            ratio_row(f"{name}: Meter(memory) / bare", samples, "memory", "off", None, "ms")
            result[f"{body_name} {mode}"] = samples
    return result


# ---------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 1.5 min)")
    parser.add_argument("--json", metavar="PATH", help="also write every number here")
    parser.add_argument("--suite-rounds", type=int, metavar="N",
                        help="rounds of the suite-overhead step (default 8; 3 with --quick): "
                             "a 2%% difference needs 20-30 on a noisy machine")
    parser.add_argument("--steps", default="suite,speedups,measuring",
                        help="comma-separated steps to run (default: all)")
    args = parser.parse_args(argv)
    suite_rounds, speed_rounds, meter_rounds = (3, 3, 30) if args.quick else (8, 7, 100)
    suite_rounds = args.suite_rounds or suite_rounds
    wanted = set(args.steps.split(","))
    info = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "usable_cpus": spec.usable_cpus(), "quick": args.quick,
            "rounds": {"suite": suite_rounds, "bare speedup": speed_rounds,
                       "measuring process": meter_rounds, "measuring thread": meter_rounds * 4},
            "load_before": machine.load()}
    print(f"# {info['date']}  {info['python']}  {info['platform']}  cpus={info['cpus']} "
          f"(usable {info['usable_cpus']})  load before: {info['load_before']}", flush=True)
    started = time.perf_counter()
    result = {"info": info}
    steps = (("suite", suite_overhead, suite_rounds), ("speedups", speedups, speed_rounds),
             ("measuring", measuring_cost, meter_rounds))
    for name, step, rounds in steps:
        if name not in wanted:
            continue
        t0 = time.perf_counter()
        try:
            result[name] = step(rounds)
        except Exception as exc:  # noqa: BLE001 - report it, keep the other sections
            print(f"# {name} failed: {exc!r}")
            result[name] = {"error": repr(exc)}
        print(f"# {name}: {time.perf_counter() - t0:.0f} s, load {machine.load()}", flush=True)
    info["load_after"] = machine.load()
    info["seconds"] = round(time.perf_counter() - started)

    width = max(len(r["check"]) for r in rows) if rows else 10
    mwidth = max([len(r["measured"]) for r in rows if r["value"]] + [8])
    print(f"\n{'check':<{width}}  {'medians':<{mwidth}}  {'value':>8}  {'target':<12}  result")
    for r in rows:
        if r["value"]:
            print(f"{r['check']:<{width}}  {r['measured']:<{mwidth}}  {r['value']:>8}  "
                  f"{r['target']:<12}  {r['result']}")
        else:  # an advice line: the text is long
            print(f"{r['check']:<{width}}  {r['result']} ({r['target']}): {r['measured']}")
    print(f"\n# load after: {info['load_after']}  total {info['seconds']} s")
    result["table"] = rows
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, default=str)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
