"""Budgets on the ledger's two workloads, and the mode each one should use.

``audit_digest`` is CPU-bound (a pure-Python loop that holds the GIL); a round
trip to a service that takes 50 ms to answer is I/O-bound. Each test runs in
thread and process mode under a ``concurrency_budget``: paired serial and
concurrent rounds, so every mode's speedup is measured, and the terminal
summary's "concurrency advice" names the mode that suits each workload::

    tests/test_performance.py::test_audit_digest_of_a_large_ledger: CPU-bound: process mode ran 2.1x faster than thread mode; use processes
    tests/test_performance.py::test_round_trips_to_a_slow_service: I/O-bound: threads reach 7.3x with 8 workers (process mode: 4.6x); use threads

The limits are ones a service owner would state: concurrency must not cost
much more than running the same calls one after another (CPU-bound), and eight
concurrent callers must overlap their waiting (I/O-bound).
"""

import pytest

from ledger.audit import audit_digest
from ledger.echo import round_trip

ENTRIES = [(f"account-{n}", n * 10) for n in range(400)]  # about 60 ms per digest
EXPECTED = audit_digest(ENTRIES)


@pytest.mark.concurrency_budget(wall="2s", speedup=">=0.6")
@pytest.mark.concurrency(modes=["thread", "process"], workers=2)
def test_audit_digest_of_a_large_ledger():
    assert audit_digest(ENTRIES) == EXPECTED


@pytest.mark.concurrency_budget(wall="1s", speedup=">=2")
@pytest.mark.concurrency(modes=["thread", "process"], workers=8)
def test_round_trips_to_a_slow_service(slow_echo_address):
    assert round_trip(slow_echo_address, b"balance?") == b"balance?"
