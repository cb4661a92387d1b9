"""texts.py (user text made safe and bounded) and standins.py (exceptions too big
or too broken to format, replaced by stand-ins that show what fits)."""

import traceback

import pytest

from pytest_concurrency import outcomes, standins, texts
from pytest_concurrency.context import WorkerInfo
from pytest_concurrency.results import Outcomes, tally_table


class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("str is broken")

    def __repr__(self):
        raise RuntimeError("repr is broken")


def raised(exc):
    try:
        raise exc
    except BaseException as caught:
        return caught


def chain(links):
    exc = None
    for i in range(links):
        try:
            raise ValueError(f"link {i}") from exc
        except ValueError as caught:
            exc = caught
    return exc


# texts


def test_safe_str_and_repr_say_what_raised():
    assert texts.safe_str(BadStr()) == "<str() raised RuntimeError: str is broken>"
    assert texts.safe_repr(BadStr()) == (
        "<BadStr object; repr() raised RuntimeError: repr is broken>")
    assert texts.safe_str(42) == "42"

    class Worse(Exception):  # what __str__ raises cannot be printed either
        def __str__(self):
            raise BadStr()

    assert texts.safe_str(Worse()) == "<str() raised BadStr>"


def test_safe_str_lets_interrupts_through():
    class Interrupting:
        def __str__(self):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        texts.safe_str(Interrupting())


def test_a_text_within_bounds_comes_back_as_it_is():
    text = "line\n" * 10
    assert texts.head(text, 100, 20) is text
    assert texts.tail(text, 100, 20) is text
    assert texts.middle(text, 100, 20) is text


@pytest.mark.parametrize("cut", [texts.head, texts.tail, texts.middle])
def test_a_long_text_is_cut_by_bytes_and_says_how_much(cut):
    text = "é" * 60_000  # 120 kB of UTF-8 on one line
    shown = cut(text, 1000, 10)
    assert len(shown.encode()) < 1100
    assert "119.0 kB" in shown and "not shown" in shown


@pytest.mark.parametrize(("cut", "kept"), [(texts.head, "0\n1\n2"), (texts.tail, "97\n98\n99")])
def test_a_text_of_many_lines_is_cut_by_lines(cut, kept):
    text = "\n".join(str(i) for i in range(100))
    shown = cut(text, 10_000, 3)
    assert kept in shown
    assert "97 lines" in shown and "not shown" in shown
    assert len(shown.splitlines()) == 4


def test_middle_keeps_both_ends():
    text = "\n".join(f"frame {i}" for i in range(10_000))
    shown = texts.middle(text, 100_000, 10)
    lines = shown.splitlines()
    assert lines[0] == "frame 0" and lines[-1] == "frame 9999"
    assert lines[5].startswith("... 9,990 lines")


def test_one_line_takes_the_first_line_within_bounds():
    assert texts.one_line("  first\nsecond") == "first"
    line = texts.one_line("x" * 5000, 100)
    assert len(line) == 100 and line.endswith("...")


def test_short_repr_is_one_line_and_bounded():
    class Tall:
        def __repr__(self):
            return "Tall(\n  a=1,\n  b=2)"

    assert texts.short_repr(Tall()) == "Tall( a=1, b=2)"
    assert len(texts.short_repr("x" * 10**6)) <= texts.REPR_BYTES


def test_read_tail_reads_only_the_end(tmp_path):
    path = tmp_path / "err"
    path.write_bytes(b"a" * 3_000_000 + "é\nlast line\n".encode())
    text, before = texts.read_tail(str(path), 1000)
    assert text.endswith("last line\n") and len(text.encode()) <= 1000
    assert before == 3_000_000 + len("é\nlast line\n".encode()) - len(text.encode())
    shown = texts.tail(text, 1000, 40, before=before)
    assert shown.startswith("... 3.0 MB before this not shown\n")
    assert texts.read_tail(str(path), 1000, offset=3_000_000)[1] == 0  # within reach


def test_read_tail_starts_at_a_character(tmp_path):
    path = tmp_path / "err"
    path.write_bytes("é".encode() * 100)
    text, before = texts.read_tail(str(path), 11)  # 5.5 characters
    assert text == "é" * 5 and before == 190


@pytest.mark.parametrize(("count", "text"), [(1, "1 byte"), (999, "999 bytes"),
                                             (49_900_000, "49.9 MB"), (12_345, "12.3 kB")])
def test_size(count, text):
    assert texts.size(count) == text


# standins


def test_an_exception_within_bounds_is_itself():
    exc = raised(ValueError("fine"))
    assert standins.bounded(exc) is exc


def test_a_huge_message_is_cut():
    exc = raised(ValueError("x" * 5_000_000))
    shown = standins.bounded(exc)
    assert type(shown).__name__ == "ValueError" and isinstance(shown, standins.StandIn)
    assert shown.__traceback__ is exc.__traceback__
    assert len(str(shown)) < texts.MESSAGE_BYTES + 100
    assert str(shown).endswith("... 4.9 MB more not shown")


