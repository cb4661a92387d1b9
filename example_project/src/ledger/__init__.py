"""A small account ledger: an in-memory store and a file-backed store."""

from ledger.errors import InsufficientFunds, UnknownAccount
from ledger.filestore import FileLedger
from ledger.memory import Ledger

__all__ = ["FileLedger", "InsufficientFunds", "Ledger", "UnknownAccount"]
