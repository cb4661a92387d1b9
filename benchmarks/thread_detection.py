"""How often thread mode (no explore) catches the classic race kernels, with and without
the GIL: rounds that caught the bug, per 1,000, for several seeds, on each interpreter
given.

    python benchmarks/thread_detection.py --python python3.11 --python python3.13t
    python benchmarks/thread_detection.py --seeds 0 1 2 3 4 --json out.json

For every interpreter and seed, one pytest session (in a subprocess, with the plugin
from this checkout) runs, per kernel of tests/explore/bug_kernels.py, a scenario test
in thread mode with 2 workers, ``concurrency.run_actors(...)``, actor i on worker i,
in two shapes:

- ``rounds``: 1,000 rounds of one fresh state each (``rounds=1000``), the kernel's check
  deciding whether a round showed the bug: one thread-mode run per round, the workers
  released together by its barrier, each after its start jitter (``--concurrency-seed``
  seeds it), as ``iterations=1000`` does;
- ``hammered`` (the counter kernels only): 1,000 rounds in which both workers call
  their actor 1,000 times on one fresh state: a body that repeats the racy operation in
  a loop; a round caught the bug when a call was lost (an increment, an id);
- ``long``: the same with 100,000 calls per worker, 20 rounds (scaled to 1,000): loops
  long enough (milliseconds) for the two threads to overlap whatever their start.

It prints the rounds that caught the bug per kernel, shape, seed and interpreter
(a measurement, not a test: exit status 0), with the load average around each session:
on a busy machine two threads seldom run at the same moment, with or without a GIL.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import machine  # noqa: E402

# the kernels that end in a wrong result (not in a hang, which thread mode reports as a
# timeout once, and leaves its threads behind)
KERNELS = ("lost_update", "check_then_act", "lazy_init", "publish_before_init",
           "lost_update_call", "id_generator", "bank_transfer", "dict_iteration")

TEST_FILE = '''
import json, os, sys, types
import pytest

sys.path.insert(0, {kernels_dir!r})
import bug_kernels

RESULTS = {results!r}
BATCH = {batch!r}


def _fresh(kernel):
    state = kernel.setup()
    state.returns = [None] * len(kernel.actors)
    state.errors = []
    return state


def _recording(actor, index):
    def act(batch):
        for state in batch.states:  # in the same order in every worker
            try:
                state.returns[index] = actor(state)
            except Exception as exc:  # dict_iteration's RuntimeError: the bug
                state.errors.append(exc)
    return act


def _buggy(kernel, state):
    if state.errors:
        return True
    if kernel.check is None:
        return False
    try:
        kernel.check(state, state.returns)
    except AssertionError:
        return True
    return False


# a state hammered by both workers, BATCH calls each: what shows a lost call
HAMMERED = {{"lost_update": lambda s: s.value == 2 * BATCH,
            "lost_update_call": lambda s: s.value == 2 * BATCH,
            "id_generator": lambda s: len({{i for ids in s.calls for i in ids}}) == 2 * BATCH}}


def _hammering(actor):
    def act(state):
        state.calls.append([actor(state) for _ in range(BATCH)])
    return act


def _hammered_state(kernel):
    state = kernel.setup()
    state.calls = []
    return state


@pytest.mark.parametrize("name", {hammered!r})
@pytest.mark.concurrency(modes=["thread"], workers=2, timeout=600)
def test_hammered(concurrency, name):
    """One state per round, each worker calling its actor BATCH times on it."""
    kernel = bug_kernels.BUGGY[name]
    tally = concurrency.run_actors(*[_hammering(actor) for actor in kernel.actors],
                                   setup=lambda: _hammered_state(kernel),
                                   arbiter=lambda state: not HAMMERED[name](state),
                                   rounds={rounds})
    with open(RESULTS, "a") as f:
        f.write(json.dumps({{"kernel": name + " x" + str(BATCH), "bugs": tally[True],
                             "states": sum(tally.values())}}) + "\\n")


@pytest.mark.parametrize("name", {kernels!r})
@pytest.mark.concurrency(modes=["thread"], workers=2, timeout=600)
def test_kernel(concurrency, name):
    kernel = bug_kernels.BUGGY[name]
    tally = concurrency.run_actors(
        *[_recording(actor, i) for i, actor in enumerate(kernel.actors)],
        setup=lambda: types.SimpleNamespace(states=[_fresh(kernel) for _ in range(BATCH)]),
        arbiter=lambda batch: sum(_buggy(kernel, state) for state in batch.states),
        rounds={rounds})
    bugs = sum(count * found for found, count in tally.items())
    with open(RESULTS, "a") as f:
        f.write(json.dumps({{"kernel": name, "bugs": bugs,
                             "states": BATCH * sum(tally.values())}}) + "\\n")
'''


def session(python: str, seed: int, shape: str, kernels: tuple[str, ...]) -> dict:
    """One pytest session on ``python``: {kernel: bugs caught per 1,000 rounds}."""
    test, rounds, batch = SHAPES[shape]
    with tempfile.TemporaryDirectory() as tmp:
        results = os.path.join(tmp, "results.jsonl")
        with open(os.path.join(tmp, "test_detection.py"), "w") as f:
            f.write(TEST_FILE.format(
                kernels_dir=os.path.join(machine.REPO, "tests", "explore"), results=results,
                kernels=list(kernels), hammered=[k for k in HAMMERED if k in kernels],
                rounds=rounds, batch=batch))
        env = dict(os.environ, PYTHONPATH=machine.REPO)
        before = machine.load()
        done = subprocess.run(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", test,
             f"--concurrency-seed={seed}", "test_detection.py"],
            cwd=tmp, env=env, capture_output=True, text=True, check=False)
        if done.returncode not in (0, 1, 5):
            raise SystemExit(f"{python} seed {seed}: pytest exited {done.returncode}\n"
                             f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
        found = {}
        if os.path.exists(results):
            with open(results) as f:
                for line in f:
                    row = json.loads(line)
                    found[row["kernel"]] = row["bugs"] * 1000 / row["states"]
        return {"bugs_per_1000": found, "load_before": before, "load_after": machine.load()}


def interpreter(python: str) -> dict:
    probe = ("import json, platform, sys, sysconfig; print(json.dumps({'version': "
             "platform.python_version(), 'free_threaded': bool(sysconfig.get_config_var("
             "'Py_GIL_DISABLED')), 'gil': getattr(sys, '_is_gil_enabled', lambda: True)()}))")
    return json.loads(subprocess.run([python, "-c", probe], capture_output=True, text=True,
                                     check=True).stdout)


# shape -> (test, rounds, states per round, or calls per worker per round)
SHAPES = {"rounds": ("test_kernel", 1000, 1), "hammered": ("test_hammered", 1000, 1000),
          "long": ("test_hammered", 20, 100_000)}
HAMMERED = ("lost_update", "lost_update_call", "id_generator")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", action="append", default=None,
                        help="an interpreter to measure (repeatable; default: this one)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--kernel", action="append", default=None, choices=KERNELS)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    pythons = args.python or [sys.executable]
    kernels = tuple(args.kernel or KERNELS)
    record = {"machine": machine.describe(), "commit": machine.commit(),
              "seeds": args.seeds, "runs": {}}
    # interpreters alternate within each seed, so that both see the same machine load
    for seed in args.seeds:
        for python in pythons:
            info = interpreter(python)
            label = info["version"] + ("t" if info["free_threaded"] else "")
            for shape in SHAPES:
                run = session(python, seed, shape, kernels)
                record["runs"].setdefault(label, {"interpreter": info, "shapes": {}})
                record["runs"][label]["shapes"].setdefault(shape, {})[seed] = run
                print(f"{label} {shape} seed {seed}: " + ", ".join(
                    f"{k} {v:g}" for k, v in run["bugs_per_1000"].items())
                    + f"  (load {run['load_before']} -> {run['load_after']})", flush=True)
    labels = list(record["runs"])
    print(f"\nrounds that caught the bug, per 1,000, thread mode, 2 workers; median "
          f"[min-max] over seeds {' '.join(map(str, args.seeds))}")
    for shape in SHAPES:
        rows = sorted({k for label in labels
                       for run in record["runs"][label]["shapes"][shape].values()
                       for k in run["bugs_per_1000"]}, key=str)
        print(f"\n{shape}:\n")
        print("| kernel | " + " | ".join(labels) + " |")
        print("|---|" + "---|" * len(labels))
        for kernel in rows:
            cells = []
            for label in labels:
                values = [run["bugs_per_1000"].get(kernel, float("nan"))
                          for run in record["runs"][label]["shapes"][shape].values()]
                cells.append(f"{statistics.median(values):g} "
                             f"[{min(values):g}-{max(values):g}]")
            print(f"| {kernel} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=2)


if __name__ == "__main__":
    main()
