"""Explore-mode detection benchmark: schedules to the first failure per kernel.

    python benchmarks/explore_kernels.py            # full table (a few minutes)
    python benchmarks/explore_kernels.py --quick    # pct/access only, no stress

For every kernel in tests/explore/bug_kernels.py and every strategy x granularity: the
schedules explore() needed to find the bug (median and max over seeds 0..9; "-" when
the default 200 schedules did not find it), then the hit rate of free-running threads
(plain threading, switch interval 1 us) over a fixed wall-clock budget, then the
slowdown of traced vs untraced code.
"""
import argparse
import json
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "explore"))

import bug_kernels as kernels  # noqa: E402

from pytest_concurrency.explore import explore  # noqa: E402

STRATEGIES = ("pct", "random", "dfs")
GRANULARITIES = ("access", "opcode", "line")


def schedules_to_failure(kernel, strategy, granularity, seed, schedules):
    r = explore(kernel.setup, kernel.actors, kernel.check, strategy=strategy,
                granularity=granularity, seed=seed, schedules=schedules)
    return (r.failure.schedule + 1) if r.failure else None, r.stats["elapsed"]


def detection(args):
    rows = {}
    for name, kernel in kernels.BUGGY.items():
        for strategy in STRATEGIES if not args.quick else ("pct",):
            for gran in GRANULARITIES if not args.quick else ("access",):
                seeds = [0] if strategy == "dfs" else range(args.seeds)
                found, secs = [], 0.0
                for seed in seeds:
                    n, elapsed = schedules_to_failure(kernel, strategy, gran, seed,
                                                      args.schedules)
                    found.append(n)
                    secs += elapsed
                rows[(name, strategy, gran)] = (found, secs / len(found))
    return rows


def _stat(found):
    hits = [n for n in found if n is not None]
    if len(hits) < len(found):
        miss = f" ({len(found) - len(hits)} miss)"
    else:
        miss = ""
    if not hits:
        return "-"
    return f"{statistics.median(hits):g} / {max(hits)}{miss}"


def _stress_body(barrier, state, returns, errors, i, actor):
    barrier.wait()
    try:
        returns[i] = actor(state)
    except Exception as exc:  # noqa: BLE001
        errors.append(exc)


def free_running(kernel, budget):
    """Rounds and failures of plain threads with a 1 us switch interval."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    rounds = hits = 0
    end = time.perf_counter() + budget
    try:
        while time.perf_counter() < end:
            state = kernel.setup()
            returns = [None] * len(kernel.actors)
            errors = []
            barrier = threading.Barrier(len(kernel.actors))
            threads = [threading.Thread(target=_stress_body, daemon=True,
                                        args=(barrier, state, returns, errors, i, a))
                       for i, a in enumerate(kernel.actors)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(0.5)
            rounds += 1
            if any(t.is_alive() for t in threads):
                hits += 1  # a hang: stop here, the stuck threads stay behind
                break
            if errors:
                hits += 1
                continue
            if kernel.check is not None:
                try:
                    kernel.check(state, returns)
                except AssertionError:
                    hits += 1
    finally:
        sys.setswitchinterval(old)
    return rounds, hits


class _Box:
    value = 0


def _work(box):
    for _ in range(20000):
        box.value += 1
    return box.value


def slowdown(gran, reps=5):
    plain = min(_timed(lambda: _work(_Box())) for _ in range(reps))
    traced = min(_timed(lambda: explore(_Box, [_work], schedules=1, granularity=gran))
                 for _ in range(reps))
    return plain, traced


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--schedules", type=int, default=200)
    ap.add_argument("--stress-budget", type=float, default=2.0,
                    help="seconds of free-running threads per kernel")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    rows = detection(args)
    strategies = ("pct",) if args.quick else STRATEGIES
    grans = ("access",) if args.quick else GRANULARITIES
    cols = [(s, g) for s in strategies for g in grans]
    print("\nschedules to first failure, median / max over seeds 0..9 (dfs: one run)\n")
    print("| kernel | " + " | ".join(f"{s} {g}" for s, g in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name in kernels.BUGGY:
        cells = [_stat(rows[(name, s, g)][0]) for s, g in cols]
        print(f"| {name} | " + " | ".join(cells) + " |")
    out = {"detection": {"|".join(k): v[0] for k, v in rows.items()}}
    if not args.quick:
        print(f"\nfree-running threads, switch interval 1 us, {args.stress_budget:g} s "
              f"per kernel\n")
        print("| kernel | rounds | failures | hit rate |")
        print("|---|---|---|---|")
        out["stress"] = {}
        for name, kernel in kernels.BUGGY.items():
            n, hits = free_running(kernel, args.stress_budget)
            out["stress"][name] = [n, hits]
            print(f"| {name} | {n} | {hits} | {hits / max(n, 1):.2%} |")
        print("\nslowdown of traced vs untraced code (20k attribute increments, one worker)\n")
        print("| granularity | untraced | traced | slowdown |")
        print("|---|---|---|---|")
        out["slowdown"] = {}
        for gran in GRANULARITIES:
            plain, traced = slowdown(gran)
            out["slowdown"][gran] = [plain, traced]
            print(f"| {gran} | {plain * 1e3:.1f} ms | {traced * 1e3:.1f} ms | "
                  f"{traced / plain:.0f}x |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
