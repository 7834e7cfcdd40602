"""What a path given for a file to read (a model, a detector) is instead, in words for one error line."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_GONE = (errno.ENOENT, errno.ENOTDIR)


def not_a_file(path: Path) -> str | None:
    """None where `path` is a regular file (through any symbolic links), else what it is: 'not found', 'is a
    folder', 'is a symbolic link to a missing file X', 'is a symbolic link loop'. A dangling link or a loop
    read 'not found' before, though a listing of the folder shows the name."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        return _unreadable(path, error)
    if stat.S_ISREG(mode):
        return None
    return "is a folder" if stat.S_ISDIR(mode) else "is not a regular file"


def _unreadable(path: Path, error: OSError) -> str:
    if error.errno == errno.ELOOP:  # a link that leads back to itself, at the end of the path or on the way
        return "is a symbolic link loop" if path.is_symlink() else "has a symbolic link loop in its folders"
    if error.errno in _GONE:
        # realpath follows the links as far as they go: the name the user must create or fix
        if path.is_symlink():
            return f"is a symbolic link to a missing file {os.path.realpath(path)}"
        return "not found"
    return f"cannot be read ({error.strerror})"
