"""Explore-mode detection benchmark: schedules to the first failure per kernel.

    python benchmarks/explore_kernels.py            # full table (a few minutes)
    python benchmarks/explore_kernels.py --quick    # pct/access only, no stress
    python benchmarks/explore_kernels.py --dpor     # DPOR and switch-point cost only
    python benchmarks/explore_kernels.py --dpor --baseline-tree DIR  # ... and DIR's cost
    python benchmarks/explore_kernels.py --growth   # one DPOR / pct schedule, N = 250..8000
    python benchmarks/explore_kernels.py --aio      # the asyncio kernels (tasks, not threads)
    python benchmarks/explore_kernels.py --soundness  # the soundness corpus: dpor, random
    python benchmarks/explore_kernels.py --dpor-cost --baseline-tree DIR  # a DPOR step

For every kernel in tests/explore/bug_kernels.py and every strategy x granularity: the
schedules explore() needed to find the bug (median and max over seeds 0..9; "-" when
the default 200 schedules did not find it), then the hit rate of free-running threads
(plain threading, switch interval 1 us) over a fixed wall-clock budget, then the
slowdown of traced vs untraced code.

With --dpor: for every fixed twin, the schedules strategy="dpor" ran to verify it
(complete or not) and the seconds; for every bug, the schedules to find it; then the
cost of switch points: 2 workers x 2000 ``box.value += 1``, 5 pct schedules, against the
untraced body, optionally beside an older checkout (``--baseline-tree``, e.g. a
``git worktree`` at the commit before the cheap switch points), the two measured in
alternating subprocesses in one run.

With --soundness: for every program of benchmarks/soundness/corpus.py (racy programs
that share state in ways explore must not miss, each with a lock-fixed twin),
strategy="dpor"'s verdict on the bug and on the twin with the schedules it ran, and
random's schedules to the bug (seeds 0..4).  With --dpor-cost: one DPOR schedule of 2
workers x 2000 increments, its steps and seconds per step and per increment, beside
``--baseline-tree`` in alternating subprocesses.

With --aio: for every kernel in tests/explore/aio_kernels.py (coroutine actors, run as
asyncio tasks on one loop): the schedules to the bug per strategy (median / max over
seeds 0..9), the schedules strategy="dpor" ran to verify each fixed twin, and the cost
of a schedule: 200 pct schedules of the fixed twin against the same actors run as
plain ``asyncio.run(gather(...))`` rounds, the two measured alternately in one run.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "explore"))

import aio_kernels  # noqa: E402
import bug_kernels as kernels  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "soundness"))
import corpus as soundness  # noqa: E402

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


def dpor_table():
    """{kernel: (schedules, complete, seconds)} for the fixed twins, and
    {kernel: (schedules to the failure or None, seconds)} for the bugs."""
    verified, found = {}, {}
    for name, kernel in kernels.FIXED.items():
        t = time.perf_counter()
        r = explore(kernel.setup, kernel.actors, kernel.check, strategy="dpor",
                    schedules=5000)
        verified[name] = (r.schedules_run, r.complete and r.failure is None,
                          time.perf_counter() - t)
    for name, kernel in kernels.BUGGY.items():
        t = time.perf_counter()
        r = explore(kernel.setup, kernel.actors, kernel.check, strategy="dpor",
                    schedules=5000)
        found[name] = ((r.failure.schedule + 1) if r.failure else None,
                       time.perf_counter() - t)
    return verified, found


INCREMENTS = 2000


def _increments(box):
    for _ in range(INCREMENTS):
        box.value += 1


def switch_cost(reps=3):
    """Seconds for 5 pct schedules of 2 workers doing INCREMENTS increments each, and
    for the same body untraced (both workers, one after the other): best of reps."""
    traced = min(_timed(lambda: explore(_Box, [_increments, _increments], schedules=5,
                                        seed=0)) for _ in range(reps))
    plain = min(_timed(lambda: [_increments(_Box()) for _ in range(2 * 5)])
                for _ in range(reps))
    return {"traced": traced, "untraced": plain}


def dpor_cost(reps=3):
    """Seconds and steps of one DPOR schedule of 2 workers doing INCREMENTS increments
    each (best of reps), and the same body untraced."""
    best, steps = None, 0
    for _ in range(reps):
        t = time.perf_counter()
        r = explore(_Box, [_increments, _increments], strategy="dpor", schedules=1, seed=0)
        elapsed = time.perf_counter() - t
        if best is None or elapsed < best:
            best, steps = elapsed, r.stats["steps_total"]
    plain = min(_timed(lambda: [_increments(_Box()) for _ in range(2)]) for _ in range(reps))
    return {"traced": best, "steps": steps, "untraced": plain}


_COST_SCRIPT = """
import json, sys
sys.path.insert(0, {tree!r})
import pytest_concurrency.explore  # from the tree, before explore_kernels adds this one
assert pytest_concurrency.__file__.startswith({tree!r}), pytest_concurrency.__file__
sys.path.insert(0, {tests!r})
sys.path.insert(0, {here!r})
import explore_kernels
print(json.dumps(explore_kernels.{measure}()))
"""


def switch_cost_of(tree, rounds=5, measure="switch_cost"):
    """``measure``() (switch_cost or dpor_cost) of the checkout at ``tree`` and of this
    one, in alternating subprocesses: medians of ``rounds`` each."""
    runs = {"this": [], "baseline": []}
    for _ in range(rounds):
        for label, path in (("this", os.path.dirname(HERE)), ("baseline", tree)):
            script = _COST_SCRIPT.format(tree=path, here=HERE, measure=measure,
                                         tests=os.path.join(os.path.dirname(HERE),
                                                            "tests", "explore"))
            out = subprocess.run([sys.executable, "-c", script], capture_output=True,
                                 text=True, check=True).stdout
            runs[label].append(json.loads(out.strip().splitlines()[-1]))
    return {label: {key: statistics.median(r[key] for r in values)
                    for key in values[0]} for label, values in runs.items()}


def report_dpor_cost(args, out):
    """DPOR's cost per step and per increment, this tree beside ``--baseline-tree``."""
    costs = switch_cost_of(args.baseline_tree, measure="dpor_cost") if args.baseline_tree \
        else {"this": dpor_cost()}
    print(f"\none DPOR schedule: 2 workers x {INCREMENTS} increments (median of 5 "
          "alternating subprocess runs, each the best of 3)\n")
    print("| code | schedule | steps | per step | per increment | traced / untraced |")
    print("|---|---|---|---|---|---|")
    for key, cost in costs.items():
        name = "this tree" if key == "this" else f"baseline ({args.baseline_tree})"
        print(f"| {name} | {cost['traced']:.3f} s | {cost['steps']:.0f} | "
              f"{cost['traced'] / cost['steps'] * 1e6:.1f} us | "
              f"{cost['traced'] / (2 * INCREMENTS) * 1e6:.1f} us | "
              f"{cost['traced'] / cost['untraced']:.0f}x |")
    out["dpor_cost"] = costs


