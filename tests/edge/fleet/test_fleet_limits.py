"""Limits on the way to the chain, with real mosquitto and PostgreSQL: a record over the broker's packet size,
a till's event log that refuses writes (a full disk), and a collector stopped while its write waits on the
database. None of them may lose a record or stop the others."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from fleet_till import SimulatedTill, chain_rows, till_rows, wait_until_shipped
from test_store_and_forward import ROOT, collect_the_rest, publisher_for, shipping_till

from fleet_clients import USERS


def _pad_one_flag(db: Path, size: int) -> int:
    """Give a queued flag an association of `size` bytes (well within what the chain accepts): its outbox id."""
    association = json.dumps({"pad": "x" * size})
    with sqlite3.connect(db) as connection:
        row_id, body = connection.execute(
            "SELECT id, body FROM outbox WHERE kind = 'alert' AND body LIKE '%\"kind\":\"flag\"%' LIMIT 1"
        ).fetchone()
        record = json.loads(body)
        connection.execute("UPDATE alerts SET association = ? WHERE id = ?", (association, record["alert_id"]))
        body = json.dumps({**record, "association": association}, separators=(",", ":"))
        connection.execute("UPDATE outbox SET body = ? WHERE id = ?", (body, row_id))
    return row_id


def test_a_record_over_the_brokers_packet_limit_waits_and_the_others_ship(
    tmp_path, broker, chain_db, till_password, collector_for, caplog
):
    """It used to end the connection (a protocol error) and be sent first again on every reconnect: nothing
    after it shipped, until the outbox's bound dropped the till's records."""
    limit = broker.config.read_text()
    broker.config.write_text(limit + "max_packet_size 4000\n")  # advertised in CONNACK
    broker.start()
    collector_for(broker, chain_db)
    db = tmp_path / "till.db"
    till = SimulatedTill(db)
    for n in range(8):
        till.customer(sale=n % 2 == 0)
    big = _pad_one_flag(db, 6000)
    for n in range(8):
        till.customer(sale=n % 2 == 0)
    till.finish()
    publisher = publisher_for(tmp_path, broker, till_password)
    publisher.connect()
    with caplog.at_level(logging.ERROR, logger="edge.fleet.publisher"):
        publisher.start(db)
        expected = till_rows(db)
        deadline = time.monotonic() + 30
        while chain_rows(chain_db, "s1", "t1")["inbox_rows"] < expected["inbox_rows"] - 1:
            assert time.monotonic() < deadline, "the records after the large one reach the chain"
            time.sleep(0.2)
        publisher.stop()
    key = sqlite3.connect(db).execute("SELECT key FROM outbox_key").fetchone()[0]
    assert chain_rows(chain_db, "s1", "t1")["messages"] == expected["messages"] - {f"{key}:{big}"}
    assert publisher.stats.depth == 1, "the large one waits in the outbox"
    assert [r.message for r in caplog.records if "over the broker's limit" in r.message] != []
    # The broker's limit raised, the next start sends it: the chain then has every record.
    broker.stop()
    broker.config.write_text(limit)
    broker.start()
    again = publisher_for(tmp_path, broker, till_password)
    again.connect()
    again.start(db)
    assert wait_until_shipped(chain_db, db, "s1", "t1") == till_rows(db)
    again.stop()


def test_an_event_log_that_refuses_writes_is_retried_with_a_pause_not_ten_tracebacks_a_second(
    tmp_path, broker, chain_db, till_password, collector_for, caplog
):
    """A full disk fails every 'shipped' mark at once: the publisher logged a traceback each 0.1 s (journald
    filling what little disk was left). It backs off, and marks every delivered row once writes work again."""
    db = tmp_path / "till.db"
    till = SimulatedTill(db)
    for n in range(6):
        till.customer(sale=n % 2 == 0)
    till.finish()
    publisher = publisher_for(tmp_path, broker, till_password)
    publisher.connect(timeout_s=0.5)  # the broker is not up yet
    publisher.start(db)
    publisher.reader.db.execute("PRAGMA query_only = 1")  # every write of its connection fails, as on a full disk
    with caplog.at_level(logging.WARNING, logger="edge.fleet.publisher"):
        broker.start()
        collector_for(broker, chain_db)
        assert wait_until_shipped(chain_db, db, "s1", "t1") == till_rows(db), "delivered all the same"
        time.sleep(4)
        failing = ("fleet: publisher error", "fleet: publisher still failing")
        failures = [r for r in caplog.records if r.message.startswith(failing)]
    assert publisher.stats.shipped == 0
    assert 2 <= len(failures) <= 10, f"{len(failures)} lines in about 5 s"
    # A traceback when a failure starts (pruning, then marking: two), then one line per retry.
    assert sum(1 for r in caplog.records if r.exc_info) <= 2
    publisher.reader.db.execute("PRAGMA query_only = 0")
    deadline = time.monotonic() + 40
    while publisher.stats.depth and time.monotonic() < deadline:
        time.sleep(0.2)
    publisher.stop()
    assert publisher.stats.shipped == till_rows(db)["inbox_rows"]


def test_a_collector_stopped_while_its_write_waits_ends_at_once_and_loses_nothing(
    tmp_path, broker, chain_db, till_password
):
    """SIGTERM (systemd's stop) used to wait for the database for as long as it stalled: the loop sees the
    signal only between statements. The write is cancelled, its batch unacknowledged, and sent again."""
    broker.start()
    password = tmp_path / "collector.password"
    password.write_text(USERS["collector"])
    command = [sys.executable, "-m", "edge.cli", "--log-level", "WARNING", "collect", "--broker", broker.url]
    command += ["--db", chain_db, "--username", "collector", "--password-file", str(password), "--client-id", "c1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    collector = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    db, till, publisher = shipping_till(tmp_path, broker, till_password)
    till.customer(sale=True)
    deadline = time.monotonic() + 30
    while not _written(chain_db):
        assert time.monotonic() < deadline, "the collector wrote nothing"
        time.sleep(0.1)
    locker = psycopg.connect(chain_db)
    locker.execute("LOCK TABLE agecam.inbox IN ACCESS EXCLUSIVE MODE")  # the next batch waits on it
    for n in range(6):
        till.customer(sale=n % 2 == 0)
    till.finish()
    time.sleep(2)  # published and taken into a batch that waits
    collector.send_signal(signal.SIGTERM)
    try:
        assert collector.wait(timeout=10) == 0, collector.stderr.read()
    finally:
        collector.kill()
        locker.rollback()
        locker.close()
    collect_the_rest(command, env, chain_db, db)
    publisher.stop()


def _written(url: str) -> int:
    try:
        return chain_rows(url, "s1", "t1")["inbox_rows"]
    except psycopg.errors.UndefinedTable:  # not migrated yet
        return 0
