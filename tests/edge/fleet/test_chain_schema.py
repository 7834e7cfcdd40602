"""P(real age < the Challenge age) across the chain, with tills and databases of before it: a chain database
of schema 1 migrates and keeps its rows (p_under NULL), a till's messages without p_under are accepted and
stored as NULL, one with a value out of [0, 1] is refused, and `agecam events --db postgresql://...` shows
p_under as a till's own log does."""

from __future__ import annotations

import json
import sqlite3
import time

import psycopg
from fleet_till import SimulatedTill

from edge.fleet.messages import parse_record
from edge.store.central import CentralStore
from edge.store.central_schema import MIGRATIONS, SCHEMA_VERSION

from fleet_clients import raw_client

KEY = "00000000000000aa"


def _message(kind: str, seq: int, data: dict, store: str = "s1", till: str = "t1") -> tuple[str, bytes]:
    envelope = {"v": 1, "id": f"{KEY}:{seq}", "store_id": store, "till_id": till, "seq": seq, "kind": kind}
    body = {**envelope, "at": "2026-11-22T09:31:00.000Z", "data": data}
    return f"agecam/{store}/{till}/{kind}", json.dumps(body).encode()


def _schema_1_database(url: str) -> None:
    """A chain database as the collector before p_under left it: a customer, a sale and its flag."""
    with psycopg.connect(url) as db:
        db.execute("CREATE SCHEMA agecam")
        db.execute("CREATE TABLE agecam.schema_version (version integer NOT NULL)")
        for statement in MIGRATIONS[0]:
            db.execute(statement)
        db.execute("INSERT INTO agecam.schema_version VALUES (1)")
        till = "'s1', 't1', 'abcdef0123456789', 1"
        db.execute(
            "INSERT INTO agecam.customers (store_id, till_id, log_key, run_id, track_id, first_seen, last_seen,"
            f" age, age_low, age_high, samples, age_group, counted) VALUES ({till}, 4, '2026-11-22T09:30:00Z',"
            " '2026-11-22T09:31:00Z', 17.5, 14.0, 21.0, 6, '<18', true)"
        )
        db.execute(
            "INSERT INTO agecam.transactions (store_id, till_id, log_key, run_id, number, pos_transaction_id,"
            " pos_till_id, started_at, status, restricted_items, check_required, track_id, age, age_low, age_high,"
            f" samples, seq) VALUES ({till}, 1, 'T1', 'pos-1', '2026-11-22T09:30:10Z', 'completed', 1, true, 4,"
            " 17.5, 14.0, 21.0, 6, 3)"
        )
        db.execute(
            "INSERT INTO agecam.alerts (store_id, till_id, log_key, run_id, alert_id, transaction_number, kind,"
            " type, severity, at, pos_till_id, track_id, age, age_low, age_high, samples, has_evidence) VALUES"
            f" ({till}, 7, 1, 'flag', 'sold_without_id_check', 'high', '2026-11-22T09:31:00Z', 'pos-1', 4, 17.5,"
            " 14.0, 21.0, 6, false)"
        )


def test_a_chain_database_of_schema_1_migrates_and_keeps_its_rows(chain_db, agecam, write_config):
    _schema_1_database(chain_db)
    CentralStore(chain_db).close()  # what `agecam collect` does on starting
    with psycopg.connect(chain_db) as db:
        assert db.execute("SELECT version FROM agecam.schema_version").fetchone() == (SCHEMA_VERSION,)
        for table in ("customers", "transactions", "alerts"):
            assert db.execute(f"SELECT age, p_under FROM agecam.{table}").fetchall() == [(17.5, None)], table
        flag = db.execute("SELECT alert_id, pos_transaction_id, review_outcome, p_under FROM agecam.chain_flags")
        assert flag.fetchall() == [(7, "T1", "pending", None)]
    rows = agecam("--config", write_config(), "events", "--db", chain_db, "--format", "json").json()
    assert [(row["kind"], row["age"], row["p_under"]) for row in rows] == [
        ("customer", 17.5, None),
        ("flag", 17.5, None),
    ]
    # A till that sends p_under now: written beside the estimate, read back as on a till (3 decimals).
    data = {
        "run_id": 2, "track_id": 1, "first_seen": "2026-11-22T10:00:00Z", "last_seen": "2026-11-22T10:00:05Z",
        "age": 24.0, "age_low": 20.0, "age_high": 28.0, "p_under": 0.31, "samples": 5, "age_group": "18-24",
        "counted": True,
    }  # fmt: skip
    store = CentralStore(chain_db)
    try:
        assert store.write([parse_record(*_message("customer", 1, data))], []).written == 1
    finally:
        store.close()
    rows = agecam("--config", write_config(), "events", "--db", chain_db, "--kind", "customer", "--format", "json")
    assert [row["p_under"] for row in rows.json()] == [None, 0.31]
    table = agecam("--config", write_config(), "events", "--db", chain_db, "--kind", "customer").out.splitlines()
    column = table[0].index("p_under")
    assert [line[column : column + 4].strip() for line in table[1:]] == ["", "0.31"]


def _wait(condition, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the collector did not get there in time"
        time.sleep(0.1)


def test_messages_of_a_till_without_p_under_are_stored_as_null(tmp_path, broker, chain_db, collector_for):
    broker.start()
    running = collector_for(broker, chain_db)
    db = tmp_path / "till.db"
    till = SimulatedTill(db)
    till.customer(sale=True)  # young: customer, hour, three transaction states, alert and flag
    till.finish()
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT id, kind, body FROM outbox ORDER BY id").fetchall()
    client = raw_client(broker)
    older = [(seq, kind, json.loads(body)) for seq, kind, body in rows]
    for seq, kind, data in older:
        data.pop("p_under", None)  # what an agecam from before p_under sends
        client.publish(*_message(kind, seq, data), qos=1).wait_for_publish(5)

    def stored() -> int:
        with psycopg.connect(chain_db) as chain:
            return chain.execute("SELECT count(*) FROM agecam.inbox").fetchone()[0]

    _wait(lambda: stored() == len(older))
    assert running.collector.metrics.rejects._value.get() == 0, "every message of the older till is accepted"
    with psycopg.connect(chain_db) as chain:
        for table in ("customers", "transactions", "alerts"):
            found = chain.execute(f"SELECT age IS NOT NULL, p_under FROM agecam.{table}").fetchall()
            assert found and set(found) == {(True, None)}, table
    customer = next(data for _, kind, data in older if kind == "customer")
    for seq, (track, value) in enumerate(((8, 1.5), (9, 1 + 1e-12)), start=len(older) + 1):
        client.publish(*_message("customer", seq, {**customer, "track_id": track, "p_under": value}), qos=1)
    _wait(lambda: stored() == len(older) + 1 and running.collector.metrics.rejects._value.get() == 1)
    client.loop_stop()
    with psycopg.connect(chain_db) as chain:
        chances = chain.execute("SELECT track_id, p_under FROM agecam.customers WHERE track_id > 0 ORDER BY 1")
        assert chances.fetchall() == [(9, 1.0)], "1.5 is refused; a rounding error over 1 is 1"