def soundness_table(seeds=5):
    """For every program of the soundness corpus: DPOR on the bug and on its twin
    (verdict, schedules), and random's schedules to the bug over ``seeds`` seeds."""
    rows = {}
    for name, kernel in soundness.PROGRAMS.items():
        bug = explore(kernel.setup, kernel.actors, kernel.check, strategy="dpor",
                      schedules=3000)
        twin = explore(kernel.twin.setup, kernel.twin.actors, kernel.twin.check,
                       strategy="dpor", schedules=3000)
        found = []
        for seed in range(seeds):
            r = explore(kernel.setup, kernel.actors, kernel.check, strategy="random",
                        seed=seed, schedules=300, instrument=kernel.instrument)
            found.append((r.failure.schedule + 1) if r.failure else None)
        rows[name] = {"workers": len(kernel.actors), "buggy": soundness.applies(kernel),
                      "bug": _verdict(bug), "twin": _verdict(twin), "random": found,
                      "category": kernel.category}
    return rows


def _verdict(result):
    if result.failure is not None:
        return f"found in {result.failure.schedule + 1}"
    if result.verified:
        return f"verified in {result.schedules_run}"
    return f"not complete in {result.schedules_run}"


def report_soundness(args, out):
    rows = soundness_table()
    print("\nthe soundness corpus (benchmarks/soundness/corpus.py): strategy='dpor' on each "
          "buggy program and its fixed twin (3000 schedules allowed); random's schedules "
          "to the bug, median / max over seeds 0..4 (300 allowed)\n")
    print("| program | kind | workers | dpor on the bug | dpor on the twin | random |")
    print("|---|---|---|---|---|---|")
    for name, row in rows.items():
        bug = row["bug"] if row["buggy"] else f"{row['bug']} (correct here)"
        found = _stat(row["random"]) if row["buggy"] else "-"
        print(f"| {name} | {row['category']} | {row['workers']} | {bug} | {row['twin']} | "
              f"{found} |")
    false = [name for name, row in rows.items()
             if row["buggy"] and row["bug"].startswith("verified")]
    print(f"\nbuggy programs dpor called verified: {len(false)} of "
          f"{sum(row['buggy'] for row in rows.values())}")
    out["soundness"] = rows


