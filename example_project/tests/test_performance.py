"""Budgets on the ledger's two workloads, and the mode each one should use.

``audit_digest`` is CPU-bound: a pure-Python loop that holds the GIL, so two
threads take turns while two processes run on both cores. A round trip to a
service that takes 50 ms to answer is I/O-bound: the caller waits on a socket
with the GIL released, so eight threads overlap their waiting, without the cost
of starting eight processes.

Each test runs in thread and process mode under a ``concurrency_budget``. A
budget makes the plugin run paired rounds (the same calls serially, then
concurrently) and check the limits against the median; since both budgets have
a ``speedup`` limit, every mode's speedup is measured, and the terminal
summary's "concurrency advice" section names the mode that suits each workload
(the same sentence is the "advice" of each entry in ``--concurrency-report``)::

    tests/test_performance.py::test_audit_digest_of_a_large_ledger:
        CPU-bound: process mode ran 1.8x faster than thread mode; use processes
    tests/test_performance.py::test_round_trips_to_a_slow_service:
        I/O-bound: threads reach 7.2x with 8 workers (process mode: 4.1x); use threads

The limits are ones a service owner would state, with room for a busy CI
machine: running the digests concurrently must not cost much more than running
them one after another, in either mode; eight concurrent callers must overlap
their waiting (at least twice as fast as one after another); and no run may
take more than a second.
"""

import pytest

from ledger.audit import audit_digest
from ledger.echo import round_trip

ENTRIES = [(f"account-{n}", n * 10) for n in range(250)]  # about 40 ms per digest
EXPECTED = audit_digest(ENTRIES)


# Two workers for two cores; two digests per worker, so that starting a process is
# small against the work it does.
@pytest.mark.concurrency_budget(wall="1s", speedup=">=0.6")
@pytest.mark.concurrency(modes=["thread", "process"], workers=2, iterations=2)
def test_audit_digest_of_a_large_ledger():
    assert audit_digest(ENTRIES) == EXPECTED


@pytest.mark.concurrency_budget(wall="1s", speedup=">=2")
@pytest.mark.concurrency(modes=["thread", "process"], workers=8)
def test_round_trips_to_a_slow_service(slow_echo_address):
    assert round_trip(slow_echo_address, b"balance? alice") == b"balance? alice"
