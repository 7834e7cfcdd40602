"""Two tills configured with one till id, against a real mosquitto: each one's connection takes the other's
session over (one client id), so both are knocked off every second or so. Each says why, once."""

from __future__ import annotations

import logging
import time

from test_store_and_forward import publisher_for

from edge.fleet.takeover import SESSION_TAKEN_OVER, TakeoverWatch

TAKEOVER = "is till_id set on two tills?"


def test_two_tills_with_one_till_id_say_so_once_each(tmp_path, broker, till_password, caplog):
    """They used to log only 'disconnected from ... (Unspecified error)' on every reconnect, each second,
    which says nothing of the cause. mosquitto 2.0 sends no 'Session taken over' reason: the quick drops
    tell it."""
    broker.start()
    first = publisher_for(tmp_path, broker, till_password)
    second = publisher_for(tmp_path, broker, till_password)  # the same store s1 and till t1
    with caplog.at_level(logging.WARNING, logger="edge.fleet"):
        try:
            first.connect()
            second.connect()
            deadline = time.monotonic() + 30
            while len(_told(caplog)) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(5)  # several more reconnects, each of them knocked off again
        finally:
            second.stop(flush_s=0)
            first.stop(flush_s=0)
    told = _told(caplog)
    assert len(told) == 2, f"once per till, not on every reconnect: {told}"
    assert all("till 't1'" in line and "'agecam-s1-t1'" in line for line in told), told
    assert all("(last: " in line for line in told if "in a row" in line), "the broker's reason is kept"


def _told(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if TAKEOVER in r.getMessage()]


def test_a_brokers_session_taken_over_reason_is_believed_at_once(caplog):
    """A broker that sends DISCONNECT 0x8E (Session taken over; mosquitto 2.0 does not) says it outright; a
    single quick drop of another reason (a broker restart) is no sign of it."""
    watch = TakeoverWatch("mqtt://broker:1883", "t1", "agecam-s1-t1")
    with caplog.at_level(logging.WARNING, logger="edge.fleet"):
        watch.connected()
        assert watch.disconnected(0x80) is False, "one drop: a restart or a cut cable"
        for _ in range(3):
            watch.connected()
            assert watch.disconnected(SESSION_TAKEN_OVER) is True
    told = _told(caplog)
    assert len(told) == 1 and "another client connected to the broker" in told[0], told


def test_a_changed_reason_is_told_at_once_and_repeats_stay_quiet(caplog):
    """The quiet period used to hide a new cause: only the first reason was ever logged within 10 minutes, so
    an engineer saw 'Unspecified error' while the broker had since said 'Session taken over' or another reason."""
    watch = TakeoverWatch("mqtt://broker:1883", "t1", "agecam-s1-t1")
    with caplog.at_level(logging.WARNING, logger="edge.fleet"):
        for reason, said in [(0x80, "Unspecified error")] * 5 + [(0x8D, "Keep alive timeout")] * 2:
            watch.connected()
            watch.disconnected(reason, said)
        for _ in range(2):
            watch.connected()
            watch.disconnected(SESSION_TAKEN_OVER, "Session taken over")
        for _ in range(2):  # told before: quiet again, though the reason changed back
            watch.connected()
            watch.disconnected(0x80, "Unspecified error")
    told = _told(caplog)
    assert len(told) == 3, told
    assert "(last: Unspecified error)" in told[0] and "(last: Keep alive timeout)" in told[1], told
    assert "another client connected to the broker" in told[2], told
