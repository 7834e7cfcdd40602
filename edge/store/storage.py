"""The event log's storage while a run writes to it: which errors mean "storage unavailable for now"
(full disk, read-only, I/O error, locked), the health shared by a run's connections, and whether the
database file at the path is still the one the run opened."""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path

from edge.errors import StateError

FREE = "free space in {folder}"
WRITABLE = "make {path} and its folder writable by agecam"
# SQLITE_BUSY: the lock outlasted the wait (0.25 s in the frame loop). Agecam's own POS commit holds it
# that long when its fsync crawls on slow storage, so another program is only one of two causes.
LOCKED = (
    "the database stayed locked: another program holds it, or the disk is too slow to finish a commit",
    "stop any program that has {path} open (a backup, the sqlite3 shell); if none does, check the disk "
    "of {folder} for errors or wear (a slow SD card or USB stick)",
)
_SQLITE_PROBLEMS = {
    sqlite3.SQLITE_FULL: ("the disk is full", FREE),
    sqlite3.SQLITE_READONLY: ("the database is read-only", WRITABLE),
    sqlite3.SQLITE_PERM: ("access denied", WRITABLE),
    sqlite3.SQLITE_CANTOPEN: ("a file of the database cannot be opened", WRITABLE),
    sqlite3.SQLITE_IOERR: ("disk I/O error", "check the disk and free space in {folder}"),
    sqlite3.SQLITE_BUSY: LOCKED,
    sqlite3.SQLITE_LOCKED: LOCKED,
}
UNCLEAR = ("disk I/O error", "a file of the database cannot be opened")
_OS_PROBLEMS = {
    errno.ENOSPC: ("the disk is full", FREE),
    errno.EDQUOT: ("the disk quota is used up", FREE),
    errno.EROFS: ("the file system is read-only", WRITABLE),
}


# File systems where the kernel shows its own state as files: none of them can hold a database.
KERNEL_FILE_SYSTEMS = frozenset(
    {"proc", "sysfs", "cgroup", "cgroup2", "devpts", "debugfs", "tracefs", "securityfs", "pstore", "bpf", "configfs"}
    | {"efivarfs", "fusectl", "mqueue", "binfmt_misc"}
)
MOUNTS = Path("/proc/self/mountinfo")


class StorageError(StateError):
    """A write that the storage refused for now (it may work again later), or a database file that was
    removed or replaced while running. Exit code 6 when it ends a command."""


def storage_problem(error: BaseException, path: Path) -> str | None:
    """What is wrong and what to do, when `error` means the storage cannot take writes now; None for any
    other error (a bug, a damaged file), which is not retried."""
    found = None
    if isinstance(error, sqlite3.Error) and isinstance(getattr(error, "sqlite_errorcode", None), int):
        found = _SQLITE_PROBLEMS.get(error.sqlite_errorcode & 0xFF)
    elif isinstance(error, OSError):
        found = _OS_PROBLEMS.get(error.errno or 0)
    if found is None:
        return None
    folder = path.absolute().parent
    if found[0] in UNCLEAR and _no_space_left(folder):  # SQLite reports some ENOSPC as I/O errors
        found = _OS_PROBLEMS[errno.ENOSPC]
    reason, advice = found
    detail = f" ({error})" if str(error) != reason else ""
    return f"{reason}{detail}: {advice.format(path=path, folder=folder)}"


def _no_space_left(folder: Path) -> bool:
    try:
        found = os.statvfs(folder)
    except OSError:
        return False
    # A virtual file system (/proc, /sys) has no blocks at all: none free is not a full disk there.
    return found.f_blocks > 0 and found.f_bavail == 0


def unfit_for_a_log(path: Path) -> str | None:
    """Why `path` can never be an event log, whatever the disk's state: a folder, a device, pipe or socket, or
    a file of a virtual file system of the kernel such as /proc; one phrase with what to do, or None. Asked once
    an open has failed or found no log there."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        found = None
    except OSError:
        return None  # the open's own error says more
    if found is not None and stat.S_ISDIR(found.st_mode):
        return f"{path} is a folder, not an event log file: give --db a file in it, such as {path / 'agecam.db'}"
    if found is not None and not stat.S_ISREG(found.st_mode):
        return f"{path} is not a regular file (a device, pipe or socket): give --db an event log file"
    where = path if found is not None else path.parent
    # No blocks is not enough: a ramfs or a tmpfs without a size limit reports none either, and holds a log.
    if _blocks(where) == 0 and _file_system(where) in KERNEL_FILE_SYSTEMS:
        return (
            f"{path} is on a virtual file system of the kernel (such as /proc or /sys), which cannot hold a"
            " database: give --db (or state.dir) a file on a disk"
        )
    return None


def _blocks(path: Path) -> int | None:
    try:
        return os.statvfs(path).f_blocks
    except OSError:
        return None


def _file_system(path: Path) -> str | None:
    """The type of the file system `path` is on, from the mount table (None where there is none to read)."""
    try:
        mounts = MOUNTS.read_text().splitlines()
    except OSError:
        return None
    target, best, found = os.path.realpath(path), "", None
    for line in mounts:  # "ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE OPTIONS"
        head, _, after = line.partition(" - ")
        fields = head.split()
        if len(fields) < 5 or not after:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda octal: chr(int(octal[1], 8)), fields[4])  # "\040": a space
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):  # the deepest mount; of two on one point, the later one
            best, found = point, after.split()[0]
    return found


class StorageHealth:
    """Shared by the connections of one event log in a run (the main loop's and the POS endpoint's).
    `problem`: the last refused write, cleared by the next commit that works; `held`: writes held in memory
    for a retry; `gone`: the database file was removed or replaced, which no retry can fix."""

    def __init__(self) -> None:
        self.problem: str | None = None
        self.held = 0
        self.gone: str | None = None

    @property
    def state(self) -> str:
        if self.gone:
            return "failed"
        return "degraded" if self.problem or self.held else "ok"

    def describe(self) -> str:
        """One phrase for status lines and /health."""
        if self.gone:
            return self.gone
        if self.problem:
            held = f", {self.held} write(s) held in memory" if self.held else ""
            return f"storage full or unwritable: {self.problem}{held}"
        return f"{self.held} write(s) held in memory" if self.held else "ok"


@dataclass(frozen=True)
class FileIdentity:
    """Device and inode of the database file: a path that now names another file, or none, means the
    file the run writes to is no longer the event log anyone will read."""

    device: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        found = os.stat(path)
        return cls(found.st_dev, found.st_ino)

    def change(self, path: Path) -> str | None:
        """'removed' or 'replaced' when the path no longer names this file, else None."""
        try:
            now = FileIdentity.of(path)
        except FileNotFoundError:
            return "removed"
        except OSError as error:
            return f"unreachable ({error.strerror})"
        return None if now == self else "replaced"
