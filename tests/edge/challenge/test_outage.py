"""POS events that come while the camera is down wait, stored, for the first frame back (README, Replay). That
frame applies them at their own times before it decides anything: a sale the POS checked and ended during the
outage is what the POS said, not expired (policy.transaction_max_s) or alerted at the frame's later time.
A real PosLink with its HTTP endpoint and event log; the frames are made here."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edge.challenge.link import PosLink
from edge.config import parse_config
from edge.pipeline.frame import FrameResult, SeenFace
from edge.store.eventlog import EventLog
from edge.vision.customer import AgeEstimate
from edge.vision.faces import Face

from pos_http import live_run_row, request

IMAGE = np.zeros((100, 100, 3), np.uint8)
SALE = {"till_id": "till-1", "cashier_id": "c1", "transaction_id": "T1"}


@contextlib.contextmanager
def linked(tmp_path: Path) -> Iterator[PosLink]:
    """A live run's POS hooks, started as `agecam run` starts them, with a 10 s transaction_max_s."""
    settings = {"pos": {"enabled": True, "port": 0}, "policy": {"transaction_max_s": 10}}
    config = parse_config(settings, "test", tmp_path)
    event_log = EventLog(tmp_path / "agecam.db")
    origin = time.time()
    link = PosLink(config, serve=True)
    link.start(event_log, live_run_row(event_log, origin), origin)
    try:
        yield link
    finally:
        link.finish()
        event_log.close()


def post(link: PosLink, kind: str, **fields: object) -> None:
    body = json.dumps({"type": kind, **SALE, **fields}).encode()
    assert request(link.server.port, body, token=None)[0] == 202
    deadline = time.monotonic() + 5
    while link.server.events.qsize() == 0:  # committed and queued for the frame loop
        assert time.monotonic() < deadline
        time.sleep(0.01)


def frame(t: float, estimate: AgeEstimate | None = None) -> FrameResult:
    """A frame at `t`; with `estimate`, one customer (track 1) in the middle of the zone."""
    face = Face(np.array([40.0, 30.0, 20.0, 20.0]), np.zeros((5, 2)), 0.9)
    return FrameResult(t, IMAGE, [SeenFace(1, face, estimate)] if estimate else [], [])


def decided(db: Path) -> tuple[list, list]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        transactions = connection.execute("SELECT status, resolution, id_checks FROM transactions").fetchall()
        alerts = connection.execute("SELECT kind, type FROM alerts").fetchall()
    return transactions, alerts


def test_a_sale_checked_and_ended_while_the_camera_was_down_is_completed_when_it_comes_back(tmp_path):
    """The frame back expired the sale first (it came over 10 s after the start): an `unresolved` flag on a
    customer whose ID had passed, and the POS's check and end were then ignored as late events."""
    with linked(tmp_path) as link:
        post(link, "transaction_start")
        post(link, "item_scanned", category="wine")
        link.on_frame(frame(0.5))
        post(link, "id_checked", result="passed")  # the camera is down: no frame for a minute
        post(link, "transaction_end")
        link.on_frame(frame(60.0))
    assert decided(tmp_path / "agecam.db") == ([("completed", None, '["passed"]')], [])


def test_no_alert_for_a_customer_whose_id_passed_while_the_camera_was_down(tmp_path):
    """The frame back saw the young customer's estimate, and raised id_check_required before applying the check
    that had passed before it."""
    with linked(tmp_path) as link:
        post(link, "transaction_start")
        link.on_frame(frame(0.2, None))  # the customer is there; no age sample yet
        post(link, "item_scanned", category="wine")
        link.on_frame(frame(0.3, None))
        post(link, "id_checked", result="passed")
        link.on_frame(frame(5.0, AgeEstimate(15, 12, 18, 5)))
        post(link, "transaction_end")
        link.on_frame(frame(5.1, AgeEstimate(15, 12, 18, 5)))
    assert decided(tmp_path / "agecam.db") == ([("completed", None, '["passed"]')], [])
