"""A replay that does not reach its video's end (Ctrl-C) leaves the rest of its POS script unapplied: those
events belong to video never processed, and applied without frames they made sales decided on no faces
(`no_face` flags for customers nobody looked for). Real `agecam replay` of the small till scenario, paced."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import time

from live_agecam import agecam_command, environment
from pos_scenario import scenario_config

FPS = 10  # the scenario's frame rate (tests/edge/conftest.py)


def test_a_replay_stopped_midway_applies_no_event_after_its_last_frame(tmp_path, scenario, tiny_model):
    config = scenario_config(tmp_path, tiny_model)
    db = tmp_path / "run.db"
    script = [line for line in (scenario / "pos.jsonl").read_text().splitlines() if line.strip()]
    video, pos = str(scenario / "till.mp4"), str(scenario / "pos.jsonl")
    command = agecam_command(config, "replay", video, "--pos", pos, "--db", str(db))  # paced: the video's own speed
    process = subprocess.Popen(command, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while _count(db, "SELECT count(*) FROM pos_events") < 1:  # the first sale has begun
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    with contextlib.closing(sqlite3.connect(db)) as connection:
        status, frames = connection.execute("SELECT status, frames FROM runs").fetchone()
        applied = connection.execute("SELECT t FROM pos_events ORDER BY t").fetchall()
    assert status == "stopped", stderr
    last_frame_t = (frames - 1) / FPS
    assert 1 <= len(applied) < len(script), f"{len(applied)} of {len(script)} events applied"  # before: all
    assert applied[-1][0] <= last_frame_t + 1 / FPS, (applied[-1], last_frame_t)
    assert f"{len(script) - len(applied)} POS events after its last frame not applied" in stderr, stderr


def _count(db, sql: str) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
            return connection.execute(sql).fetchone()[0]
    except sqlite3.Error:  # not created yet, or its tables not yet
        return 0
