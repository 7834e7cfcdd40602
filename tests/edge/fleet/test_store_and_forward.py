"""A till's records reach the chain's PostgreSQL exactly once through real mosquitto, whatever fails on
the way: the broker down at start, the broker killed mid-stream, the till or the collector killed with -9,
a message published twice, garbage on the topic."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from fleet_till import SimulatedTill, chain_rows, till_rows, wait_until_shipped, write_config
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config import load_config
from edge.fleet.publisher import Publisher
from edge.store.central import CentralStore, TillSeen

from fleet_clients import USERS, raw_client

ROOT = Path(__file__).resolve().parents[3]


def publisher_for(tmp_path: Path, broker, password: Path, **fleet) -> Publisher:
    config = write_config(tmp_path / "till.yaml", broker.url, "s1", "t1", password, heartbeat_s=0.5, **fleet)
    return Publisher(load_config(config))


def shipping_till(tmp_path: Path, broker, password: Path) -> tuple[Path, SimulatedTill, Publisher]:
    """A simulated till's event log and its publisher, connected and shipping."""
    db = tmp_path / "till.db"
    till = SimulatedTill(db)
    publisher = publisher_for(tmp_path, broker, password)
    publisher.connect()
    publisher.start(db)
    return db, till, publisher


def collect_the_rest(command: list[str], env: dict[str, str], chain_db: str, db: Path) -> None:
    """A restarted `agecam collect` (command) brings the chain level with the till's log; it stops with exit 0."""
    restarted = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until_shipped(chain_db, db, "s1", "t1") == till_rows(db)
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=15) == 0, restarted.stderr.read()


def test_broker_down_when_the_till_starts(tmp_path, broker, chain_db, till_password, collector_for):
    db = tmp_path / "till.db"
    till = SimulatedTill(db)
    publisher = publisher_for(tmp_path, broker, till_password)
    publisher.connect(timeout_s=1)  # nobody answers: store and forward
    publisher.start(db)
    for n in range(20):
        till.customer(sale=n % 2 == 0)
    time.sleep(1.5)
    assert publisher.stats.shipped == 0 and publisher.stats.depth == till_rows(db)["inbox_rows"]
    broker.start()
    collector_for(broker, chain_db)
    till.finish()
    assert wait_until_shipped(chain_db, db, "s1", "t1") == till_rows(db)
    publisher.stop()
    assert publisher.stats.depth == 0 and publisher.stats.shipped == till_rows(db)["inbox_rows"]


def test_broker_killed_mid_stream_and_restarted(tmp_path, broker, chain_db, till_password, collector_for):
    broker.start()
    collector_for(broker, chain_db)
    db, till, publisher = shipping_till(tmp_path, broker, till_password)
    for n in range(60):
        till.customer(sale=n % 2 == 0)
        if n == 20:
            broker.kill()
        if n == 40:
            during_outage = chain_rows(chain_db, "s1", "t1")["inbox_rows"]
            broker.start()
        time.sleep(0.02)
    till.finish()
    assert during_outage < till_rows(db)["inbox_rows"] / 2
    # Records sent before the collector resubscribes are refused and retried after a backoff that doubles
    # up to 30 s: on a loaded machine two retries at the cap can pass before the chain has them all.
    assert wait_until_shipped(chain_db, db, "s1", "t1", timeout_s=150) == till_rows(db)
    publisher.stop()


