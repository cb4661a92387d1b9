"""Shared fixtures: a ledger of each kind and a local echo server."""

import pytest

from ledger import FileLedger, Ledger
from ledger.echo import EchoServer
from ledger.racy import RacyLedger

OPENING = {"till": 0, "alice": 100, "bob": 100, "carol": 100, "dave": 100}


@pytest.fixture
def ledger():
    """In-memory ledger with the ``OPENING`` balances."""
    return Ledger(OPENING)


@pytest.fixture
def racy_ledger():
    """The broken in-memory ledger with the ``OPENING`` balances."""
    return RacyLedger(OPENING)


@pytest.fixture
def file_ledger(tmp_path):
    """File-backed ledger in ``tmp_path`` with the ``OPENING`` balances."""
    ledger = FileLedger(tmp_path / "ledger.json")
    for account, amount in OPENING.items():
        ledger.open(account, amount)
    return ledger


@pytest.fixture
def echo_address():
    """``(host, port)`` of an echo server running for the duration of the test."""
    with EchoServer() as server:
        yield server.address


@pytest.fixture
def slow_echo_address():
    """An echo server that answers after 50 ms, like a service across a network."""
    with EchoServer(latency=0.05) as server:
        yield server.address
