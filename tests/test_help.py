"""``pytest --help``: a user's first command, with every option and ini value."""

import subprocess
import sys

from pytest_concurrency import plugin, spec


def all_options() -> list[str]:
    names = [*spec.OPTIONS, "strict", *(name for name, _, _ in plugin.REPORT_OPTIONS)]
    return [name.replace("_", "-") for name in names]


def test_help_lists_every_option_and_ini_value(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    for name in all_options():
        assert f"--concurrency-{name}" in done.stdout
        assert f"concurrency_{name.replace('-', '_')} (" in done.stdout
    # help texts with a percent sign come out as written
    assert "median:10%" in done.stdout and "%%" not in done.stdout
