"""One timeline (issue #14): a live POS event's policy time `t` comes from the monotonic clock that frames are
timed by, so a step of the wall clock (NTP, a manual change) cannot move events against faces. Only what is
recorded as a date (`received_at`) follows the wall clock."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from datetime import datetime

import pytest

from edge.challenge.link import PosLink
from edge.config import parse_config
from edge.store.eventlog import EventLog

from pos_http import GOOD, request


@pytest.mark.parametrize("step_s", [120.0, -120.0])
def test_policy_time_follows_the_monotonic_clock_when_the_wall_clock_steps(tmp_path, monkeypatch, step_s):
    config = parse_config({"pos": {"enabled": True, "port": 0}}, "test", tmp_path)
    event_log = EventLog(tmp_path / "agecam.db")
    origin = time.time()
    run_id = event_log.start_run(
        mode="live", source="0", model_path="m", model_sha256="0", provider="cpu", version="t", config_json="{}",
        started=origin,
    )  # fmt: skip
    frame_clock_start = time.monotonic()  # a live source times frames as monotonic seconds since its start
    link = PosLink(config, serve=True)
    link.start(event_log, run_id, origin)
    try:
        wall = time.time
        monkeypatch.setattr(time, "time", lambda: wall() + step_s)  # NTP steps the wall clock
        assert request(link.server.port, json.dumps(GOOD).encode(), token=None)[0] == 202
        frame_t = time.monotonic() - frame_clock_start
        _event, t = link.server.events.get(timeout=5)
        assert abs(t - frame_t) < 0.5, f"policy time {t:.1f} s, frame time {frame_t:.1f} s"
    finally:
        link.finish()
        event_log.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "agecam.db")) as connection:
        stored_t, received_at = connection.execute("SELECT t, received_at FROM pos_events").fetchone()
    assert stored_t == t
    received = datetime.fromisoformat(received_at.replace("Z", "+00:00")).timestamp()
    assert abs(received - (origin + step_s)) < 5, "received_at records the (stepped) wall clock"