GROWTH = (250, 500, 1000, 2000, 4000, 8000)
# half_update_fixed on 3.11 (wait_for's inner task, either actor first) needs about 11,000
AIO_TWIN_SCHEDULES = 20_000


def _counting(n):
    def count(box):
        for _ in range(n):
            box.value += 1
    return count


def growth(rounds=3):
    """{(n, strategy): [(seconds, steps), ...]} for one schedule of 2 workers x n
    increments, DPOR and pct, interleaved: every size and strategy once per round,
    the order rotated every round."""
    runs = {}
    cells = [(n, strategy) for n in GROWTH for strategy in ("pct", "dpor")]
    for round_ in range(rounds):
        shift = round_ % len(cells)
        for n, strategy in cells[shift:] + cells[:shift]:
            actor = _counting(n)
            t = time.perf_counter()
            r = explore(_Box, [actor, actor], strategy=strategy, schedules=1, seed=0)
            runs.setdefault((n, strategy), []).append(
                (time.perf_counter() - t, r.stats["steps_total"]))
    return runs


def report_growth(out):
    runs = growth()
    print("\none schedule of 2 workers x N `box.value += 1`, median of 3 interleaved "
          "rounds\n")
    print("| N | pct schedule | pct per step | dpor schedule | dpor per step | "
          "dpor / pct per step |")
    print("|---|---|---|---|---|---|")
    for n in GROWTH:
        cell = {}
        for strategy in ("pct", "dpor"):
            seconds = statistics.median(t for t, _ in runs[(n, strategy)])
            steps = runs[(n, strategy)][0][1]
            cell[strategy] = (seconds, seconds / steps)
        print(f"| {n} | {cell['pct'][0]:.3f} s | {cell['pct'][1] * 1e6:.1f} us | "
              f"{cell['dpor'][0]:.3f} s | {cell['dpor'][1] * 1e6:.1f} us | "
              f"{cell['dpor'][1] / cell['pct'][1]:.1f}x |")
    out["growth"] = {f"{n}|{strategy}": values for (n, strategy), values in runs.items()}


def report_dpor(args, out):
    verified, found = dpor_table()
    print("\nstrategy='dpor': schedules to verify each fixed twin (5000 allowed)\n")
    print("| kernel | workers | schedules | verified complete | seconds |")
    print("|---|---|---|---|---|")
    for name, (n, complete, secs) in verified.items():
        workers = len(kernels.FIXED[name].actors)
        print(f"| {name} | {workers} | {n} | {'yes' if complete else 'NO'} | {secs:.2f} |")
    print("\nstrategy='dpor': schedules to find each bug\n")
    print("| kernel | schedules | seconds |")
    print("|---|---|---|")
    for name, (n, secs) in found.items():
        print(f"| {name} | {n if n is not None else '-'} | {secs:.2f} |")
    out["dpor"] = {"verified": verified, "found": found}
    label = "this tree"
    if args.baseline_tree:
        costs = switch_cost_of(args.baseline_tree)
    else:
        costs = {"this": switch_cost()}
    print(f"\nswitch points: 2 workers x {INCREMENTS} increments, 5 pct schedules "
          "(median of 5 alternating subprocess runs, each the best of 3)\n")
    print("| code | traced | untraced | traced / untraced |")
    print("|---|---|---|---|")
    for key, cost in costs.items():
        name = label if key == "this" else f"baseline ({args.baseline_tree})"
        print(f"| {name} | {cost['traced']:.3f} s | {cost['untraced'] * 1e3:.1f} ms | "
              f"{cost['traced'] / cost['untraced']:.0f}x |")
    if "baseline" in costs:
        print(f"\nthis tree is {costs['baseline']['traced'] / costs['this']['traced']:.1f}x "
              "faster than the baseline on the traced body")
    out["switch_cost"] = costs


AIO_STRATEGIES = ("pct", "random", "dfs", "dpor")


def _aio_found(kernel, strategy, seed):
    r = explore(kernel.setup, kernel.actors, kernel.check, strategy=strategy, seed=seed,
                schedules=200 if strategy != "dpor" else 5000)
    return (r.failure.schedule + 1) if r.failure else None


