"""Every example in the manual runs, and prints what its page shows.

The convention the pages follow, and what is masked, are in tests/docs_examples.py
(and, for authors, CONTRIBUTING.md's "Examples in the docs").  Each example runs in
pytest subprocesses of its own, in a directory of its own, so the examples spread over
xdist's workers.
"""

import sys
import sysconfig

import docs_examples as examples
import pytest

# The pages show the runs of one environment (docs/index.md): tracebacks, the explore
# verdict's tracer and the free-threaded notes differ on another CPython.
SAME_PYTHON = pytest.mark.skipif(
    sys.version_info[:2] != examples.PYTHON or bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    reason=f"the manual's outputs come from CPython {'.'.join(map(str, examples.PYTHON))} "
           "with the GIL")


def _examples():
    """The sessions of every page, grouped: a session and those that go on in its
    directory are one example."""
    grouped = []
    for page in examples.PAGES:
        for session in examples.sessions(page):
            if session.continues and grouped:
                grouped[-1].append(session)
            else:
                grouped.append([session])
    return grouped


EXAMPLES = _examples()


@SAME_PYTHON
@pytest.mark.parametrize("example", EXAMPLES, ids=[group[0].id for group in EXAMPLES])
def test_the_example_prints_what_the_page_shows(example, tmp_path):
    problems = []
    for session in example:
        problems += examples.differences(examples.play(session, tmp_path))
    assert not problems, f"{example[0].id}: the output differs\n" + "\n".join(problems)


@pytest.mark.parametrize("page", examples.PAGES, ids=lambda page: page.name)
def test_every_python_block_is_a_run_example_or_a_fragment_that_says_why(page):
    assert examples.unexplained_blocks(page) == []


def test_the_pages_have_examples_to_run():
    """The convention is in use: a page that loses its captions fails here, not
    silently by running nothing."""
    assert len(EXAMPLES) >= 10


def test_masking_hides_what_varies_and_nothing_else():
    shown = "test_x.py::t[thread]  failed   43.3ms  (pid 18135, start jitter seed 42)"
    ran = "test_x.py::t[thread]  failed    187ms  (pid 7, start jitter seed 3503680294)"
    assert examples.mask(shown) == examples.mask(ran)
    assert examples.mask("3 of 4 workers failed") != examples.mask("1 of 4 workers failed")
    assert examples.mask("replay=x1.eNqrVipWslIqSC") == ["replay=<token>"]


def test_an_elision_stands_for_any_lines_and_nothing_else_does():
    assert examples.matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert examples.matches(["a", "...", "d"], ["a", "d"])
    assert examples.matches(["...", "d"], ["x", "d"])
    assert not examples.matches(["a", "...", "d"], ["a", "b", "c"])
    assert not examples.matches(["a", "d"], ["a", "b", "d"])
    assert not examples.matches(["a"], ["a", "b"])
