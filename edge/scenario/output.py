"""Outputs written whole or not at all: `agecam record`'s video and `agecam simulate`'s scenario folder.

Each is written under a hidden temporary name beside its target, flushed to disk, checked, and renamed into
place only at the end. On any failure (a full disk, a bad photo found midway, Ctrl-C) the temporary is
removed and a previous output stays as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from edge.errors import StateError

PARTIAL = ".partial-"  # in every temporary's name, so a leftover of a killed process is recognisable


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def write_error(path: Path, error: OSError) -> StateError:
    return StateError(f"cannot write {path} ({error.strerror}): check the folder and the free space")


def frames_readable(path: Path) -> int:
    """The frames a video file says it has, if its last one can be read, else 0. The count alone is not enough:
    a Matroska file cut short by a full disk still gives the whole count, as its header was written last."""
    capture = cv2.VideoCapture(str(path))
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        if count > 0 and not (capture.set(cv2.CAP_PROP_POS_FRAMES, count - 1) and capture.grab()):
            return 0
        return max(count, 0)
    finally:
        capture.release()


class VideoFile:
    """A cv2.VideoWriter into a temporary file beside `target`. `commit()` moves it over the target once every
    frame is in it; leaving the `with` block without a commit removes it. OpenCV reports no write error: a full
    disk leaves a short or unreadable file, which only reading it back shows."""

    def __init__(self, target: Path, fps: float, size: tuple[int, int], shown: Path | None = None) -> None:
        """`shown`: the name messages give (the final one, where `target` is in a staged folder)."""
        self.target, self.frames, self.shown = target, 0, shown or target
        if target.is_dir():
            raise StateError(f"cannot write {target}: it is a folder; give a file name")
        try:
            # The suffix stays last: VideoWriter picks the container (mp4, avi, mkv) by it.
            handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}{PARTIAL}", suffix=target.suffix)
        except OSError as error:
            raise StateError(f"cannot write {self.shown} ({error.strerror}): check that its folder exists") from None
        os.close(handle)
        self.temporary = Path(name)
        self.writer = cv2.VideoWriter(name, cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            self.discard()
            raise StateError(f"cannot write {self.shown}: check that its folder is writable")

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()  # after a commit there is nothing left to remove

    def write(self, image: np.ndarray) -> None:
        self.writer.write(image)
        self.frames += 1

    def commit(self) -> None:
        self.writer.release()
        written = frames_readable(self.temporary)
        if written != self.frames:
            raise StateError(
                f"cannot write {self.shown}: {written} of {self.frames} frames reached the disk; check the free space"
            )
        try:
            _fsync(self.temporary)
            os.chmod(self.temporary, 0o666 & ~_umask())  # mkstemp makes 0600; the file reads as before
            os.replace(self.temporary, self.target)
            _fsync(self.target.parent)
        except OSError as error:
            raise write_error(self.shown, error) from None

    def discard(self) -> None:
        self.writer.release()
        self.temporary.unlink(missing_ok=True)


@contextmanager
def staged_folder(out: Path, order: tuple[str, ...]) -> Iterator[Path]:
    """A temporary folder to write the files `order` names into. When the block ends without an error, they
    become `out`: the folder is renamed to `out`, or, where `out` exists (it may hold other files, such as a
    replay's run.db), its files replace out's one by one in that order. An error removes it."""
    if out.exists() and not out.is_dir():
        raise StateError(f"cannot write the scenario to {out}: it is a file; give a folder")
    try:
        parent = out if out.is_dir() else out.parent  # inside an existing out: the renames stay on its disk
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}{PARTIAL}"))
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700; a new scenario folder reads as before
    except OSError as error:
        raise StateError(f"cannot create {out} ({error.strerror}): check the folder") from None
    try:
        yield staging
        _move_into_place(staging, out, order)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(staging: Path, out: Path, order: tuple[str, ...]) -> None:
    try:
        for name in order:
            _fsync(staging / name)
        _fsync(staging)
        if out.is_dir():
            for name in order:
                os.replace(staging / name, out / name)
            _fsync(out)
        else:
            os.rename(staging, out)
            _fsync(out.parent)
    except OSError as error:
        raise write_error(out, error) from None
