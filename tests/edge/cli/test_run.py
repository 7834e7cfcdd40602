"""`agecam run`: recorded as a live run whatever its source, and a status line in the journal at most once
a minute unless the source changes state."""

from __future__ import annotations

import logging
import sqlite3

from edge.cli.run import StatusLog

from clips import clip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def status(source: str = "live") -> dict:
    return {"fps": 12.5, "frames": 10, "customers": 1, "dropped": 0, "source": source}


def test_status_is_logged_once_a_minute_and_when_the_source_changes(caplog):
    clock = Clock()
    status_log = StatusLog(None, clock=clock)
    caplog.set_level(logging.INFO, logger="agecam")
    for _ in range(6 * 10):  # ten minutes of heartbeats, one every 10 s
        status_log(status())
        clock.now += 10
    assert len(caplog.records) == 10
    caplog.clear()
    status_log(status("reconnecting"))
    clock.now += 10
    status_log(status("reconnecting"))
    clock.now += 10
    status_log(status("live"))
    assert [record.getMessage().rsplit(" ", 1)[-1] for record in caplog.records] == ["reconnecting", "live"]


def test_run_on_a_file_is_recorded_as_live(agecam, write_config, assets, tmp_path):
    video = clip(assets, "face-demographics-walking-and-pause")
    assert agecam("--config", write_config(), "run", "--source", video).code == 0
    db = tmp_path / "state" / "agecam.db"
    assert sqlite3.connect(db).execute("SELECT mode, status FROM runs").fetchall() == [("live", "completed")]
