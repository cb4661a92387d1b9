"""Actors and arbiters shared by the ledger tests' run_actors scenarios.

Module-level functions, so they travel to spawned worker processes by name.
"""

from ledger import InsufficientFunds


def deposit_one(ledger):
    ledger.deposit("till", 1)


def till_balance(ledger):
    """The arbiter: runs in the parent (for a FileLedger it reads the file)."""
    return ledger.balance("till")


def take_last_coin(ledger):
    try:
        ledger.withdraw("alice", 1)
    except InsufficientFunds:
        return "refused"
    return "paid"
