"""The plugin catches the lost updates of the unlocked ``RacyLedger``.

These are the checks of test_memory_ledger.py run against the broken ledger. Each
is ``xfail(strict=True)``: the suite stays green only while the race is caught,
and fails (XPASS) if a check ever stops seeing it.
"""

import pytest
from actors import deposit_one, take_last_coin, till_balance

from ledger.racy import RacyLedger

ITERATIONS = 200

caught = pytest.mark.xfail(
    strict=True, reason="RacyLedger has no lock: concurrent updates are lost"
)


@caught
@pytest.mark.concurrency(modes=["thread"], workers=8, iterations=ITERATIONS)
def test_no_deposit_is_lost(racy_ledger, worker, barrier):
    racy_ledger.deposit("till", 1)
    if worker.iteration == ITERATIONS - 1:
        barrier.wait()  # every worker has made its last deposit
        expected = worker.count * ITERATIONS
        assert racy_ledger.balance("till") == expected


@caught
@pytest.mark.concurrency(modes=["thread"], workers=8, iterations=100)
def test_every_deposit_sees_its_own_balance(concurrency, racy_ledger):
    results = concurrency.run(racy_ledger.deposit, "till", 1)

    calls = concurrency.workers * concurrency.iterations
    assert sorted(results) == list(range(1, calls + 1))


def small_racy_ledger():
    return RacyLedger({"till": 0, "alice": 1})


@caught
@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_two_deposits_make_two(concurrency):
    outcomes = concurrency.run_actors(
        deposit_one,
        deposit_one,
        setup=small_racy_ledger,
        arbiter=till_balance,
        rounds=200,
    )
    outcomes.expect(2)


@caught
@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_last_coin_is_spent_once(concurrency):
    outcomes = concurrency.run_actors(
        take_last_coin, take_last_coin, setup=small_racy_ledger, rounds=200
    )
    outcomes.forbid(("paid", "paid"))
