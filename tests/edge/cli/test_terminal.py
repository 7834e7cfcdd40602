"""What a user sees in a terminal: no native library noise before agecam's own error, no traceback when a
reader closes the pipe, a note on stderr when --limit cut a list, and one line for a --limit out of range."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]


def agecam_process(*args: str | Path, **options) -> subprocess.Popen:
    """`python -m edge.cli ARGS` with this checkout's code, as a user's shell starts it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("OPENCV_LOG_LEVEL", "OPENCV_FFMPEG_LOGLEVEL"):
        env.pop(name, None)
    command = [sys.executable, "-m", "edge.cli", *(str(arg) for arg in args)]
    return subprocess.Popen(command, env=env, text=True, **options)


def run_agecam(*args: str | Path) -> subprocess.CompletedProcess:
    process = agecam_process(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.fixture
def truncated_mp4(tmp_path: Path) -> Path:
    """An mp4 cut in half before its index (the `moov` atom, written last): FFmpeg complains on its own."""
    whole = tmp_path / "whole.mp4"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter.fourcc(*"mp4v"), 10, (64, 48))
    for level in range(20):
        writer.write(np.full((48, 64, 3), level * 10, np.uint8))
    writer.release()
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    return cut


def test_a_truncated_video_gives_only_agecams_line(write_config, truncated_mp4):
    result = run_agecam("--config", write_config(), "replay", truncated_mp4, "--fast")
    assert result.returncode == 3
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("agecam: error: ") and "cut.mp4" in result.stderr


def test_a_camera_that_is_not_there_gives_only_agecams_line(write_config):
    result = run_agecam("--config", write_config(), "run", "--source", "57")
    assert result.returncode == 3
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("agecam: error: cannot open video source 57")


def test_debug_logs_keep_the_native_messages(write_config, truncated_mp4):
    result = run_agecam("--config", write_config(), "--log-level", "DEBUG", "replay", truncated_mp4, "--fast")
    assert result.returncode == 3 and "moov atom not found" in result.stderr


def test_a_reader_that_closes_the_pipe_early_is_no_error(default_run):
    """`agecam events | head`: the reader is gone before agecam writes; no traceback, exit 0."""
    _, config, db = default_run
    process = agecam_process("--config", config, "events", "--db", db, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # before the interpreter has even started: every write meets a closed pipe
    err = process.stderr.read()
    assert process.wait(timeout=60) == 0, err
    assert err == ""


def test_limit_says_on_stderr_when_it_cut_the_list(agecam, default_run):
    _, config, db = default_run
    everything = agecam("--config", config, "events", "--db", db, "--format", "json")
    assert everything.err == "" and len(everything.json()) > 3
    cut = agecam("--config", config, "events", "--db", db, "--format", "json", "--limit", "3")
    assert cut.json() == everything.json()[:3]
    assert "showing the first 3 rows" in cut.err and "--limit" in cut.err
    exact = agecam("--config", config, "events", "--db", db, "--format", "json", "--limit", len(everything.json()))
    assert exact.err == "" and exact.json() == everything.json()


@pytest.mark.parametrize("limit", ["9223372036854775807", "99999999999999999999"])
def test_a_limit_beyond_the_databases_integers_is_one_line(agecam, default_run, limit):
    """A --limit past SQLite's 64-bit integers was an OverflowError: exit 1 and a traceback."""
    _, config, db = default_run
    result = agecam("--config", config, "events", "--db", db, "--limit", limit)
    assert result.code == 2 and "Traceback" not in result.err, result.err
    assert result.err.startswith(f"agecam: error: --limit {limit}: ") and len(result.err.splitlines()) == 1
    assert agecam("--config", config, "events", "--db", db, "--limit", "1000000000").code == 0
