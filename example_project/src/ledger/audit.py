"""CPU-bound work: a pure-Python checksum over the ledger's entries.

The loop runs in the interpreter and holds the GIL the whole time, so threads
take turns while processes run in parallel.
"""

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK = 2**64 - 1


def audit_digest(entries, rounds=50):
    """FNV-1a over ``"account:amount;..."``, folded ``rounds`` times; hex string."""
    data = ";".join(f"{account}:{amount}" for account, amount in entries).encode()
    h = FNV_OFFSET
    for _ in range(rounds):
        for byte in data:
            h = ((h ^ byte) * FNV_PRIME) & MASK
    return f"{h:016x}"
