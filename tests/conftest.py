import importlib
import pkgutil

import psutil  # noqa: F401 - see below
import pytest

import pytest_concurrency

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


@pytest.fixture(autouse=True)
def _inner_sessions_stand_alone(request, monkeypatch):
    """A session a test starts is not under pytest-xdist even when this one is, and
    writes no GitHub step summary.  pytest-asyncio (installed for the async tests)
    warns in every session whose ini does not choose a fixture loop scope: inner
    sessions choose pytest-asyncio's future default, so that the warning does not
    end up in their output."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "GITHUB_STEP_SUMMARY"):
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
