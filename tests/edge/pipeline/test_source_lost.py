"""A run that ends because of an error exits non-zero, so systemd's Restart=on-failure restarts it (issue #14):
a looping file that cannot be reopened used to end `agecam run` with exit 0."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[3]


def short_video(path: Path, frames: int = 5, fps: float = 5.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (160, 120))
    for index in range(frames):
        writer.write(np.full((120, 160, 3), 40 * index, np.uint8))
    writer.release()
    return path


def run_started(db: Path) -> bool:
    if not db.exists():
        return False
    with contextlib.closing(sqlite3.connect(db)) as connection, contextlib.suppress(sqlite3.Error):
        return connection.execute("SELECT count(*) FROM runs").fetchone()[0] > 0
    return False


def test_a_looping_file_that_cannot_be_reopened_fails_the_run(write_config, tmp_path):
    video = short_video(tmp_path / "loop.mp4")
    config = write_config()
    command = [sys.executable, "-m", "edge.cli", "--config", str(config), "run", "--source", str(video), "--loop"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not run_started(tmp_path / "state" / "agecam.db"):  # the run exists once the source is open
            assert process.poll() is None and time.monotonic() < deadline, "agecam run did not start"
            time.sleep(0.1)
        video.unlink()  # the next loop (within a second) cannot reopen it
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    err = process.stderr.read()
    assert code == 3, err[-2000:]
    assert f"agecam: error: video not found: {video}" in err
    with contextlib.closing(sqlite3.connect(tmp_path / "state" / "agecam.db")) as connection:
        assert connection.execute("SELECT status FROM runs").fetchall() == [("failed",)]
