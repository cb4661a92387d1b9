import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _inner_sessions_stand_alone(monkeypatch):
    """A session a test starts is not under pytest-xdist even when this one is, and
    writes no GitHub step summary."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def run(pytester):
    """Run pytest in a subprocess on the files the test wrote; returns the result."""

    def run(*args, timeout=120):
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args,
                                             timeout=timeout)

    return run
