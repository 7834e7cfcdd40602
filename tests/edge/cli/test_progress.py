"""Long commands show progress on a terminal (stderr a pty here, as in a user's shell) and nothing when
stderr is a pipe or a file."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

from clips import clip
from pos_scenario import make_faces

ROOT = Path(__file__).resolve().parents[3]


def on_a_terminal(*args: str | Path) -> tuple[int, str, str]:
    """Run agecam with stderr on a pseudo-terminal; returns exit code, stdout and what the terminal showed."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "edge.cli", *(str(arg) for arg in args)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=terminal)
    os.close(terminal)
    shown = b""
    while True:
        try:
            data = os.read(controller, 65536)
        except OSError:  # EIO: the process closed its end
            break
        if not data:
            break
        shown += data
    os.close(controller)
    out = process.stdout.read().decode()
    return process.wait(timeout=120), out, shown.decode(errors="replace")


def test_replay_shows_progress_in_video_seconds_on_a_terminal(write_config, assets):
    video = clip(assets, "face-demographics-walking-and-pause")
    code, out, shown = on_a_terminal("--config", write_config(), "replay", video, "--fast")
    assert code == 0 and out.startswith("run ")
    assert "replay:" in shown and "/3.3 s of video" in shown, shown


def test_replay_shows_no_progress_off_a_terminal(agecam, write_config, assets):
    result = agecam("--config", write_config(), "replay", clip(assets, "face-demographics-walking"), "--fast")
    assert result.code == 0 and "replay:" not in result.err and "s of video" not in result.err


def test_simulate_shows_progress_on_a_terminal_and_none_off_it(agecam, assets, tmp_path):
    faces = make_faces(assets / "data" / "utkface", tmp_path / "faces", count=2)
    args = ["simulate", "--faces", faces, "--customers", "1", "--fps", "5", "--size", "320x240"]
    code, out, shown = on_a_terminal(*args, "--out", tmp_path / "on-terminal")
    assert code == 0 and '"frames"' in out
    assert "simulate:" in shown and "frame" in shown, shown
    piped = agecam(*args, "--out", tmp_path / "piped")
    assert piped.code == 0 and "simulate:" not in piped.err
