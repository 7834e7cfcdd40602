"""The config loader refuses YAML anchors and aliases (issue #14): a 500-byte alias bomb made `agecam config
check` run out of memory (exit 1) instead of a one-line error (exit 2)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOL = "  - &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
LEVELS = "".join(
    f"  - &{name} [{', '.join([f'*{below}'] * 9)}]\n" for below, name in zip("abcdefgh", "bcdefghi", strict=True)
)
ALIAS_BOMB = "source:\n  uri:\n" + LOL + LEVELS  # 9^9 strings once expanded, e.g. to show the bad value


def test_yaml_aliases_are_refused_in_one_line_naming_the_file(agecam, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("pos:\n  restricted_categories: &drinks [beer, wine]\npolicy: {}\nalerts: {}\n")
    result = agecam("--config", path, "config", "check")
    lines = [line for line in result.err.splitlines() if line.startswith("agecam: error:")]
    assert result.code == 2 and len(lines) == 1 and "Traceback" not in result.err
    assert lines[0] == (
        f"agecam: error: {path}: line 2: YAML anchors and aliases (&name, *name) are not allowed: write the value out"
    )


def limit_memory() -> None:
    """2 GiB of address space: a regression fails in the child process, not on the whole machine."""
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def test_a_500_byte_alias_bomb_exits_2_at_once(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 500
    command = [sys.executable, "-m", "edge.cli", "--config", str(path), "config", "check"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, preexec_fn=limit_memory, env=env)
    assert result.returncode == 2, result.stderr[-500:]
    assert result.stderr.strip().splitlines()[-1].startswith(f"agecam: error: {path}: line 3:")
