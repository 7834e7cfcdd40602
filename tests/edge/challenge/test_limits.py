"""Limits on open POS transactions in `agecam run` (issue #14): a real process, the real event log, real
HTTP on loopback."""

from __future__ import annotations

from pos_live import faceless_video, live_run, query, wait_for


def test_open_transactions_are_capped_and_expire(tmp_path, tiny_model):
    """A POS that opens transactions for till ids it never closes cannot grow the till's memory."""
    video = faceless_video(tmp_path / "grey.mp4")
    policy = {"max_open_transactions": 3, "transaction_max_s": 3}
    with live_run(tmp_path, tiny_model, video, loop=True, policy=policy) as run:
        starts = [{"type": "transaction_start", "till_id": f"ghost-{number}"} for number in range(6)]
        assert [run.post(event) for event in starts] == [202] * 6
        closed = "SELECT count(*) FROM transactions WHERE resolution = ? GROUP BY resolution HAVING count(*) = 3"
        wait_for(run.db, closed, "evicted")  # a frame may apply only some of the starts: wait for all
        evicted = query(run.db, "SELECT till_id FROM transactions WHERE resolution = 'evicted' ORDER BY id")
        assert evicted == [("ghost-0",), ("ghost-1",), ("ghost-2",)]
        wait_for(run.db, closed, "expired", timeout=10)
        assert run.stop() == 0
    assert query(run.db, "SELECT status, count(*) FROM transactions GROUP BY status") == [("unresolved", 6)]
    assert "evicted so far" in run.log()
