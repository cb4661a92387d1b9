"""Processes a test file records (pid, create time) in a directory, checked afterwards."""

import os

import psutil


def records(pid_dir) -> list[str]:
    """The pids recorded, complete records only (a recorder writes a ``.tmp`` file and
    renames it: a process killed while it recorded itself leaves no empty record)."""
    return [name for name in os.listdir(pid_dir) if name.isdigit()]


def still_running(pid_dir) -> list[tuple[int, list[str]]]:
    """(pid, command line) of each recorded process that is still alive, zombies aside.

    The create time tells a recorded process from a later one that reused its pid.
    """
    alive = []
    for name in records(pid_dir):
        with open(os.path.join(pid_dir, name)) as f:
            created = float(f.read())
        try:
            proc = psutil.Process(int(name))
            if abs(proc.create_time() - created) < 0.01 and \
                    proc.status() != psutil.STATUS_ZOMBIE:
                alive.append((proc.pid, proc.cmdline()))
        except psutil.NoSuchProcess:
            pass
    return alive
