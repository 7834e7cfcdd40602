"""A heartbeat that cannot be saved (another program holds the event log's lock, a full disk) is warned
about at most once a minute with a count, not once per status every 10 s (8,640 lines a day)."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time

from edge.pipeline import heartbeat
from edge.store.eventlog import EventLog

from pos_http import live_run_row

STATUS = {"frames": 1, "dropped": 0, "fps": 10.0, "source": "running"}


def test_an_unsaved_heartbeat_is_warned_about_once_a_minute_with_a_count(tmp_path, caplog):
    log = EventLog(tmp_path / "agecam.db")
    run_id = live_run_row(log, time.time())
    log.wait_for_locks(0.05)
    now, seen = [0.0], []
    report = heartbeat.with_health(log, run_id, seen.append, clock=lambda: now[0])
    other = sqlite3.connect(tmp_path / "agecam.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # a backup holding the log
    try:
        with caplog.at_level(logging.WARNING, logger=heartbeat.__name__):
            for _ in range(12):  # two minutes of statuses, 10 s apart
                report(STATUS)
                now[0] += 10.0
    finally:
        with contextlib.suppress(sqlite3.Error):
            other.execute("ROLLBACK")
        other.close()
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2, warnings
    assert "1 heartbeat(s) not saved" in warnings[0] and "6 heartbeat(s) not saved" in warnings[1], warnings
    assert len(seen) == 12, "every status still reaches the status log and systemd"
    report(STATUS)  # the lock released: saved again
    with contextlib.closing(sqlite3.connect(tmp_path / "agecam.db")) as connection:
        assert connection.execute("SELECT frames, fps FROM runs").fetchone() == (1, 10.0)
    log.close()
