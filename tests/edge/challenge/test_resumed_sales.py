"""A sale resumed after a restart is decided as it would have been without one: its row keeps which POS event
opened it and whether it is a voided sale's unconfirmed re-ring (schema v10). Before, a resumed sale was taken
as opened by its start and as confirmed. A real PosLink with its HTTP endpoint and event log, run after run on
one file as `agecam run` starts and stops them; the frames are made here (no face: nothing but the POS
decides)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from edge.challenge.link import PosLink
from edge.config import parse_config
from edge.pipeline.frame import FrameResult
from edge.store.eventlog import EventLog

from pos_http import live_run_row, request

SETTINGS = {"pos": {"enabled": True, "port": 0}, "policy": {"transaction_max_s": 10}}
SALE = {"till_id": "till-1", "cashier_id": "c1", "transaction_id": "T1"}
IMAGE = np.zeros((100, 100, 3), np.uint8)


class Till:
    """`agecam run`'s POS hooks on the event log in `folder`; `restart` ends the run and starts the next."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._start()

    def _start(self) -> None:
        self.log = EventLog(self.folder / "agecam.db")
        self.origin = time.time()
        self.run_id = live_run_row(self.log, self.origin)
        self.link = PosLink(parse_config(SETTINGS, "test", self.folder), serve=True)
        self.link.start(self.log, self.run_id, self.origin)  # resumes what the earlier runs left
        self.running = True

    def post(self, kind: str, **fields: object) -> None:
        """One POS event, acknowledged, then applied at the next frame."""
        body = json.dumps({"type": kind, **SALE, **fields}).encode()
        assert request(self.link.server.port, body, token=None)[0] == 202
        self.frame()

    def frame(self, later_s: float = 0.0) -> None:
        t = time.time() - self.origin + later_s  # a live source's time, as the POS events'
        self.link.on_frame(FrameResult(t, IMAGE, [], []))

    def restart(self, how: str) -> None:
        """'stop' (SIGTERM or a reload: a clean stop) or 'kill-9' (nothing more saved than the frames committed)."""
        self.stop(how)
        self._start()

    def stop(self, how: str = "stop") -> None:
        if how == "kill-9":
            self.link.server.stop()
            self.link.server.store.log.close()
            self.link.notifier.close()
        else:
            self.link.finish()
        status = "failed" if how == "kill-9" else "stopped"  # a dead run: as the next run's start marks it
        self.log.update_run(self.run_id, frames=0, dropped=0, faces=0, status=status, ended=time.time())
        self.log.close()
        self.running = False

    def decided(self) -> tuple[list, list]:
        with contextlib.closing(sqlite3.connect(self.folder / "agecam.db")) as db:
            sales = db.execute("SELECT pos_transaction_id, status, resolution FROM transactions ORDER BY id")
            return sales.fetchall(), db.execute("SELECT kind, type FROM alerts ORDER BY id").fetchall()


@pytest.fixture
def till(tmp_path: Path):
    opened = Till(tmp_path)
    yield opened
    if opened.running:
        opened.stop()


RESTARTS = [None, "stop", "kill-9"]


def voided_then_scanned(till: Till) -> None:
    """Sale T1 with a restricted scan, voided, then a scan of T1 again: a re-ring, or a late retry of the scan."""
    till.post("transaction_start")
    till.post("item_scanned", category="wine")
    till.post("transaction_end", status="voided")
    till.post("item_scanned", category="wine")


@pytest.mark.parametrize("restart", RESTARTS)
def test_a_late_retry_of_a_voided_sales_scan_left_unresolved_is_not_flagged_after_a_restart(till, restart):
    """The scan's reply was lost and its retry came after the void: it opens a sale nobody ends, and expired it
    is not flagged. Resumed after a restart, it was taken for a confirmed re-ring: an `unresolved` flag."""
    voided_then_scanned(till)
    if restart:
        till.restart(restart)
    till.frame(later_s=11.0)  # past policy.transaction_max_s
    assert till.decided() == ([("T1", "voided", None), ("T1", "unresolved", "expired")], [])


@pytest.mark.parametrize("restart", RESTARTS)
def test_a_re_ring_of_a_voided_sale_ended_after_a_restart_is_still_flagged(till, restart):
    """The other side: the POS ends the re-rung sale after the restart, which confirms it (a sale to decide)."""
    voided_then_scanned(till)
    if restart:
        till.restart(restart)
    till.post("transaction_end")
    assert till.decided() == ([("T1", "voided", None), ("T1", "completed", None)], [("flag", "no_face")])


@pytest.mark.parametrize("restart", RESTARTS)
def test_a_start_delivered_after_the_check_that_opened_its_sale_is_ignored_after_a_restart(till, restart):
    """Out-of-order delivery, a restart between the check and the start: the resumed sale was taken as opened
    by a start, so the late start superseded it, dropping the passed check: a flag for a checked customer."""
    till.post("id_checked", result="passed")
    if restart:
        till.restart(restart)
    till.post("transaction_start")
    till.post("item_scanned", category="wine")
    till.post("transaction_end")
    assert till.decided() == ([("T1", "completed", None)], [])


OPENERS = {"item_scanned": {"category": "bread"}, "id_checked": {"result": "passed"}}  # the POS skipped the start


@pytest.mark.parametrize("first", list(OPENERS))
def test_the_event_that_opened_a_sale_is_kept_across_a_restart(till, first):
    till.post(first, **OPENERS[first])
    till.restart("kill-9")
    assert till.link.policy.open["till-1"].opened_by == first
