"""Writing a model file only once it passes the till's own contract check, atomically: a failed write leaves
the target as it was and no temporary file behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from edge.errors import ModelError
from edge.vision.age_model import AgeModel
from export.errors import ExportError


def check_output_path(out: Path) -> None:
    if out.suffix != ".onnx" or not out.parent.is_dir():
        raise ExportError(f"cannot write {out}: name the output MODEL.onnx in an existing folder")


def write_checked(out: Path, write: Callable[[Path], None], what: str) -> AgeModel:
    """`write(path)` into a temporary file beside `out`, check it as the till would, then replace `out`;
    returns the model as the till loaded it (its info and SHA-256)."""
    try:
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".agecam-write-") as folder:
            written = Path(folder) / out.name
            write(written)
            try:
                model = AgeModel(written, ["CPUExecutionProvider"])
            except ModelError as error:
                raise ExportError(f"the {what} fails the till's check ({error}): {out} left as it was") from None
            os.replace(written, out)
    except OSError as error:  # a read-only or full folder: the target is as it was, the temporary folder gone
        raise ExportError(f"cannot write {out} ({error.strerror}): {out.parent} must be a writable folder") from None
    return model
