"""What else may lie in STATE_DIR/evidence (issue #14, item 12): symlinks, folders named *.jpg, files
put there to catch a crop. The run and purge carry on, a crop is never written through a symlink or
over an existing file, and two purges at once tolerate each other."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np

from edge.challenge.evidence import purge
from edge.challenge.late_crops import FlagKey, LateCrops
from edge.challenge.link import PosLink
from edge.config import parse_config
from edge.store.eventlog import EventLog

from live_agecam import agecam_command, environment
from pos_http import live_run_row
from pos_scenario import replay, scenario_config

OLD = time.time() - 30 * 86400


def flag_crops(db: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return [row[0] for row in connection.execute("SELECT evidence FROM alerts WHERE kind = 'flag' ORDER BY id")]


def age(path: Path) -> None:
    os.utime(path, (OLD, OLD), follow_symlinks=False)


def test_symlinks_and_folders_named_jpg_do_not_stop_the_run(tmp_path, scenario, tiny_model):
    evidence = tmp_path / "state" / "evidence"
    evidence.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (evidence / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (evidence / "folder.jpg").mkdir()
    (evidence / "elsewhere.jpg").symlink_to(victim)
    for path in evidence.iterdir():
        age(path)
    config = scenario_config(tmp_path, tiny_model, evidence={"enabled": True, "retention_days": 1})
    assert replay(config, scenario, tmp_path / "state" / "agecam.db") == 0  # the hourly purge ran at the start
    assert (evidence / "dangling.jpg").is_symlink() and (evidence / "folder.jpg").is_dir()
    assert (evidence / "elsewhere.jpg").is_symlink() and victim.read_text() == "precious"
    assert all(Path(crop).is_file() for crop in flag_crops(tmp_path / "state" / "agecam.db"))


def test_a_planted_symlink_cannot_redirect_a_crop(tmp_path, scenario, tiny_model):
    first = tmp_path / "first"
    first.mkdir()
    config = scenario_config(first, tiny_model, evidence={"enabled": True})
    assert replay(config, scenario, first / "state" / "agecam.db") == 0
    names = [Path(crop).name for crop in flag_crops(first / "state" / "agecam.db")]
    assert names, "the scenario has flags"
    second = tmp_path / "second"
    (second / "state" / "evidence").mkdir(parents=True)
    victims = []
    for name in names:  # the same run's crops will have the same names: plant a symlink at each
        victim = second / f"victim-{name}.txt"
        victim.write_text("do not overwrite")
        (second / "state" / "evidence" / name).symlink_to(victim)
        victims.append(victim)
    config = scenario_config(second, tiny_model, evidence={"enabled": True})
    assert replay(config, scenario, second / "state" / "agecam.db") == 0
    assert all(victim.read_text() == "do not overwrite" for victim in victims)
    crops = [Path(crop) for crop in flag_crops(second / "state" / "agecam.db")]
    assert [crop.name for crop in crops] == [name.replace(".jpg", "-2.jpg") for name in names]
    for crop in crops:
        assert not crop.is_symlink() and stat.S_IMODE(crop.stat().st_mode) == 0o600
        assert cv2.imread(str(crop)) is not None


def test_a_symlink_in_place_of_the_evidence_folder_is_neither_written_nor_purged(tmp_path):
    elsewhere = tmp_path / "photos"
    elsewhere.mkdir()
    (elsewhere / "holiday.jpg").write_bytes(b"not agecam's")
    age(elsewhere / "holiday.jpg")
    state = tmp_path / "state"
    state.mkdir()
    (state / "evidence").symlink_to(elsewhere, target_is_directory=True)
    assert LateCrops(state, 30).save("run1-txn1-track1", np.zeros((16, 16, 3), np.uint8), FlagKey(1, 1, 0.0)) is None
    assert purge(state, 1) == []
    assert sorted(path.name for path in elsewhere.iterdir()) == ["holiday.jpg"]


def test_purge_deletes_only_regular_files_and_two_purges_at_once_both_succeed(tmp_path, write_config):
    state = tmp_path / "state"
    evidence = state / "evidence"
    evidence.mkdir(parents=True)
    for number in range(3000):
        (evidence / f"run1-txn{number}-track1.jpg").write_bytes(b"\xff\xd8 crop")
        age(evidence / f"run1-txn{number}-track1.jpg")
    (evidence / "dangling.jpg").symlink_to(tmp_path / "nowhere")
    (evidence / "folder.jpg").mkdir()
    age(evidence / "dangling.jpg")
    age(evidence / "folder.jpg")
    config = write_config(evidence={"enabled": True})
    command = agecam_command(config, "purge", "--days", "1")
    runs = [subprocess.Popen(command, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    results = [(process.wait(timeout=120), *process.communicate()) for process in runs]
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    removed = sum(int(out.split()[1]) for _, out, _ in results)
    assert removed == 3000, "each crop deleted exactly once between them"
    assert sorted(path.name for path in evidence.iterdir()) == ["dangling.jpg", "folder.jpg"]


def test_expired_crops_are_deleted_while_no_frame_comes(tmp_path):
    """The purge ran only after frames: with the camera lost for hours, crops outlived evidence.retention_days.
    The run loop calls on_idle after each empty wait for a frame."""
    state = tmp_path / "state"
    settings = {"evidence": {"enabled": True, "retention_days": 7}, "state": {"dir": str(state)}}
    config = parse_config({**settings, "pos": {"enabled": True, "port": 0}}, "test", tmp_path)
    (state / "evidence").mkdir(parents=True)
    event_log = EventLog(state / "agecam.db")
    origin = time.time()
    run_id = live_run_row(event_log, origin)
    link = PosLink(config, serve=True)
    link.start(event_log, run_id, origin)
    try:
        expired, recent = state / "evidence" / "run1-txn1-track1.jpg", state / "evidence" / "run1-txn2-track2.jpg"
        for crop in (expired, recent):
            crop.write_bytes(b"\xff\xd8 a crop")
        age(expired)  # 30 days old
        link.on_idle()
        assert not expired.exists() and recent.exists()
    finally:
        link.finish()
        event_log.close()
