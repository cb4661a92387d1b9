"""Headless Chromium for checking the HTML report: dump its DOM, take screenshots.

Debian's ``chromium`` package; every call gets a fresh profile directory and
the flags that keep it offline and quiet (no sync, updates or background
networking), so a run never depends on the network or on an earlier run.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile

TIMEOUT = 60  # seconds; a cold Chromium start on a loaded CI runner can take a while

FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root, where the sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
    "--hide-scrollbars",
)


def find_chromium() -> str | None:
    """The Chromium executable on PATH, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_command(chromium: str, profile: str | pathlib.Path, *args: str) -> list[str]:
    return [chromium, *FLAGS, f"--user-data-dir={profile}", *args]


def run_chromium(*args: str, chromium: str | None = None) -> subprocess.CompletedProcess:
    """Run Chromium with ``args`` in a fresh profile; raise if it fails or hangs."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium is not installed")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-",
                                     ignore_cleanup_errors=True) as profile:
        command = chromium_command(chromium, profile, *args)
        # Its own session, so that a hang is ended with all of Chromium's helper processes.
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True) as proc:
            try:
                out, err = proc.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                raise RuntimeError(f"chromium did not finish within {TIMEOUT}s: {command}")
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited with {proc.returncode}:\n{err[-4000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def dump_dom(page: pathlib.Path, size: tuple[int, int] = (1280, 2000),
             chromium: str | None = None) -> str:
    """The DOM of ``page`` (a local file) after Chromium loaded it in a window of ``size``."""
    return run_chromium("--dump-dom", f"--window-size={size[0]},{size[1]}",
                        pathlib.Path(page).resolve().as_uri(), chromium=chromium).stdout


def screenshot(page: pathlib.Path, png: pathlib.Path, size: tuple[int, int] = (1280, 2000),
               chromium: str | None = None) -> pathlib.Path:
    """Save a PNG of ``page`` at window ``size`` to ``png``."""
    png = pathlib.Path(png).resolve()
    run_chromium(f"--screenshot={png}", f"--window-size={size[0]},{size[1]}",
                 pathlib.Path(page).resolve().as_uri(), chromium=chromium)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {png}")
    return png


def chart_sizes(dom: str) -> dict[str, tuple[int, int, int]]:
    """What the report page's script measured after layout, per chart id: (laid-out
    width, height, how many of its rects were drawn with a visible width); an empty
    dict if the script did not run."""
    found = re.search(r'data-chart-sizes="([^"]*)"', dom)
    if found is None:
        return {}
    return {ident: (int(w), int(h), int(n)) for ident, w, h, n in
            re.findall(r"([\w-]+)=(\d+)x(\d+):(\d+)", found.group(1))}
