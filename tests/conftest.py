import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def run(pytester):
    """Run pytest in a subprocess on the files the test wrote; returns the result."""

    def run(*args, timeout=120):
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args,
                                             timeout=timeout)

    return run
