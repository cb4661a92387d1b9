"""strategy="dpor" and lock_order through pytest: what a user sees."""

import json
import re

import pytest

from pytest_concurrency.explore.selftest import problem

pytestmark = pytest.mark.skipif(problem() is not None, reason=f"dpor: {problem()}")

ACCOUNTS = """
import threading
import pytest

class Accounts:
    def __init__(self):
        self.lock = threading.Lock()
        self.balance = {{"alice": 100, "bob": 0}}

    def transfer(self, amount):
        {guard}
            if self.balance["alice"] >= amount:
                self.balance["alice"] -= amount
                self.balance["bob"] += amount

@pytest.fixture
def accounts():
    return Accounts()

@pytest.mark.concurrency(modes=["explore"], strategy="dpor", schedules=500)
def test_transfers(accounts, worker):
    accounts.transfer(60)
    assert accounts.balance["alice"] >= 0, f"overdrawn by worker {{worker.index}}"
"""


def _accounts(pytester, locked):
    guard = "with self.lock:" if locked else "if True:"
    pytester.makepyfile(test_bank=ACCOUNTS.format(guard=guard))


def test_a_fixed_program_is_verified_complete(pytester, tmp_path):
    _accounts(pytester, locked=True)
    report = tmp_path / "r.json"
    result = pytester.runpytest("-p", "no:cacheprovider", "-v", f"--concurrency-report={report}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*verified: all * distinct interleavings explored, no failure "
        "(complete, no preemption bound; strategy=dpor*"])
    (entry,) = json.loads(report.read_text())["tests"]
    exploration = entry["exploration"]
    assert exploration["strategy"] == "dpor" and exploration["complete"] is True
    assert 1 <= exploration["distinct"] == exploration["schedules"] <= 10


def test_a_bug_is_found_and_its_token_replays_it(pytester):
    _accounts(pytester, locked=False)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*explore found an assertion in schedule * (strategy=dpor*",
                                 "*overdrawn by worker*"])
    token = re.findall(r"--concurrency-replay=(\S+)", result.stdout.str())[0]
    again = pytester.runpytest("-p", "no:cacheprovider", "test_bank.py::test_transfers[explore]",
                               f"--concurrency-replay={token}")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["*overdrawn by worker*"])


def test_an_uncontrolled_wait_is_never_called_complete(pytester):
    pytester.makepyfile(
        """
        import time
        import pytest

        @pytest.mark.concurrency(modes=["explore"], strategy="dpor", schedules=50)
        def test_sleeps(worker):
            time.sleep(0.01)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*no failure in * schedule*; not complete (virtual time "
                                 "passed for a timed wait or sleep*"])
    result.stdout.no_fnmatch_line("*verified*")


INVERSION = """
import threading
import pytest

class Ledger:
    def __init__(self):
        self.entries = threading.Lock()
        self.audit = threading.Lock()
        self.done = threading.Event()

def post(ledger):
    with ledger.entries:
        with ledger.audit:
            pass
    ledger.done.set()

def review(ledger):
    ledger.done.wait()  # only after post finished: no schedule can deadlock
    with ledger.audit:
        with ledger.entries:
            pass

@pytest.mark.concurrency(modes=["explore"], schedules=20{policy})
def test_orders(concurrency):
    concurrency.run_actors(post, review, setup=Ledger)
"""


def test_a_lock_order_inversion_fails_with_both_orders_and_sites(pytester):
    pytester.makepyfile(test_ledger=INVERSION.format(policy=""))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*explore found a potential deadlock (seen by schedule *; no schedule deadlocked)",
        "*ledger.entries (made at test_ledger.py:6) and ledger.audit (made at "
        "test_ledger.py:7) are taken in opposite orders*",
        "  worker 0 took ledger.entries (test_ledger.py:11), then ledger.audit "
        "(test_ledger.py:12)",
        "  worker 1 took ledger.audit (test_ledger.py:18), then ledger.entries "
        "(test_ledger.py:19)",
    ])
    result.stdout.no_fnmatch_line("*replay it with*")


@pytest.mark.parametrize("policy, warned", [("warn", True), ("ignore", False)])
def test_lock_order_can_warn_or_be_ignored(pytester, policy, warned):
    pytester.makepyfile(test_ledger=INVERSION.format(policy=f", lock_order={policy!r}"))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert ("are taken in opposite orders" in result.stdout.str()) is warned


TALLY = """
import collections
import threading
import pytest

class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()

    def add(self, word):
        with self.lock:
            self.counts.update([word])

@pytest.fixture
def tally():
    return Tally()

@pytest.mark.concurrency(modes=["explore"], strategy="dpor"{instrument})
def test_tally(tally):
    tally.add("x")
"""


def test_a_call_into_a_package_explore_does_not_rewrite_is_named_never_verified(pytester):
    pytester.makepyfile(test_tally=TALLY.format(instrument=""))
    result = pytester.runpytest("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*explore: no failure in * schedules; not complete (could not see inside "
        "collections.Counter.update (not instrumented; instrument=?'collections'? would), "
        "at test_tally.py:12)*rewritten code"])
    result.stdout.no_fnmatch_line("*explore: verified*")


def test_the_package_named_in_instrument_is_rewritten_and_the_fix_verified(pytester):
    pytester.makepyfile(test_tally=TALLY.format(instrument=", instrument=['collections']"))
    result = pytester.runpytest("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*explore: verified: all * distinct interleavings explored*"])


def test_a_failing_assert_keeps_pytests_introspection_under_dpor(pytester):
    pytester.makepyfile(
        """
        import pytest

        class Box:
            value = 0

        @pytest.fixture
        def box():
            return Box()

        @pytest.mark.concurrency(modes=["explore"], strategy="dpor")
        def test_box(box, worker):
            current = box.value
            box.value = current + 1
            assert box.value == current + 1
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*explore found an assertion in schedule * (strategy=dpor*",
                                 "AssertionError: assert 2 == (* + 1)",
                                 " +  where 2 = <*Box object at *>.value"])
