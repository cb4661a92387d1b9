"""Errors raised by every ledger store."""


class LedgerError(Exception):
    """Base class for ledger errors."""


class UnknownAccount(LedgerError, KeyError):
    """The account was never opened."""


class InsufficientFunds(LedgerError):
    """A withdrawal or transfer would make a balance negative."""
