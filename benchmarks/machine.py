"""What every benchmark records about the machine and the checkout it ran on."""

from __future__ import annotations

import os
import platform
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def describe() -> dict:
    """Date, interpreter, platform and CPUs (all of them, and those this process may use)."""
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(
                os, "sched_getaffinity") else os.cpu_count()}


def load() -> str:
    """The load averages, "?" where the OS has none."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def commit() -> str:
    """The checkout's short commit, "?" outside git."""
    try:
        out = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "?"
    return out or "?"
