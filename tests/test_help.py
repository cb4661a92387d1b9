"""``pytest --help``: a user's first command, with every option and ini value."""

import subprocess
import sys

from pytest_concurrency import options


def test_help_lists_every_option_and_ini_value(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    for option in options.OPTIONS:
        assert option.flag in done.stdout
        assert f"{option.ini} (" in done.stdout
    # help texts with a percent sign come out as written
    assert "median:10%" in done.stdout and "%%" not in done.stdout
