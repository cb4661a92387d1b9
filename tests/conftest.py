import importlib
import os
import pkgutil

import psutil  # noqa: F401 - see below
import pytest

import pytest_concurrency
from pytest_concurrency.report import document

# pytester's in-process runs drop the modules first imported during the run from
# sys.modules afterwards, so that a later run imports them afresh beside old
# copies still referenced (pickling then finds two classes of one name, and
# psutil, which looks itself up in sys.modules, breaks): import psutil and every
# module of the plugin (most of which it loads only when a session needs them)
# before the first such run, as a real session would have them.
for _module in pkgutil.walk_packages(pytest_concurrency.__path__, "pytest_concurrency."):
    if not _module.name.endswith("__main__"):
        importlib.import_module(_module.name)

pytest_plugins = ["pytester"]

# Whether this session runs in CI (pytest's own test: CI or BUILD_NUMBER set).  Sessions
# the tests start run without it (below); what CI must have (a browser, a compiler)
# fails there rather than skips, by this.
ON_CI = bool(os.environ.get("CI") or os.environ.get("BUILD_NUMBER"))


@pytest.fixture
def on_ci():
    return ON_CI


@pytest.fixture(autouse=True)
def _inner_sessions_stand_alone(request, monkeypatch):
    """A session a test starts is not under pytest-xdist even when this one is, and
    writes no GitHub step summary.  pytest-asyncio (installed for the async tests)
    warns in every session whose ini does not choose a fixture loop scope: inner
    sessions choose pytest-asyncio's future default, so that the warning does not
    end up in their output.  Nor does pytest know them to run in CI, where it prints
    the short summary's messages whole: the same session prints the same lines
    there as on a laptop."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "GITHUB_STEP_SUMMARY",
                 "CI", "BUILD_NUMBER"):
        monkeypatch.delenv(name, raising=False)
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")  # it clears PYTEST_ADDOPTS when it starts
    monkeypatch.setenv("PYTEST_ADDOPTS", "-o asyncio_default_fixture_loop_scope=function")


@pytest.fixture
def run(pytester):
    """Run pytest in a subprocess on the files the test wrote; returns the result."""

    def run(*args, timeout=120):
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args,
                                             timeout=timeout)

    return run


@pytest.fixture
def schema_refusals():
    """The reports and baselines refused at writing, in this process, for not
    matching their schema (see _written_reports_match_their_schema)."""
    return []


@pytest.fixture(autouse=True)
def _written_reports_match_their_schema(monkeypatch, schema_refusals):
    """Every report and baseline file is checked against its schema before it is
    written (document.text), in every session and command the tests run, in
    this process or another: one that does not match is not written, and the
    session says so (document.SCHEMA_BUG).  Here such a refusal fails the test,
    whatever the test itself looks at: in this process as it happens (a test
    of the refusal itself empties ``schema_refusals``), and in any pytest run
    through pytester by its output."""
    text = document.text

    def checked(data, kind="report"):
        try:
            return text(data, kind)
        except document.ReportError as exc:
            if document.SCHEMA_BUG in str(exc):
                schema_refusals.append(str(exc))
            raise

    monkeypatch.setattr(document, "text", checked)
    init = pytest.RunResult.__init__

    def result(self, ret, outlines, errlines, duration):
        init(self, ret, outlines, errlines, duration)
        refused = [line for line in outlines + errlines if document.SCHEMA_BUG in line]
        if refused:
            pytest.fail("a session wrote a report that does not match its schema:\n"
                        + "\n".join(refused), pytrace=False)

    monkeypatch.setattr(pytest.RunResult, "__init__", result)
    yield
    assert not schema_refusals, "a report that does not match its schema was refused"
