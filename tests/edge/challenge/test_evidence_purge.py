"""Evidence retention against wall-clock steps: a till with a dead RTC battery boots with an old clock and
NTP steps it forward later, so the crops written meanwhile look older than they are. Purge used to delete
them at once; the crops a process wrote are now aged by the boot clock."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from edge.challenge.evidence import purge, write_crop
from edge.challenge.link import PosLink
from edge.config import parse_config
from edge.store.eventlog import EventLog

from mounts import tmpfs
from pos_http import live_run_row

DAY = 86400.0
CROP = np.full((32, 32, 3), 128, np.uint8)


def flag_with_crop(db: Path, crop: str) -> None:
    """A flag row that refers to `crop`, as the run writes it."""
    EventLog(db).close()
    with contextlib.closing(sqlite3.connect(db)) as connection, connection:
        run = connection.execute(
            "INSERT INTO runs (started_at, status, mode, source, model_path, model_sha256, provider, agecam_version,"
            " config_json) VALUES ('2026-01-01T00:00:00.000Z', 'completed', 'live', 'cam', 'm', 'x', 'cpu', '0', '{}')"
        ).lastrowid
        txn = connection.execute(
            "INSERT INTO transactions (run_id, number, till_id, started_at, status, restricted_items, check_required)"
            " VALUES (?, 1, 'till-1', '2026-01-01T00:00:00.000Z', 'completed', 1, 1)",
            (run,),
        ).lastrowid
        connection.execute(
            "INSERT INTO alerts (run_id, transaction_id, kind, type, severity, at, t, till_id, evidence) VALUES"
            " (?, ?, 'flag', 'sold_without_id_check', 'high', '2026-01-01T00:00:00.000Z', 0, 'till-1', ?)",
            (run, txn, crop),
        )


def started_link(tmp_path: Path, state: Path, db: Path | None = None) -> tuple[PosLink, EventLog]:
    """A run's POS hooks with evidence on, started on a live run's row, as `agecam run` starts them."""
    config = parse_config({"evidence": {"enabled": True}, "state": {"dir": str(state)}}, "test", tmp_path)
    event_log = EventLog(db or state / "agecam.db")
    origin = time.time()
    link = PosLink(config, script=[])
    link.start(event_log, live_run_row(event_log, origin), origin)
    return link, event_log


def evidence_of(db: Path) -> list[str | None]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return [row[0] for row in connection.execute("SELECT evidence FROM alerts")]


def test_a_forward_clock_step_does_not_delete_this_runs_crops_early(tmp_path, caplog):
    state = tmp_path / "state"
    crop = Path(write_crop(state, "run1-txn1-track1", CROP))
    flag_with_crop(state / "agecam.db", str(crop))
    stepped = time.time() + 30 * DAY  # NTP fixed a clock that was 30 days behind when the crop was written
    with caplog.at_level(logging.WARNING):
        assert purge(state, 7, now=stepped, boot_clock=True) == []
    assert crop.is_file() and evidence_of(state / "agecam.db") == [str(crop)]
    assert "wall clock moved +2592000 s against the boot clock" in caplog.text
    # The file time says the same (a crop written while the clock was 30 days behind): still kept.
    os.utime(crop, (time.time() - 30 * DAY, time.time() - 30 * DAY))
    assert purge(state, 7, boot_clock=True) == [] and crop.is_file()


def test_a_backward_clock_step_does_not_keep_this_runs_crops_past_retention(tmp_path):
    state = tmp_path / "state"
    crop = Path(write_crop(state, "run1-txn1-track1", CROP))
    os.utime(crop, (time.time() + 30 * DAY, time.time() + 30 * DAY))  # written while the clock was ahead
    time.sleep(0.2)
    assert purge(state, 0.1 / DAY, boot_clock=True) == [crop] and not crop.exists()


def test_crops_of_earlier_processes_still_go_by_their_file_time(tmp_path):
    state = tmp_path / "state"
    folder = state / "evidence"
    folder.mkdir(parents=True)
    old, recent = folder / "run1-txn1-track1.jpg", folder / "run1-txn2-track1.jpg"
    for crop in (old, recent):
        crop.write_bytes(b"\xff\xd8 a crop")
    os.utime(old, (time.time() - 8 * DAY, time.time() - 8 * DAY))
    assert purge(state, 7, boot_clock=True) == [old] and recent.is_file()


@pytest.fixture
def immutable(tmp_path):
    """Marks files immutable (chattr +i, root on ext4 or the like), and clears that again."""
    marked: list[Path] = []

    def mark(path: Path) -> None:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode:
            pytest.skip("chattr +i needs root and a file system that has it")
        marked.append(path)

    yield mark
    for path in marked:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_crop_that_cannot_be_deleted_does_not_keep_the_others_past_retention(tmp_path, immutable, caplog):
    """The first crop purge could not delete ended the purge: every crop after it stayed, hour after hour."""
    state = tmp_path / "state"
    folder = state / "evidence"
    folder.mkdir(parents=True)
    crops = [folder / f"run1-txn{number}-track1.jpg" for number in range(1, 4)]
    for crop in crops:
        crop.write_bytes(b"\xff\xd8 a crop")
        os.utime(crop, (time.time() - 8 * DAY, time.time() - 8 * DAY))
    immutable(crops[0])
    with caplog.at_level(logging.WARNING):
        assert purge(state, 7) == crops[1:]
    assert crops[0].exists() and not crops[1].exists() and not crops[2].exists()
    assert "1 expired crop(s) could not be deleted, such as 'run1-txn1-track1.jpg': Operation not" in caplog.text


def test_the_hourly_purge_waits_no_longer_for_a_lock_than_the_frame_loop(tmp_path):
    """The run's purge cleared the references through a connection that waited 10 s for another program's
    lock (a backup, the sqlite3 shell): the frame loop stood still that long; it may wait 0.25 s."""
    state = tmp_path / "state"
    link, event_log = started_link(tmp_path, state)
    crop = state / "evidence" / "run0-txn1-track1.jpg"  # an earlier process's, 8 days old
    crop.parent.mkdir()
    crop.write_bytes(b"\xff\xd8 a crop")
    os.utime(crop, (time.time() - 8 * DAY, time.time() - 8 * DAY))
    flag_with_crop(state / "agecam.db", str(crop))
    holder = sqlite3.connect(state / "agecam.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        started = time.monotonic()
        link.on_idle()
        assert time.monotonic() - started < 2 and not crop.exists()
        assert evidence_of(state / "agecam.db") == [str(crop)], "the flag's reference waits for the lock"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    try:
        assert purge(state, 7) == [] and evidence_of(state / "agecam.db") == [None], "... and goes at the next purge"
    finally:
        link.finish()
        event_log.close()


def test_the_runs_hourly_purge_keeps_its_crops_written_under_a_clock_since_stepped_forward(tmp_path):
    """The run's own purge (PosLink, hourly and while the camera is lost) is the one that ages by the boot clock."""
    state = tmp_path / "state"
    link, event_log = started_link(tmp_path, state)
    try:
        crop = Path(write_crop(state, "run1-txn1-track1", CROP))
        os.utime(crop, (time.time() - 30 * DAY, time.time() - 30 * DAY))  # the clock was 30 days behind
        link.on_idle()
        assert crop.is_file()
    finally:
        link.finish()
        event_log.close()


