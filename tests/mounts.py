"""Real file systems for tests: a small tmpfs to fill, or a mount of another kind (mounting needs root: the
test is skipped elsewhere)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def mounted(folder: Path, *options: str) -> Iterator[Path]:
    """A file system mounted at `folder` (`mount OPTIONS... folder`) for the block."""
    folder.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", *options, str(folder)], capture_output=True).returncode:
        pytest.skip("mounting a file system needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def tmpfs(folder: Path, size: str) -> contextlib.AbstractContextManager[Path]:
    """A tmpfs of `size` (such as "512k") at `folder` for the block."""
    return mounted(folder, "-t", "tmpfs", "-o", f"size={size}", "tmpfs")


def fill_disk(folder: Path) -> Path:
    """Fill the file system of `folder` to its last byte with one file, returned so that a test can free it."""
    filler = folder / "filler"
    with contextlib.suppress(OSError), filler.open("wb", buffering=0) as stream:
        for chunk in (1 << 20, 65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    stream.write(b"\0" * chunk)
    return filler
