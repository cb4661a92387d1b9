"""The in-memory ledger is safe under threads (thread mode).

The deposit and withdrawal tests have twins in test_racy_ledger.py that run the
same checks on the broken ledger and are expected to fail.
"""

import pytest
from actors import deposit_one, take_last_coin, till_balance

from ledger import Ledger

ITERATIONS = 200


# Whole-body tests: every worker runs the test body; fixtures are shared.


@pytest.mark.concurrency(modes=["thread"], workers=8, iterations=ITERATIONS)
def test_no_deposit_is_lost(ledger, worker, barrier):
    ledger.deposit("till", 1)
    if worker.iteration == ITERATIONS - 1:
        barrier.wait()  # every worker has made its last deposit
        expected = worker.count * ITERATIONS
        assert ledger.balance("till") == expected


@pytest.mark.concurrency(modes=["thread"], workers=8, iterations=100)
def test_transfers_keep_the_total(ledger, worker):
    ring = ["alice", "bob", "carol", "dave"]
    source = ring[worker.index % 4]
    target = ring[(worker.index + 1) % 4]
    ledger.transfer(source, target, 1)
    assert ledger.total() == 400  # opening balances, see conftest.py


# Scenario tests: the body runs once and drives the workers.


@pytest.mark.concurrency(modes=["thread"], workers=8, iterations=100)
def test_every_deposit_sees_its_own_balance(concurrency, ledger):
    results = concurrency.run(ledger.deposit, "till", 1)

    calls = concurrency.workers * concurrency.iterations
    assert sorted(results) == list(range(1, calls + 1))
    assert ledger.balance("till") == calls


def small_ledger():
    return Ledger({"till": 0, "alice": 1})


@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_two_deposits_make_two(concurrency):
    outcomes = concurrency.run_actors(
        deposit_one,
        deposit_one,
        setup=small_ledger,
        arbiter=till_balance,
        rounds=200,
    )
    outcomes.expect(2)


@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_last_coin_is_spent_once(concurrency):
    outcomes = concurrency.run_actors(
        take_last_coin, take_last_coin, setup=small_ledger, rounds=200
    )
    outcomes.forbid(("paid", "paid"))
    outcomes.expect(("paid", "refused"), ("refused", "paid"))
