"""Writing model files only once they pass the till's own contract check, atomically: a failed write leaves
every target as it was and no temporary file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from edge.errors import ModelError
from edge.vision.age_model import AgeModel
from export.errors import ExportError

Write = Callable[[Path], None]
T = TypeVar("T")


def check_output_path(out: Path) -> None:
    if out.suffix != ".onnx" or not out.parent.is_dir():
        raise ExportError(f"cannot write {out}: name the output MODEL.onnx in an existing folder")
    if out.is_dir():  # found here, not by the rename after a whole fit or export
        raise ExportError(f"cannot write {out}: it is a folder: name a MODEL.onnx file beside it")


def write_checked(out: Path, write: Write, what: str) -> AgeModel:
    """`write(path)` into a temporary file beside `out`, check it as the till would, then replace `out`;
    returns the model as the till loaded it (its info and SHA-256)."""
    return write_all_checked([(out, write, what)])[0]


def write_all_checked(files: list[tuple[Path, Write, str]]) -> list[AgeModel]:
    """Every (out, write, what) written beside its `out` and checked before any is renamed into place: one
    that fails leaves all the targets as they were (a pool's members, say, not the first ones alone)."""
    with contextlib.ExitStack() as stack:
        staged = [(_staged(stack, out, write, what), out) for out, write, what in files]
        for (written, _), out in staged:
            _guarded(out, lambda written=written, out=out: os.replace(written, out))
    return [model for (_, model), _ in staged]


def _staged(stack: contextlib.ExitStack, out: Path, write: Write, what: str) -> tuple[Path, AgeModel]:
    """`out` written and checked in a temporary folder that `stack` removes."""
    folder = _guarded(out, lambda: stack.enter_context(tempfile.TemporaryDirectory(dir=out.parent, prefix=".agecam-")))
    written = Path(folder) / out.name
    _guarded(out, lambda: write(written))
    try:
        return written, AgeModel(written, ["CPUExecutionProvider"])
    except ModelError as error:  # named by its target: the temporary file is gone when the user reads this
        reason = str(error).replace(str(written), str(out))
        raise ExportError(f"the {what} fails the till's check ({reason}): {out} left as it was") from None


def _guarded(out: Path, step: Callable[[], T]) -> T:
    try:
        return step()
    except OSError as error:  # a read-only or full folder: the targets are as they were, the temporary folder gone
        raise ExportError(f"cannot write {out} ({error.strerror}): {out.parent} must be a writable folder") from None