def old_crop(state: Path) -> Path:
    """An earlier process's crop, 8 days old."""
    crop = state / "evidence" / "run0-txn1-track1.jpg"
    crop.parent.mkdir(parents=True, exist_ok=True)
    crop.write_bytes(b"\xff\xd8 a crop")
    os.utime(crop, (time.time() - 8 * DAY, time.time() - 8 * DAY))
    return crop


@pytest.fixture
def log_disk(tmp_path):
    """A folder on a 4 MiB tmpfs of its own, for an event log on a disk that fills (needs root)."""
    with tmpfs(tmp_path / "log", "4m") as folder:
        yield folder


@pytest.fixture
def read_only(tmp_path):
    """read_only(folder): a read-only bind mount over `folder` (even root cannot write it), undone by the
    returned function or at the end; files open before it stay writable, as a run's event log does."""
    mounted: list[Path] = []

    def make(folder: Path):
        if subprocess.run(["mount", "--bind", str(folder), str(folder)], check=False).returncode:
            pytest.skip("a bind mount needs root")
        mounted.append(folder)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        return lambda: subprocess.run(["umount", str(mounted.pop())], check=True)

    yield make
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=True)


def test_crops_deleted_while_the_event_log_would_not_open_lose_their_references_at_the_next_purge(tmp_path, log_disk):
    """A full disk refused the event log's opening: the crops went, but their paths were not kept for the
    retry, so the flags named deleted crops for ever (and a later crop of that name is someone else's)."""
    state, db = tmp_path / "state", log_disk / "agecam.db"
    crop = old_crop(state)
    flag_with_crop(db, str(crop))
    with contextlib.suppress(OSError), (log_disk / "filler").open("wb") as filler:
        while True:
            filler.write(b"\0" * 4096)
            filler.flush()
    assert purge(state, 7, db) == [crop] and not crop.exists(), "the crops go all the same: that frees space"
    (log_disk / "filler").unlink()
    assert evidence_of(db) == [str(crop)]
    assert purge(state, 7, db) == [] and evidence_of(db) == [None], "the next purge clears the reference"


def test_the_runs_purge_goes_on_while_the_event_logs_folder_is_read_only(tmp_path, read_only, caplog):
    """A read-only folder made opening the event log a StateError, not a refused write: the run's hourly
    purge raised it out of the frame loop and the till stopped."""
    state, db = tmp_path / "state", tmp_path / "log" / "agecam.db"
    db.parent.mkdir()
    link, event_log = started_link(tmp_path, state, db)
    try:
        crop = old_crop(state)
        flag_with_crop(db, str(crop))
        writable_again = read_only(db.parent)
        with caplog.at_level(logging.WARNING):
            link.on_idle()
        assert not crop.exists() and "references to deleted crops stay for now" in caplog.text
        writable_again()
        assert evidence_of(db) == [str(crop)]
        assert purge(state, 7, db) == [] and evidence_of(db) == [None], "... cleared once it is writable"
    finally:
        link.finish()
        event_log.close()
