"""Which process a run belongs to. A pid alone is not enough: after a reboot, or in a container where
agecam is always pid 7, a dead run's pid is often alive again in another process. So a run records its
process's start marker (boot id and start time in clock ticks, from /proc) and a later run compares it."""

from __future__ import annotations

import os
from pathlib import Path

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def start_marker(pid: int) -> str | None:
    """'BOOT_ID:TICKS' for a live process, None where /proc cannot tell. The boot id may be empty: systemd's
    ProcSubset=pid hides /proc/sys, and the start ticks alone still tell processes apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22, starttime; the command name (field 2) may hold spaces and parentheses, so count from its end.
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20:
        return None
    try:
        boot = BOOT_ID.read_text().strip()
    except OSError:
        boot = ""
    return f"{boot}:{fields[19]}"


def same_start(recorded: str, current: str) -> bool:
    boot_a, _, ticks_a = recorded.partition(":")
    boot_b, _, ticks_b = current.partition(":")
    return ticks_a == ticks_b and (boot_a == boot_b or not boot_a or not boot_b)


def run_process_alive(pid: int | None, recorded: str | None) -> bool:
    """Whether the process that started a run may still be running it."""
    if pid is None or not _pid_alive(pid):
        return False
    current = start_marker(pid)
    if recorded is not None and current is not None:
        return same_start(recorded, current)
    # A run from before start markers cannot be this process's (it records them); for another live pid
    # there is no way to tell, so assume alive rather than fail a run that may still be going.
    return not (recorded is None and current is not None and pid == os.getpid())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True
