"""The publisher's pause after failed passes, without a broker: a failure that lasts (a disk full overnight)
must never end the shipping thread."""

from __future__ import annotations

import logging
import threading

import pytest

from edge.config import parse_config
from edge.fleet import publisher as module
from edge.fleet.publisher import MAX_ERROR_PAUSE_S, Publisher


def test_a_failure_that_lasts_a_night_keeps_the_shipping_thread_alive(tmp_path, monkeypatch, caplog):
    """The pause was 0.1 s * 2**failures: past 1,023 failures in a row (8.5 hours at 30 s each) that float
    overflowed, an OverflowError out of the loop's error handler ended the thread, and nothing shipped again."""
    fleet = {"enabled": True, "broker": "mqtt://127.0.0.1:1", "store_id": "s1", "till_id": "t1"}
    publisher = Publisher(parse_config({"fleet": fleet}, "test", tmp_path))
    pauses: list[float] = []

    class Stop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            pauses.append(timeout)
            return len(pauses) >= 3

    publisher._stop = Stop()
    publisher._errors = 1100  # as after a night of failures
    monkeypatch.setattr(publisher, "_settle_acks", lambda: (_ for _ in ()).throw(OSError("disk full")))
    monkeypatch.setattr(publisher, "_housekeeping", lambda: None)
    with caplog.at_level(logging.WARNING, logger=module.__name__):
        publisher._run()  # returns when stopped; an OverflowError escaped it
    assert pauses == [MAX_ERROR_PAUSE_S] * 3
    assert "still failing (disk full), 1103 times: next try in 30.0 s" in caplog.text


@pytest.mark.parametrize("errors", [0, 1, 3, 8, 9, 2000])
def test_the_pause_doubles_up_to_its_bound(errors):
    expected = min(module.POLL_S * 2 ** min(errors, 16), MAX_ERROR_PAUSE_S)
    assert module.error_pause(errors) == pytest.approx(expected)
