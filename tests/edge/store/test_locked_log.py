"""A lock that outlasts the frame loop's wait (FRAME_LOOP_BUSY_S) is not always another program's: agecam's
own POS connection holds it through its commit's fsync, which can take longer on slow storage. The warning
must name both causes and what to do about each (it said "locked by another program" only)."""

from __future__ import annotations

import threading
import time

from edge.store.eventlog import FRAME_LOOP_BUSY_S, CustomerRecord, EventLog
from edge.vision.customer import AgeEstimate

from pos_http import live_run_row


def test_a_lock_held_by_a_slow_pos_commit_names_both_causes(tmp_path):
    log = EventLog(tmp_path / "agecam.db")
    run_id = live_run_row(log, time.time())
    pos = log.sibling(durable=True)  # the POS endpoint's connection, as PosLink opens it
    log.wait_for_locks(FRAME_LOOP_BUSY_S)
    locked, release = threading.Event(), threading.Event()

    def slow_commit() -> None:  # a commit whose fsync crawls: the write lock stays held meanwhile
        pos.db.execute("UPDATE runs SET frames = 1 WHERE id = ?", (run_id,))
        locked.set()
        release.wait(5)

    writer = threading.Thread(target=pos.commit, args=(slow_commit,))
    writer.start()
    try:
        assert locked.wait(5)
        record = CustomerRecord(1, 1.0, 2.0, AgeEstimate(30.0, 28.0, 32.0, 5), "25-34", True, False)
        log.save_customers(run_id, [record])  # waits 0.25 s, then holds the write
        problem = log.health.problem or ""
    finally:
        release.set()
        writer.join()
    assert len(log.backlog) == 1
    assert "another program" in problem and "too slow" in problem, problem
    assert "sqlite3 shell" in problem and "check the disk" in problem, problem
    pos.close()
    log.close()
    assert log.unwritten() is None, "the held write was stored at close"
