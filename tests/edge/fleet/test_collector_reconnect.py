"""The collector across a broker restart, with real mosquitto (no persistence) and PostgreSQL: a batch it was
writing when the broker went away is acknowledged on no later connection, where its packet ids name other
messages (which the broker would then drop as delivered). And its database connection, first and reopened,
notices a silently dead server within about a minute."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from fleet_till import SimulatedTill, chain_rows

from fleet_clients import raw_client


def _customer_records(tmp_path: Path, count: int) -> list[bytes]:
    """`count` valid customer records of till s1/t1, each its own message id (as a till's publisher sends)."""
    db = tmp_path / "till.db"
    till = SimulatedTill(db)
    till.customer(sale=False)
    till.finish()
    with sqlite3.connect(db) as connection:
        body = connection.execute("SELECT body FROM outbox WHERE kind = 'customer' LIMIT 1").fetchone()[0]
    data = json.loads(body)
    records = []
    for seq in range(1, count + 1):
        envelope = {"v": 1, "id": f"00000000000000aa:{seq}", "store_id": "s1", "till_id": "t1", "seq": seq}
        records.append({**envelope, "kind": "customer", "at": "2026-01-01T00:00:00Z", "data": data})
    return [json.dumps(record).encode() for record in records]


def _written(url: str) -> int:
    try:
        return chain_rows(url, "s1", "t1")["inbox_rows"]
    except psycopg.errors.UndefinedTable:  # the collector has not created the chain's tables yet
        return 0


def _until(condition: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_batch_held_across_a_broker_restart_costs_no_message_of_the_new_connection(
    tmp_path, broker, chain_db, collector_for
):
    broker.start()
    records = _customer_records(tmp_path, 4)
    running = collector_for(broker, chain_db)
    collector = running.collector
    client = raw_client(broker)
    _until(lambda: collector.connection == 1, "the collector connected")
    time.sleep(0.5)  # its subscription is answered
    client.publish("agecam/s1/t1/customer", records[0], qos=1).wait_for_publish(5)
    _until(lambda: _written(chain_db) == 1, "the first record in the chain")
    # The database stalls (a lock): the collector takes the next record into a batch it cannot commit yet.
    locker = psycopg.connect(chain_db)
    locker.execute("LOCK TABLE agecam.inbox IN ACCESS EXCLUSIVE MODE")
    client.publish("agecam/s1/t1/customer", records[1], qos=1).wait_for_publish(5)
    taken = collector.metrics.messages.labels("customer")
    _until(lambda: taken._value.get() == 2, "the held batch")
    broker.kill()
    broker.start()  # no persistence: every session is new, and packet ids start again from 1
    _until(lambda: client.is_connected() and collector.client.is_connected(), "both clients back")
    time.sleep(0.5)  # the collector's subscription is answered
    for record in records[2:]:  # packet ids 1 and 2 on the new connection; the held record had 2 on the old
        client.publish("agecam/s1/t1/customer", record, qos=1).wait_for_publish(5)
    _until(lambda: collector.inbox.qsize() == 2, "the new connection's messages at the collector")
    running.stop.set()  # the collector ends after the held batch, before writing the new messages
    locker.rollback()
    locker.close()
    running.thread.join(timeout=15)
    assert not running.thread.is_alive()
    assert _written(chain_db) == 2
    # Restarted with its client id, the collector resumes its session: what it never acknowledged comes again.
    collector_for(broker, chain_db)
    _until(lambda: _written(chain_db) == 4, "all four records in the chain")
    client.loop_stop()


def _keepalive(db: psycopg.Connection) -> tuple[int, ...]:
    """The live connection's TCP keepalive and user timeout, as the kernel applies them to its socket."""
    with socket.fromfd(db.pgconn.socket, socket.AF_INET, socket.SOCK_STREAM) as sock:  # a duplicate descriptor
        options = (socket.TCP_KEEPIDLE, socket.TCP_KEEPINTVL, socket.TCP_KEEPCNT, socket.TCP_USER_TIMEOUT)
        on = int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0)
        return (on, *(sock.getsockopt(socket.IPPROTO_TCP, option) for option in options))


def test_the_collectors_database_connections_give_up_on_a_silent_server_within_a_minute(
    tmp_path, postgres, broker, chain_db, collector_for
):
    """A server gone without a word (a failover, a cut link) left the collector waiting on the kernel's
    keepalive: two hours before the first probe. libpq's settings, each one the DSN does not give itself."""
    broker.start()
    running = collector_for(broker, chain_db + "?keepalives_count=5")
    collector = running.collector
    expected = (1, 30, 10, 5, 60000)  # idle, interval, count (the DSN's), user timeout in ms
    assert _keepalive(collector.store.db) == expected
    first = collector.store.db
    with psycopg.connect(postgres.url(), autocommit=True) as admin:  # its connection ends under it
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (chain_db.rsplit("/", 1)[1],),
        ).fetchall()
    assert ended == [(True,)]
    client = raw_client(broker)
    _until(lambda: collector.connection == 1, "the collector connected")
    time.sleep(0.5)  # its subscription is answered
    client.publish("agecam/s1/t1/customer", _customer_records(tmp_path, 1)[0], qos=1).wait_for_publish(5)
    _until(lambda: _written(chain_db) == 1, "the record in the chain, through a reopened connection")
    client.loop_stop()
    assert collector.store.db is not first
    assert _keepalive(collector.store.db) == expected
