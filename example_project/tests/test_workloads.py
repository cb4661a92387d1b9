"""CPU-bound and I/O-bound work give the same answers in every mode.

``audit_digest`` is a pure-Python loop that holds the GIL (threads take turns,
processes run in parallel); ``round_trip`` waits on a socket with the GIL
released (threads overlap cheaply). The plugin's timing report shows the
difference; these tests check that the results are right everywhere.
"""

import pytest

from ledger.audit import audit_digest
from ledger.echo import round_trip

ALL_MODES = ["thread", "process", "hybrid"]
ENTRIES = [(f"account-{n}", n * 10) for n in range(40)]
EXPECTED = audit_digest(ENTRIES)  # computed once, serially


@pytest.mark.concurrency(modes=ALL_MODES, workers=4, iterations=5)
def test_audit_digest_is_the_same_in_every_worker(worker):
    assert audit_digest(ENTRIES) == EXPECTED


@pytest.mark.concurrency(modes=ALL_MODES, workers=4, iterations=10)
def test_echo_round_trip(echo_address, worker):
    payload = f"worker {worker.index} iteration {worker.iteration};".encode() * 200
    assert round_trip(echo_address, payload) == payload


@pytest.mark.concurrency(modes=ALL_MODES, workers=4, iterations=5)
def test_audit_digests_come_back_from_every_worker(concurrency):
    results = concurrency.run(audit_digest, ENTRIES)

    assert list(results) == [EXPECTED] * (concurrency.workers * concurrency.iterations)
    assert sorted(results.by_worker) == list(range(concurrency.workers))


@pytest.mark.concurrency(modes=ALL_MODES, workers=4, iterations=10)
def test_echo_replies_come_back_from_every_worker(concurrency, echo_address):
    results = concurrency.run(round_trip, echo_address, b"ping" * 1000)

    assert len(results) == concurrency.workers * concurrency.iterations
    assert set(results) == {b"ping" * 1000}
