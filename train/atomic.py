"""Whole-file writes: a run's checkpoints and reports are replaced in one rename, never written in place."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from edge.errors import StateError


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)` beside `path`, then rename it over `path`: a kill or a full disk leaves the old file (or
    none) and no torn one, which a resumed run or `agecam candidates` would then read. StateError (exit 6)
    where the folder cannot take it; the temporary file never stays behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # not mkstemp: its 0600 would stick to the file
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as error:
        reason = error.strerror or str(error)
        raise StateError(f"cannot write {path} ({reason}): free space or choose another folder") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