def _plain_round(kernel):
    """One round of the kernel without explore: the actors as tasks of asyncio.run."""
    import asyncio

    async def main():
        state = kernel.setup()
        returns = await asyncio.gather(*(actor(state) for actor in kernel.actors))
        if kernel.check is not None:
            kernel.check(state, list(returns))

    asyncio.run(main())


def aio_cost(kernel, schedules=200, rounds=5):
    """Seconds per schedule of ``schedules`` pct schedules of ``kernel``, and per plain
    asyncio.run round; medians of ``rounds``, the two alternating.  A kernel that sleeps
    (in real time, outside explore) gets 2 plain rounds per run."""
    explored, plain = [], []
    plain_rounds = 2 if getattr(kernel, "sleeps", 0) else schedules
    for _ in range(rounds):
        start = time.perf_counter()
        explore(kernel.setup, kernel.actors, kernel.check, schedules=schedules, seed=0)
        explored.append((time.perf_counter() - start) / schedules)
        start = time.perf_counter()
        for _ in range(plain_rounds):
            _plain_round(kernel)
        plain.append((time.perf_counter() - start) / plain_rounds)
    return statistics.median(explored), statistics.median(plain)


def report_aio(args, out):
    seeds = range(args.seeds)
    print(f"\nasyncio kernels: schedules to the bug, median / max over seeds 0..{seeds[-1]} "
          "(dfs and dpor: one run)\n")
    print("| kernel | " + " | ".join(AIO_STRATEGIES) + " |")
    print("|---" * (len(AIO_STRATEGIES) + 1) + "|")
    out["aio_found"] = {}
    for name, kernel in aio_kernels.BUGGY.items():
        cells = []
        for strategy in AIO_STRATEGIES:
            found = [_aio_found(kernel, strategy, seed)
                     for seed in (seeds if strategy in ("pct", "random") else [0])]
            out["aio_found"][f"{name}|{strategy}"] = found
            cells.append(_stat(found))
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nasyncio fixed twins: strategy='dpor' ({AIO_TWIN_SCHEDULES} schedules allowed), and "
          "the cost of a "
          "schedule (200 pct schedules vs 200 plain asyncio.run rounds, median of 5)\n")
    print("| kernel | dpor schedules | verified complete | dpor seconds | per schedule | "
          "plain asyncio.run round | ratio |")
    print("|---|---|---|---|---|---|---|")
    out["aio_fixed"] = {}
    for name, kernel in aio_kernels.FIXED.items():
        start = time.perf_counter()
        r = explore(kernel.setup, kernel.actors, kernel.check, strategy="dpor",
                    schedules=AIO_TWIN_SCHEDULES)
        seconds = time.perf_counter() - start
        complete = r.complete and r.failure is None
        per, plain = aio_cost(kernel)
        out["aio_fixed"][name] = {"schedules": r.schedules_run, "complete": complete,
                                  "seconds": seconds, "per_schedule": per, "plain": plain}
        plain_text = f"{plain:.2f} s (sleeps)" if getattr(kernel, "sleeps", 0) else \
            f"{plain * 1e6:.0f} us"
        print(f"| {name} | {r.schedules_run} | {'yes' if complete else 'NO'} | "
              f"{seconds:.2f} | {per * 1e6:.0f} us | {plain_text} | {per / plain:.2g}x |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--schedules", type=int, default=200)
    ap.add_argument("--stress-budget", type=float, default=2.0,
                    help="seconds of free-running threads per kernel")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--dpor", action="store_true", help="DPOR and switch-point cost only")
    ap.add_argument("--baseline-tree", help="with --dpor: a checkout to compare "
                    "the switch-point cost with")
    ap.add_argument("--growth", action="store_true",
                    help="the cost of one DPOR and one pct schedule as it grows")
    ap.add_argument("--aio", action="store_true", help="the asyncio kernels only")
    ap.add_argument("--soundness", action="store_true",
                    help="the soundness corpus under dpor and random only")
    ap.add_argument("--dpor-cost", action="store_true",
                    help="the cost of a DPOR step only (with --baseline-tree: beside it)")
    args = ap.parse_args()
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    for flag, report in (("soundness", report_soundness), ("dpor_cost", report_dpor_cost)):
        if getattr(args, flag):
            out = {}
            report(args, out)
            if args.json:
                with open(args.json, "w") as fh:
                    json.dump(out, fh, indent=1)
            return
    if args.aio:
        out = {}
        report_aio(args, out)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(out, fh, indent=1)
        return
    if args.growth:
        out = {}
        report_growth(out)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(out, fh, indent=1)
        return
    if args.dpor:
        out = {}
        report_dpor(args, out)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(out, fh, indent=1)
        return
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
