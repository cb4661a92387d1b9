"""File-backed ledger, safe to share between threads and processes."""

import json
import os
from contextlib import contextmanager

from filelock import FileLock

from ledger.errors import InsufficientFunds, UnknownAccount


class FileLedger:
    """Account balances in a JSON file, every operation under a ``FileLock``.

    Only paths are stored on the object, so it can be pickled or inherited by a
    child process; each operation takes the lock, reads the file, and replaces it
    atomically.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.lock_path = self.path + ".lock"

    def __contains__(self, account):
        with self._balances() as balances:
            return account in balances

    def open(self, account, amount=0):
        with self._balances() as balances:
            balances[account] = balances.get(account, 0) + amount
            return balances[account]

    def balance(self, account):
        with self._balances() as balances:
            return _get(balances, account)

    def total(self):
        with self._balances() as balances:
            return sum(balances.values())

    def deposit(self, account, amount):
        """Add ``amount`` and return the new balance."""
        with self._balances() as balances:
            balances[account] = _get(balances, account) + amount
            return balances[account]

    def withdraw(self, account, amount):
        """Take ``amount`` out and return the new balance."""
        with self._balances() as balances:
            new = _get(balances, account) - amount
            if new < 0:
                raise InsufficientFunds(f"{account}: balance would be {new}")
            balances[account] = new
            return new

    def transfer(self, source, target, amount):
        """Move ``amount`` from ``source`` to ``target`` atomically."""
        with self._balances() as balances:
            left = _get(balances, source) - amount
            _get(balances, target)
            if left < 0:
                raise InsufficientFunds(f"{source}: balance would be {left}")
            balances[source] = left
            balances[target] += amount

    @contextmanager
    def _balances(self):
        # A short poll interval: the lock is only ever held for one small read/write.
        with FileLock(self.lock_path, poll_interval=0.001):
            balances = self._read()
            before = dict(balances)
            yield balances
            if balances != before:
                self._write(balances)

    def _read(self):
        try:
            with open(self.path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def _write(self, balances):
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(balances, f)
        os.replace(tmp, self.path)


def _get(balances, account):
    try:
        return balances[account]
    except KeyError:
        raise UnknownAccount(account) from None
