"""The soundness corpus (benchmarks/soundness/corpus.py) under frontrun's DPOR.

    /path/to/frontrun-venv/bin/frontrun python benchmarks/frontrun_corpus.py --json out.json

frontrun (https://pypi.org/project/frontrun/) is another DPOR tool for Python.  Its
``explore`` runs ``workers`` on ``setup()`` state and checks ``invariant(state)``;
this script gives it each buggy program of the corpus and its fixed twin, with the
corpus's check as the invariant (each worker's return value is kept in the state
for the checks that need it, and a worker that raised fails it too), unbounded
preemptions (``preemption_bound=None``) and
frontrun's other defaults, and prints whether frontrun says the property holds.  A
buggy program it says holds is a false proof.  Run it with frontrun's own command
(``frontrun python ...``), as its documentation says, so that its I/O detection is
loaded.  It imports nothing of pytest-concurrency.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "soundness"))

import corpus  # noqa: E402
import frontrun  # noqa: E402


def _with_returns(setup, actors):
    def start():
        state = setup()
        state.returns_ = [None] * len(actors)
        return state

    def keeping(index, actor):
        def worker(state):
            try:
                state.returns_[index] = actor(state)
            except Exception as exc:  # noqa: BLE001 - a worker's exception is a failure
                state.raised_ = exc
        return worker

    return start, [keeping(index, actor) for index, actor in enumerate(actors)]


def _invariant(check):
    def holds(state):
        if getattr(state, "raised_", None) is not None:
            return False
        if check is None:
            return True
        try:
            check(state, state.returns_)
        except AssertionError:
            return False
        return True
    return holds


def run(kernel):
    setup, workers = _with_returns(kernel.setup, kernel.actors)
    started = time.perf_counter()
    try:
        result = frontrun.explore(setup=setup, workers=workers,
                                  invariant=_invariant(kernel.check), strategy="dpor",
                                  preemption_bound=None, reproduce_on_failure=0,
                                  total_timeout=120)
    except Exception as exc:  # noqa: BLE001 - what frontrun does is the result
        return {"holds": None, "error": f"{type(exc).__name__}: {exc}"[:200],
                "seconds": time.perf_counter() - started}
    return {"holds": bool(result.property_holds),
            "executions": getattr(result, "num_explored", None),
            "seconds": time.perf_counter() - started}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, frontrun {getattr(frontrun, '__version__', '?')}")
    print("\n| program | buggy here | frontrun on the bug | frontrun on the twin |")
    print("|---|---|---|---|")
    out, false_proofs, buggy = {}, 0, 0
    for name, kernel in corpus.PROGRAMS.items():
        if args.names and name not in args.names:
            continue
        applies = corpus.applies(kernel)
        bug, twin = run(kernel), run(kernel.twin)
        out[name] = {"buggy": applies, "bug": bug, "twin": twin}
        if applies:
            buggy += 1
            false_proofs += bug["holds"] is True

        def cell(found):
            if found["holds"] is None:
                return f"error ({found['error'][:60]})"
            return "holds" if found["holds"] else "fails"
        print(f"| {name} | {'yes' if applies else 'no'} | {cell(bug)} | {cell(twin)} |",
              flush=True)
    print(f"\nfrontrun says the property holds for {false_proofs} of the {buggy} programs "
          "that are buggy on this Python")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(out, handle, indent=1)


if __name__ == "__main__":
    main()
