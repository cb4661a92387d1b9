"""A broken copy of the in-memory ledger, kept to show what the tests catch.

``RacyLedger`` has no lock: ``deposit`` and ``withdraw`` read the balance, look up
a fee, then write the balance back. The fee lookup gives up the GIL (as a real
lookup over the network would), so two threads can read the same balance and one
update is lost. Do not use it.
"""

import time

from ledger.errors import InsufficientFunds
from ledger.memory import Ledger


def fee_for(amount):
    """Pretend to ask a fee service; the ledger charges no fee."""
    time.sleep(0)  # gives up the GIL, like any I/O call would
    return 0


class RacyLedger(Ledger):
    """``Ledger`` with unsynchronised read-modify-write in deposit and withdraw."""

    def deposit(self, account, amount):
        current = self._get(account)
        new = current + amount - fee_for(amount)
        self._balances[account] = new
        return new

    def withdraw(self, account, amount):
        current = self._get(account)
        new = current - amount - fee_for(amount)
        if new < 0:
            raise InsufficientFunds(f"{account}: balance would be {new}")
        self._balances[account] = new
        return new
