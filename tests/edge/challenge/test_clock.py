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

from edge.challenge.carry import resume
from edge.challenge.events import parse_event
from edge.challenge.link import PosLink
from edge.challenge.policy import ChallengePolicy
from edge.challenge.zone import ZoneFace
from edge.config import PolicyConfig, parse_config
from edge.store.eventlog import EventLog
from edge.store.pos_history import Leftovers, OpenRow, StoredEvent
from edge.vision.customer import AgeEstimate

from pos_http import GOOD, live_run_row, request


@pytest.mark.parametrize("step_s", [120.0, -120.0])
def test_policy_time_follows_the_monotonic_clock_when_the_wall_clock_steps(tmp_path, monkeypatch, step_s):
    config = parse_config({"pos": {"enabled": True, "port": 0}}, "test", tmp_path)
    event_log = EventLog(tmp_path / "agecam.db")
    origin = time.time()
    run_id = live_run_row(event_log, origin)
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


def test_a_wall_clock_stepped_back_between_runs_does_not_move_this_runs_alerts():
    """The earlier run's clock ran an hour ahead; NTP corrected it before this run started. What that run left
    is dated after this run's start: it used to move the policy's `now` an hour ahead, and every alert of
    this run with it (timed at t=3600, a latency of an hour)."""
    origin = time.time()
    ahead = origin + 3600
    row = OpenRow(
        run_id=1, number=1, till_id="till-9", cashier_id=None, pos_id="A", started=ahead - 10, restricted=0,
        first_restricted=None, id_checks=[], check_required=False, alerted=False, association=None, estimate=None,
    )  # fmt: skip
    scanned = StoredEvent(1, ahead - 5, json.dumps({"type": "item_scanned", "till_id": "till-9", "category": "wine"}))
    policy = ChallengePolicy(PolicyConfig(), ["wine"])
    resume(policy, Leftovers([row], [scanned], {1: 1}), origin)
    assert policy.open["till-9"].started <= 0 and policy.now <= 0, "an earlier run's times are before this run's"
    young = {1: AgeEstimate(15, 12, 18, 5)}
    policy.handle(parse_event({**GOOD, "till_id": "till-2"}), 2.0)
    alerts = [o for t in (2.0, 2.1) for o in policy.observe(t, [ZoneFace(1, 0.5, 0.5, 0.05)], young)]
    alert = next(o for o in alerts if o.kind == "alert" and o.transaction.till_id == "till-2")
    assert alert.t < 3 and alert.latency_s < 1
