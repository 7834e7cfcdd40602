"""Reliability of `agecam run` as a real process (small versions of benchmarks/reliability.py, whose full runs
give the figures): kill -9 loses no acknowledged POS event, fuzzed requests never stop it, a sale cut by
kill -9 is still flagged after the restart, the database grows with customers and not with frames, and the
systemd unit verifies."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import cv2
import pytest
from reliability import fuzz, kill9, restart

from clips import clip

ROOT = Path(__file__).resolve().parents[3]


def test_kill_9_during_heavy_logging_loses_no_acknowledged_event(tiny_model):
    report = kill9(tiny_model, kills=3, seed=1)
    assert report["kills"] == 3 and report["acknowledged"] > 50
    assert report["lost"] == 0 and report["integrity_failures"] == 0
    assert report["customers_logged"] >= 3


def test_fuzzed_pos_requests_from_parallel_clients_are_all_refused(tiny_model):
    report = fuzz(tiny_model, cases=240, threads=6)
    assert report["cases"] == 240
    assert report["rejected_4xx"] + report["accepted"] == 240 and report["rejected_4xx"] > 200
    assert report["alive_after"] and report["good_event_after"]
    assert report["exit_code"] == 0 and report["integrity"] == "ok"


def test_a_sale_cut_by_kill_9_is_flagged_after_the_restart(tiny_model):
    report = restart(tiny_model, rounds=2, seed=3)
    assert report["flagged"] == 2, report["rounds_detail"]
    assert report["exit_code"] == 0 and report["integrity"] == "ok"


def still_video(path: Path, image, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 12.5, image.shape[1::-1])
    for _ in range(frames):
        writer.write(image)
    writer.release()
    return path


def test_database_grows_with_customers_not_with_frames(agecam, write_config, assets, tmp_path):
    capture = cv2.VideoCapture(str(clip(assets, "face-demographics-walking-and-pause")))
    for _ in range(20):
        image = capture.read()[1]
    sizes = {}
    for frames in (40, 400):
        video = still_video(tmp_path / f"still-{frames}.mp4", image, frames)
        db = tmp_path / f"run-{frames}.db"
        result = agecam("--config", write_config(), "replay", video, "--fast", "--db", db)
        assert result.code == 0
        connection = sqlite3.connect(db)
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert connection.execute("SELECT count(*) FROM customers").fetchone()[0] == 3
        assert connection.execute("SELECT frames FROM runs").fetchone()[0] == frames
        sizes[frames] = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.close()
    assert sizes[400] == sizes[40], f"pages grew with frames: {sizes}"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_verifies(tmp_path):
    unit = (ROOT / "systemd" / "agecam.service").read_text()
    assert "/opt/agecam/venv/bin/agecam" in unit
    # verify checks that ExecStart exists: point it at this checkout's agecam for the check.
    agecam = shutil.which("agecam") or str(ROOT / ".venv" / "bin" / "agecam")
    (tmp_path / "agecam.service").write_text(unit.replace("/opt/agecam/venv/bin/agecam", agecam))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "agecam.service")], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    score = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(tmp_path / "agecam.service")],
        capture_output=True,
        text=True,
    ).stdout
    exposure = float(score.split("Overall exposure level for agecam.service:")[1].split()[0])
    assert exposure <= 2.5
