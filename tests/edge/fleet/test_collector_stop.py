"""A collector stopped (SIGTERM) just as it takes a batch whose write then waits on the database: the stop must
still end that write, not only one already under way when the signal came."""

from __future__ import annotations

import json
import time

import paho.mqtt.client as mqtt
import psycopg


def _heartbeat() -> mqtt.MQTTMessage:
    message = mqtt.MQTTMessage(topic=b"agecam/s1/t1/heartbeat")
    body = {"v": 1, "store_id": "s1", "till_id": "t1", "at": time.time(), "outbox": 0, "oldest_unshipped_s": 0}
    message.payload = json.dumps({**body, "status": {}}).encode()
    return message


def test_a_write_that_starts_after_the_stop_is_cancelled_too(broker, chain_db, collector_for):
    """The stop's one cancel went out while the loop waited for messages (nothing to cancel then); the batch it
    then took waited on the lock for as long as it was held, past systemd's stop timeout."""
    broker.start()
    running = collector_for(broker, chain_db)
    collector, taken = running.collector, []
    take = collector._take

    def take_as_the_signal_comes(stop):
        batch = take(stop)
        if not taken:
            taken.append(True)
            stop.set()  # SIGTERM while the loop waited for the batch
            time.sleep(0.5)  # the stop's cancel has gone out
            return [(collector.connection, _heartbeat())]
        return batch

    locker = psycopg.connect(chain_db)
    try:
        locker.execute("LOCK TABLE agecam.tills IN ACCESS EXCLUSIVE MODE")  # the batch's write waits on it
        collector._take = take_as_the_signal_comes
        running.thread.join(timeout=8)
        assert not running.thread.is_alive(), "the stopped collector still waits on the database"
    finally:
        locker.rollback()
        locker.close()