def test_till_killed_with_9_while_publishing_then_restarted(tmp_path, broker, chain_db, till_password, collector_for):
    broker.start()
    collector_for(broker, chain_db)
    db = tmp_path / "till.db"
    config = write_config(tmp_path / "till.yaml", broker.url, "s1", "t1", till_password)
    command = [sys.executable, str(ROOT / "benchmarks" / "fleet_till.py"), str(config), str(db)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen([*command, "--customers", "400", "--every", "0.005"], env=env, stdout=subprocess.PIPE)
    assert json.loads(first.stdout.readline())["run_id"] == 1
    time.sleep(1.0)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    unshipped = sqlite3.connect(db).execute("SELECT count(*) FROM outbox WHERE shipped_at IS NULL").fetchone()[0]
    assert unshipped > 0, "killed while records were still on their way"
    # The next start marks the dead run failed and ships what the first one left (and its own records).
    second = subprocess.run([*command, "--customers", "5"], env=env, capture_output=True, timeout=60)
    assert second.returncode == 0, second.stderr.decode()
    expected = till_rows(db)
    assert (1, "failed") in expected["runs"] and len(expected["customers"]) > 5
    assert wait_until_shipped(chain_db, db, "s1", "t1") == expected, f"{unshipped} were unshipped at the kill"


def test_collector_killed_and_restarted(tmp_path, broker, chain_db, till_password):
    broker.start()
    password = tmp_path / "collector.password"
    password.write_text(USERS["collector"])
    command = [sys.executable, "-m", "edge.cli", "--log-level", "WARNING", "collect", "--broker", broker.url]
    command += ["--db", chain_db, "--username", "collector", "--password-file", str(password), "--client-id", "c1"]
    command += ["--batch", "5"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    collector = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    db, till, publisher = shipping_till(tmp_path, broker, till_password)
    for n in range(60):
        till.customer(sale=n % 2 == 0)
        if n == 5:
            _wait_for_rows(chain_db)
        if n == 25:
            collector.send_signal(signal.SIGKILL)
            collector.wait(timeout=10)
            middle = chain_rows(chain_db, "s1", "t1")["inbox_rows"]
        time.sleep(0.02)
    till.finish()
    time.sleep(1)
    assert chain_rows(chain_db, "s1", "t1")["inbox_rows"] == middle, "nothing written while the collector was down"
    collect_the_rest(command, env, chain_db, db)
    publisher.stop()


def _wait_for_rows(url: str, timeout_s: float = 30) -> None:
    """Until the collector (a fresh process) has migrated the database and written something."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if chain_rows(url, "s1", "t1")["inbox_rows"]:
                return
        except psycopg.errors.UndefinedTable:
            pass
        time.sleep(0.1)
    raise AssertionError("the collector wrote nothing")


def test_a_message_published_twice_and_garbage_are_stored_once_or_never(
    tmp_path, broker, chain_db, till_password, collector_for
):
    broker.start()
    running = collector_for(broker, chain_db)
    db, till, publisher = shipping_till(tmp_path, broker, till_password)
    for _ in range(10):
        till.customer(sale=True)
    till.finish()
    assert wait_until_shipped(chain_db, db, "s1", "t1") == till_rows(db)
    publisher.stop()
    # The whole outbox again, as after a crash between PUBACK and marking the rows shipped.
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE outbox SET shipped_at = NULL")
    again = publisher_for(tmp_path, broker, till_password)
    again.connect()
    again.start(db)
    client = raw_client(broker)
    garbage = [
        ("agecam/s1/t1/customer", b"not json"),
        ("agecam/s1/t1/customer", b'{"v": 1}'),
        ("agecam/s1/t1/run", json.dumps({"v": 2, "id": "x"}).encode()),
        ("agecam/s1/t1/availability", b"maybe"),
        ("agecam/s9/t9/heartbeat", b'{"v": 1, "store_id": "s1", "till_id": "t1"}'),
        ("agecam/other", b"\x00\xff" * 100),
    ]
    for topic, payload in garbage:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    forged = _forged_record(db)  # a valid record claiming another till: refused, its topic says otherwise
    client.publish("agecam/s1/t1/customer", forged, qos=1).wait_for_publish(5)
    deadline = time.monotonic() + 20
    metrics = running.collector.metrics
    while time.monotonic() < deadline and (metrics.rejects._value.get() < 7 or again.stats.depth or again._inflight):
        time.sleep(0.2)
    again.stop()
    client.loop_stop()
    expected = till_rows(db)
    assert chain_rows(chain_db, "s1", "t1") == expected
    assert metrics.rejects._value.get() == 7
    assert metrics.duplicates._value.get() >= expected["inbox_rows"]
    with psycopg.connect(chain_db) as chain:
        assert chain.execute("SELECT count(*) FROM agecam.inbox").fetchone()[0] == expected["inbox_rows"]
        assert chain.execute("SELECT count(*) FROM agecam.tills").fetchone()[0] == 1
        _check_views(chain, db)


def _check_views(chain: psycopg.Connection, db: Path) -> None:
    """The chain's views agree with the till: statistics, flags with their review, compliance, silence."""
    till = sqlite3.connect(db)
    counted = till.execute("SELECT age_group, sum(customers) FROM hourly_stats GROUP BY age_group").fetchall()
    by_store = "SELECT age_group, sum(customers) FROM agecam.chain_hourly_by_store WHERE store_id = 's1' GROUP BY 1"
    assert sorted(chain.execute(by_store).fetchall()) == sorted(counted)
    flags = till.execute("SELECT id FROM alerts WHERE kind = 'flag' ORDER BY id").fetchall()
    first = flags[0][0]
    chain.execute(
        "INSERT INTO agecam.flag_reviews (store_id, till_id, log_key, alert_id, outcome, reviewer)"
        " SELECT store_id, till_id, log_key, alert_id, 'confirmed', 'rita' FROM agecam.alerts WHERE alert_id = %s",
        (first,),
    )
    reviewed = chain.execute("SELECT alert_id, review_outcome, pos_transaction_id FROM agecam.chain_flags ORDER BY 1")
    outcomes = [(row[0], row[1]) for row in reviewed]
    assert outcomes == [(first, "confirmed")] + [(i, "pending") for (i,) in flags[1:]]
    required = till.execute("SELECT count(*) FROM transactions WHERE check_required = 1").fetchone()[0]
    compliance = chain.execute("SELECT sum(required), sum(checked) FROM agecam.chain_compliance").fetchone()
    assert compliance == (required, 0)
    chances = chain.execute("SELECT DISTINCT round(p_under::numeric, 3)::float FROM agecam.chain_flags").fetchall()
    assert chances == [(0.93,)], "each flag with its P(under the threshold), as the till sent it"
    silent = chain.execute("SELECT till_id, availability FROM agecam.chain_silent_tills").fetchall()
    assert silent in ([], [("t1", "offline")]), "heard from just now: silent only once it said offline"


def _forged_record(db: Path) -> bytes:
    with sqlite3.connect(db) as connection:
        body = connection.execute("SELECT body FROM outbox WHERE kind = 'customer' LIMIT 1").fetchone()[0]
    envelope = {"v": 1, "id": "00000000000000ff:1", "store_id": "s2", "till_id": "t1", "seq": 1, "kind": "customer"}
    return json.dumps({**envelope, "at": "2026-01-01T00:00:00Z", "data": json.loads(body)}).encode()


def test_availability_is_retained_online_then_offline_by_the_last_will(tmp_path, broker, chain_db, till_password):
    broker.start()
    db = tmp_path / "till.db"
    SimulatedTill(db).finish()
    publisher = publisher_for(tmp_path, broker, till_password, keepalive_s=5)
    publisher.connect()
    seen: list[str] = []
    watcher = raw_client(broker)
    watcher.on_message = lambda _c, _u, message: seen.append(message.payload.decode())
    watcher.subscribe("agecam/s1/t1/availability", qos=1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not seen:
        time.sleep(0.05)
    assert seen == ["online"], "retained: a late subscriber still learns the state"
    publisher.client._sock.close()  # what kill -9 or a cut cable does: no DISCONNECT, so the broker sends the will
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "offline" not in seen:
        time.sleep(0.05)
    assert seen[:2] == ["online", "offline"]
    publisher.stop(flush_s=0)
    watcher.loop_stop()


def test_a_locked_event_log_delays_marking_rows_shipped_but_leaves_none_behind(
    tmp_path, broker, chain_db, till_password, collector_for
):
    """Delivered rows whose 'shipped' mark hit a locked log are marked on a later pass, not left unshipped
    (and unsent) until the next start."""
    broker.start()
    collector_for(broker, chain_db)
    db = tmp_path / "till.db"
    till = SimulatedTill(db)
    for n in range(6):
        till.customer(sale=n % 2 == 0)
    till.finish()
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # another writer holds the log longer than the reader's 10 s busy timeout
    publisher = publisher_for(tmp_path, broker, till_password)
    publisher.connect()
    publisher.start(db)
    try:
        assert wait_until_shipped(chain_db, db, "s1", "t1") == till_rows(db), "delivered while the log is locked"
        time.sleep(11)
        assert publisher.stats.shipped == 0, "marking them shipped waited on the lock and failed"
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    deadline = time.monotonic() + 15
    while publisher.stats.depth and time.monotonic() < deadline:
        time.sleep(0.2)
    publisher.stop()
    with sqlite3.connect(db) as check:
        assert check.execute("SELECT count(*) FROM outbox WHERE shipped_at IS NULL").fetchone()[0] == 0
    assert publisher.stats.shipped == till_rows(db)["inbox_rows"]


def _poison_alert() -> bytes:
    """A well-formed alert whose association nests deeper than Python's json can decode (RecursionError)."""
    envelope = {"v": 1, "id": "00000000000000ff:1", "store_id": "s1", "till_id": "t1", "seq": 1, "kind": "alert"}
    data = {
        "run_id": 1, "alert_id": 1, "transaction_number": 1, "kind": "flag", "type": "no_face", "severity": "high",
        "at": "2026-01-01T00:00:00Z", "t": 1.0, "latency_s": None, "pos_till_id": "t1", "cashier_id": None,
        "association": "[" * 19000, "has_evidence": False, "track_id": None, "age": None, "age_low": None,
        "age_high": None, "samples": None,
    }  # fmt: skip
    return json.dumps({**envelope, "at": "2026-01-01T00:00:00Z", "data": data}).encode()


def _heartbeat(till: str, **fields: object) -> bytes:
    body = {"v": 1, "store_id": "s1", "till_id": till, "at": 1.0, "outbox": 0, "oldest_unshipped_s": 0.0}
    return json.dumps({**body, "status": {}, **fields}).encode()


def _chain_tills(url: str) -> list[tuple]:
    with psycopg.connect(url) as chain:
        return chain.execute("SELECT till_id, outbox FROM agecam.chain_tills ORDER BY till_id").fetchall()


def _heard(url: str, running, client, till: str, resend: bool) -> list[tuple]:
    """The chain's tills once `till`'s heartbeat is stored; `resend` until then (the collector may not have
    subscribed yet: the broker drops what nobody subscribes to)."""
    deadline, tills, sent = time.monotonic() + 20, [], False
    while time.monotonic() < deadline and running.thread.is_alive() and (till, 0) not in tills:
        if resend or not sent:
            client.publish(f"agecam/s1/{till}/heartbeat", _heartbeat(till), qos=1).wait_for_publish(5)
            sent = True
        time.sleep(0.2)
        tills = _chain_tills(url)
    return tills


def test_poison_messages_are_refused_and_the_collector_carries_on(broker, chain_db, collector_for):
    """Each of these ended the collector (a traceback in its loop) or broke a chain view for every till."""
    broker.start()
    running = collector_for(broker, chain_db)
    client = raw_client(broker)
    assert _heard(chain_db, running, client, "t2", resend=True) == [("t2", 0)]
    odd_name = Properties(PacketTypes.PUBLISH)
    odd_name.UserProperty = [("store_id", "s1"), ("till_id", "<i>")]
    poison = [
        ("agecam/s1/t1/alert", _poison_alert(), None),
        ("agecam/s1/t1/heartbeat", _heartbeat("t1", status={"source": "live\u0000"}), None),  # jsonb: no \u0000
        ("agecam/s1/t1/heartbeat", _heartbeat("t1", outbox=3_000_000_000), None),  # chain_tills: ::integer
        ("agecam/s1/<i>/availability", b"online", odd_name),  # not a till name
    ]
    for topic, payload, properties in poison:
        client.publish(topic, payload, qos=1, properties=properties).wait_for_publish(5)
    tills = _heard(chain_db, running, client, "t3", resend=False)  # sent after the poison: stored after it
    client.loop_stop()
    assert running.thread.is_alive(), "the collector is still running"
    assert running.collector.metrics.rejects._value.get() == 4
    assert tills == [("t2", 0), ("t3", 0)], "only the good heartbeats are stored, and the view reads"


def test_a_till_update_the_database_refuses_keeps_the_batch(chain_db):
    """A till row PostgreSQL refuses is skipped: the batch's other records and tills are still written."""
    store = CentralStore(chain_db)
    try:
        result = store.write([], [TillSeen("s1", "t2"), TillSeen("s1", "t1", status='{"a": "\\u0000"}')])
    finally:
        store.close()
    assert result.refused == []
    with psycopg.connect(chain_db) as chain:
        assert chain.execute("SELECT store_id, till_id FROM agecam.tills").fetchall() == [("s1", "t2")]


def test_a_record_is_on_disk_before_it_leaves_the_till(
    tmp_path, broker, chain_db, till_password, collector_for, monkeypatch
):
    """The frame loop commits with synchronous=NORMAL, its last commits unsynced in the WAL: shipped before a
    sync, a power cut would undo them after the chain had them, and their ids would go to other records, which
    the chain would drop as duplicates. Every record's publish follows an fsync of the WAL made after it was read."""
    broker.start()
    collector_for(broker, chain_db)
    db = tmp_path / "till.db"
    till = SimulatedTill(db)
    wal = os.stat(f"{db}-wal").st_ino
    steps: list[str] = []  # "sync" for an fsync of the WAL, else the topic published to
    fsync = os.fsync

    def spy_fsync(fd: int) -> None:
        if os.fstat(fd).st_ino == wal:
            steps.append("sync")
        fsync(fd)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    publisher = publisher_for(tmp_path, broker, till_password)
    publish = publisher.client.publish

    def spy_publish(topic: str, *args: object, **kwargs: object):
        steps.append(topic)
        return publish(topic, *args, **kwargs)

    monkeypatch.setattr(publisher.client, "publish", spy_publish)
    publisher.connect()
    publisher.start(db)
    for n in range(6):
        till.customer(sale=n % 2 == 0)
    till.finish()
    assert wait_until_shipped(chain_db, db, "s1", "t1") == till_rows(db)
    publisher.stop()
    records = [
        step for step in steps if step.rsplit("/", 1)[-1] in ("run", "customer", "hourly", "transaction", "alert")
    ]
    assert len(records) >= till_rows(db)["inbox_rows"]
    first = next(index for index, step in enumerate(steps) if step in records)
    assert "sync" in steps[:first], steps[: first + 1]
