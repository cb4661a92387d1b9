"""The file-backed ledger is safe across threads and processes.

Processes do not share memory, so these tests share state through the ledger's
JSON file (in ``tmp_path``) and check the file afterwards.
"""

import os
import uuid

import pytest
from actors import deposit_one, take_last_coin, till_balance

from ledger import FileLedger, Ledger

ALL_MODES = ["thread", "process", "hybrid"]
ITERATIONS = 25


# Whole-body tests: every worker runs the test body; fixtures are set up once.


@pytest.mark.concurrency(modes=ALL_MODES, workers=4, iterations=ITERATIONS)
def test_no_deposit_is_lost(file_ledger, worker, barrier):
    file_ledger.deposit("till", 1)
    if worker.iteration == ITERATIONS - 1:
        barrier.wait()  # every worker, in every process, has made its last deposit
        expected = worker.count * ITERATIONS
        assert file_ledger.balance("till") == expected


@pytest.mark.concurrency(modes=ALL_MODES, workers=4, iterations=ITERATIONS)
def test_transfers_keep_the_total(file_ledger, worker):
    ring = ["alice", "bob", "carol", "dave"]
    file_ledger.transfer(ring[worker.index % 4], ring[(worker.index + 1) % 4], 1)
    assert file_ledger.total() == 400  # opening balances, see conftest.py


# Scenario tests: the body runs once and drives the workers.


def deposit_and_report(ledger):
    return ledger.deposit("till", 1), os.getpid()


@pytest.mark.concurrency(modes=ALL_MODES, workers=4, iterations=10)
def test_deposits_from_every_worker_come_back(concurrency, file_ledger):
    results = concurrency.run(deposit_and_report, file_ledger)

    calls = concurrency.workers * concurrency.iterations
    assert len(results.by_worker) == concurrency.workers
    assert sorted(balance for balance, _ in results) == list(range(1, calls + 1))
    assert file_ledger.balance("till") == calls  # read back from the file

    pids = {pid for _, pid in results}
    if concurrency.mode == "thread":
        assert pids == {os.getpid()}
    elif concurrency.mode == "process":
        assert len(pids) == concurrency.workers and os.getpid() not in pids
    else:  # hybrid: the threads of one process share its pid
        assert len(pids) == concurrency.processes and os.getpid() not in pids


# One in-memory ledger per process: a child process works on its own copy.
PROCESS_LOCAL = Ledger()


def deposit_in_this_process(account):
    PROCESS_LOCAL.open(account)
    return os.getpid(), PROCESS_LOCAL.deposit(account, 1)


@pytest.mark.concurrency(modes=ALL_MODES, workers=4, iterations=10)
def test_memory_is_shared_only_within_a_process(concurrency):
    account = f"account-{uuid.uuid4()}"  # new in every run, so every count starts at 0
    results = concurrency.run(deposit_in_this_process, account)

    by_pid = {}
    for pid, balance in results:
        by_pid.setdefault(pid, []).append(balance)
    for balances in by_pid.values():  # each process counted its own deposits
        assert sorted(balances) == list(range(1, len(balances) + 1))

    calls = concurrency.workers * concurrency.iterations
    if concurrency.mode == "thread":
        assert PROCESS_LOCAL.balance(account) == calls
    else:
        assert account not in PROCESS_LOCAL  # the parent saw nothing


class FreshFileLedger:
    """``setup`` for run_actors: a new ledger file for every round."""

    def __init__(self, directory):
        self.directory = directory
        self.rounds = 0

    def __call__(self):
        self.rounds += 1
        ledger = FileLedger(self.directory / f"round-{self.rounds}.json")
        ledger.open("till", 0)
        ledger.open("alice", 1)
        return ledger


@pytest.mark.concurrency(modes=ALL_MODES, workers=2)
def test_two_deposits_make_two(concurrency, tmp_path):
    outcomes = concurrency.run_actors(
        deposit_one,
        deposit_one,
        setup=FreshFileLedger(tmp_path),
        arbiter=till_balance,
        rounds=10,
    )
    outcomes.expect(2)


@pytest.mark.concurrency(modes=ALL_MODES, workers=2)
def test_last_coin_is_spent_once(concurrency, tmp_path):
    outcomes = concurrency.run_actors(
        take_last_coin, take_last_coin, setup=FreshFileLedger(tmp_path), rounds=10
    )
    outcomes.forbid(("paid", "paid"))
    outcomes.expect(("paid", "refused"), ("refused", "paid"))
