"""In-memory ledger, safe to share between threads of one process."""

import threading

from ledger.errors import InsufficientFunds, UnknownAccount


class Ledger:
    """Account balances in a dict, every operation under one ``threading.Lock``."""

    def __init__(self, balances=None):
        self._balances = dict(balances or {})
        self._lock = threading.Lock()

    def __contains__(self, account):
        with self._lock:
            return account in self._balances

    def open(self, account, amount=0):
        with self._lock:
            self._balances.setdefault(account, 0)
            self._balances[account] += amount
            return self._balances[account]

    def balance(self, account):
        with self._lock:
            return self._get(account)

    def total(self):
        with self._lock:
            return sum(self._balances.values())

    def deposit(self, account, amount):
        """Add ``amount`` and return the new balance."""
        with self._lock:
            new = self._get(account) + amount
            self._balances[account] = new
            return new

    def withdraw(self, account, amount):
        """Take ``amount`` out and return the new balance."""
        with self._lock:
            new = self._get(account) - amount
            if new < 0:
                raise InsufficientFunds(f"{account}: balance would be {new}")
            self._balances[account] = new
            return new

    def transfer(self, source, target, amount):
        """Move ``amount`` from ``source`` to ``target`` atomically."""
        with self._lock:
            left = self._get(source) - amount
            self._get(target)
            if left < 0:
                raise InsufficientFunds(f"{source}: balance would be {left}")
            self._balances[source] = left
            self._balances[target] += amount

    def _get(self, account):
        try:
            return self._balances[account]
        except KeyError:
            raise UnknownAccount(account) from None