def test_a_long_chain_is_cut_with_its_length():
    shown = standins.bounded(chain(20_000))
    text = "".join(traceback.format_exception(shown))
    assert text.count("The above exception was the direct cause") == standins.CHAIN_LINKS + 1
    assert "pytest_concurrency.NotShown: ... 19,983 more chained exceptions not shown" in text
    assert text.rstrip().endswith("ValueError: link 19999")


def test_a_cycle_in_the_chain_is_formatted_once():
    a, b = ValueError("a"), KeyError("b")
    a.__cause__, b.__cause__ = b, a
    assert standins.bounded(a) is a  # the traceback module stops at a cycle itself
    a.args = ("a" * 100_000,)
    text = "".join(traceback.format_exception(standins.bounded(a)))
    assert text.count("KeyError: 'b'") == 1


def test_groups_are_cut_in_width_and_depth():
    wide = standins.bounded(ExceptionGroup("wide", [ValueError(i) for i in range(1000)]))
    assert len(wide.exceptions) == standins.GROUP_WIDTH
    assert wide.__notes__ == ["... 985 more exceptions in this group not shown"]
    deep = ValueError("leaf")
    for i in range(3000):
        deep = ExceptionGroup(f"g{i}", [deep])
    shown = standins.bounded(deep)
    for _ in range(standins.GROUP_DEPTH):
        shown = shown.exceptions[0]
    assert "nested more than 10 groups deep" in str(shown.exceptions[0])
    traceback.format_exception(standins.bounded(deep))  # no RecursionError


def test_base_exceptions_and_assertions_keep_their_kind():
    class Stop(BaseException):
        pass

    stop = standins.bounded(Stop("s" * 100_000))
    assert not isinstance(stop, Exception) and type(stop).__qualname__.endswith("Stop")
    assert isinstance(standins.bounded(AssertionError("y\n" * 10_000)), AssertionError)
    group = standins.bounded(BaseExceptionGroup("g", [KeyboardInterrupt()] * 20))
    assert isinstance(group, BaseExceptionGroup) and not isinstance(group, Exception)


def test_an_exception_whose_str_raises_gets_a_stand_in_that_says_so():
    exc = raised(BadStr("real"))
    shown = standins.bounded(exc)
    assert str(shown) == "<str() raised RuntimeError: str is broken>"
    assert repr(shown)  # pytest's report of a group of one calls repr()
    assert standins.summary(exc) == (
        "BadStr (its message could not be formatted: str() raised RuntimeError: "
        "str is broken)")


# outcomes: what a failure keeps


def info(index):
    return WorkerInfo(index, 2, "thread", 0, index, 3, 100)


def test_a_failure_whose_exception_cannot_be_formatted_keeps_type_worker_and_traceback():
    failures = outcomes.describe([(raised(BadStr("real")), info(1))], "long")
    (failure,) = failures
    assert failure.summary.startswith("BadStr (its message could not be formatted")
    assert failure.label == "worker 1 (thread mode, pid 100) in iteration 3"
    assert "raise exc" in failure.text and "BadStr" in failure.text
    with pytest.raises(outcomes.WorkerFailures) as caught:
        outcomes.raise_for(failures, "thread", 2)
    assert "its message could not be formatted" in outcomes.render(caught.value)


@pytest.mark.parametrize("style", ["long", "short", "native"])
def test_failure_texts_are_bounded(style):
    exc = raised(ValueError("line\n" * 2_000_000))
    (failure,) = outcomes.describe([(exc, info(0))], style)
    assert len(failure.text.encode()) <= texts.TEXT_BYTES + 1000
    assert "not shown" in failure.text
    assert len(failure.summary) <= texts.SUMMARY_BYTES


def test_exceptions_that_cannot_cross_to_the_parent_stay_behind():
    class ExitsWhenPickled(Exception):
        def __reduce__(self):
            raise SystemExit("pickling exits")

    raw = [(raised(ExitsWhenPickled("p")), info(0)),
           (raised(ValueError("v" * 2_000_000)), info(1))]  # pickles to 2 MB
    portable = outcomes.make_portable(outcomes.describe(raw, "long"))
    assert [f.exc for f in portable] == [None, None]
    assert portable[0].summary.endswith("ExitsWhenPickled: p")


def test_tallies_show_bounded_reprs_even_when_repr_raises():
    class Huge:
        def __repr__(self):
            return "H" * 1_000_000

    counts = Outcomes({Huge(): 3, BadStr(): 1, (1, 2): 5})
    table = tally_table(counts, acceptable=[(1, 2)])
    assert max(map(len, table.splitlines())) < texts.REPR_BYTES + 40
    assert "<BadStr object; repr() raised RuntimeError: repr is broken>" in table
    with pytest.raises(AssertionError, match="4 of 9 rounds"):
        counts.expect((1, 2))
