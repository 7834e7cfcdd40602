"""Which agecam wrote a model file: recorded in its metadata (`agecam.code_version`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from edge import __version__


def code_version() -> str:
    """agecam's version and, in a git checkout, the commit (with -dirty for uncommitted changes)."""
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return f"{__version__}+{commit}"
