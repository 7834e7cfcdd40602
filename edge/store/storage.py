"""The event log's storage: which errors mean "storage unavailable for now" (full disk, read-only, I/O
error, locked), and what to tell the user about them."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

FREE = "free space in {folder}"
WRITABLE = "make {path} and its folder writable by agecam"
_SQLITE_PROBLEMS = {
    sqlite3.SQLITE_FULL: ("the disk is full", FREE),
    sqlite3.SQLITE_READONLY: ("the database is read-only", WRITABLE),
    sqlite3.SQLITE_PERM: ("access denied", WRITABLE),
    sqlite3.SQLITE_CANTOPEN: ("a file of the database cannot be opened", WRITABLE),
    sqlite3.SQLITE_IOERR: ("disk I/O error", "check the disk and free space in {folder}"),
    sqlite3.SQLITE_BUSY: ("locked by another program", "stop the program that holds it"),
    sqlite3.SQLITE_LOCKED: ("locked by another program", "stop the program that holds it"),
}
UNCLEAR = ("disk I/O error", "a file of the database cannot be opened")
_OS_PROBLEMS = {
    errno.ENOSPC: ("the disk is full", FREE),
    errno.EDQUOT: ("the disk quota is used up", FREE),
    errno.EROFS: ("the file system is read-only", WRITABLE),
}


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
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False
