"""Plain single-threaded tests of both stores (no plugin involved)."""

import pytest

from ledger import FileLedger, InsufficientFunds, Ledger, UnknownAccount


@pytest.fixture(params=["memory", "file"])
def store(request, tmp_path):
    if request.param == "memory":
        return Ledger({"alice": 10, "bob": 0})
    store = FileLedger(tmp_path / "ledger.json")
    store.open("alice", 10)
    store.open("bob")
    return store


def test_deposit_and_withdraw(store):
    assert store.deposit("alice", 5) == 15
    assert store.withdraw("alice", 15) == 0
    assert store.balance("alice") == 0


def test_transfer(store):
    store.transfer("alice", "bob", 4)
    assert (store.balance("alice"), store.balance("bob")) == (6, 4)
    assert store.total() == 10


def test_overdraft_is_refused(store):
    with pytest.raises(InsufficientFunds):
        store.withdraw("alice", 11)
    with pytest.raises(InsufficientFunds):
        store.transfer("bob", "alice", 1)
    assert (store.balance("alice"), store.balance("bob")) == (10, 0)


def test_unknown_account(store):
    assert "carol" not in store
    with pytest.raises(UnknownAccount):
        store.deposit("carol", 1)
    with pytest.raises(UnknownAccount):
        store.transfer("alice", "carol", 1)
