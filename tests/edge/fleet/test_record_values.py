"""Every value a till's event log can hold reaches the chain: a record the collector refuses is acknowledged
and never sent again, so refusing a legitimate value loses that record for good."""

from __future__ import annotations

import logging
import sqlite3
import time

import psycopg
import pytest
from fleet_till import SimulatedTill, till_rows, wait_until_shipped, write_config

from edge.config import CustomerConfig, load_config
from edge.fleet.publisher import Publisher
from edge.store.eventlog import CustomerRecord
from edge.store.pos_records import AlertRow, TransactionRow
from edge.vision.customer import CustomerAge


def publishing_till(tmp_path, broker, till_password) -> tuple[SimulatedTill, Publisher]:
    """A till's event log with its publisher started against the broker, as store s1, till t1."""
    db = tmp_path / "till.db"
    till = SimulatedTill(db)
    publisher = Publisher(load_config(write_config(tmp_path / "till.yaml", broker.url, "s1", "t1", till_password)))
    publisher.connect()
    publisher.start(db)
    return till, publisher


def test_an_unresolved_sale_and_its_flag_reach_the_chain(tmp_path, broker, chain_db, till_password, collector_for):
    """The policy closes a sale the POS never ended as 'unresolved' (event log schema 6) and flags it; the
    collector refused that status, so the chain kept the sale 'open' and left it out of compliance."""
    broker.start()
    running = collector_for(broker, chain_db)
    till, publisher = publishing_till(tmp_path, broker, till_password)
    db = tmp_path / "till.db"

    def sale(status: str, ended: float | None) -> TransactionRow:
        resolution = "expired" if status == "unresolved" else None
        return TransactionRow(
            till.run_id, 1, "pos-1", 1.0, "T1", "c1", ended, status, 1, None, True, None, None, None, resolution
        )

    till.pos.save([(sale("open", None), None)])
    flag = AlertRow("flag", "unresolved", "high", 9.0, None, "pos-1", "c1", None, None, None)
    till.pos.save([(sale("unresolved", 9.0), flag)])
    till.finish()
    try:
        expected = till_rows(db)
        assert (1, 1, "unresolved") in expected["transactions"]
        assert wait_until_shipped(chain_db, db, "s1", "t1", timeout_s=20) == expected
        assert running.collector.metrics.rejects._value.get() == 0
    finally:
        publisher.stop()


def test_a_young_childs_customer_and_flag_reach_the_chain(tmp_path, broker, chain_db, till_password, collector_for):
    """A child's estimate (the model's ages start at 0) has an interval whose low end is below 0: the
    collector refused such a customer and its flag, the very flag that matters most."""
    broker.start()
    running = collector_for(broker, chain_db)
    till, publisher = publishing_till(tmp_path, broker, till_password)
    db = tmp_path / "till.db"
    child = CustomerAge(CustomerConfig(), risk_age=25)
    for n in range(5):  # what the till combines from a toddler's samples: age 2, the model's std 3
        child.add(2.0, 3.0, 0.9, n * 0.3)
    estimate = child.estimate
    assert estimate is not None and estimate.low < 0
    now = time.time()
    till.log.save_customers(till.run_id, [CustomerRecord(1, now - 5, now, estimate, "<18", True, True)])
    t = now - till.origin
    sale = TransactionRow(till.run_id, 1, "pos-1", t - 3, "T1", "c1", t, "completed", 1, None, True, 1, estimate, None)
    flag = AlertRow("flag", "sold_without_id_check", "high", t, None, "pos-1", "c1", 1, estimate, {"track_id": 1})
    till.pos.save([(sale, flag)])
    till.finish()
    try:
        expected = till_rows(db)
        assert len(expected["alerts"]) == 1 and len(expected["customers"]) == 1
        assert wait_until_shipped(chain_db, db, "s1", "t1", timeout_s=20) == expected
        assert running.collector.metrics.rejects._value.get() == 0
        with psycopg.connect(chain_db) as chain:
            low = chain.execute("SELECT age_low FROM agecam.alerts").fetchone()[0]
        assert low == pytest.approx(estimate.low, abs=1e-4), "stored as the till has it"
    finally:
        publisher.stop()


def test_a_read_only_database_delays_records_but_loses_none(
    tmp_path, postgres, broker, chain_db, till_password, collector_for
):
    """While PostgreSQL refuses writes (read-only by a setting, as during a failover or maintenance), the
    collector took every record of its batches for a bad one: refused, acknowledged, gone for good."""
    broker.start()
    running = collector_for(broker, chain_db)
    till, publisher = publishing_till(tmp_path, broker, till_password)
    db = tmp_path / "till.db"
    metrics = running.collector.metrics
    admin = psycopg.connect(postgres.url(), autocommit=True)
    try:
        till.customer(sale=True)
        assert wait_until_shipped(chain_db, db, "s1", "t1") == till_rows(db), "the chain is up and written"
        admin.execute("ALTER SYSTEM SET default_transaction_read_only = on")
        admin.execute("SELECT pg_reload_conf()")
        for n in range(6):
            till.customer(sale=n % 2 == 0)
        deadline = time.monotonic() + 20
        while metrics.db_errors._value.get() + metrics.rejects._value.get() == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        admin.execute("ALTER SYSTEM RESET default_transaction_read_only")
        admin.execute("SELECT pg_reload_conf()")
        admin.close()
    till.finish()
    try:
        assert metrics.rejects._value.get() == 0, "nothing refused: the database refused, not the records"
        assert wait_until_shipped(chain_db, db, "s1", "t1", timeout_s=40) == till_rows(db)
    finally:
        publisher.stop()


def test_a_record_with_a_nul_character_reaches_the_chain_with_it_replaced(
    tmp_path, broker, chain_db, till_password, collector_for, caplog
):
    """A till older than the POS check that refuses control characters stored a cashier id (and so on) with a
    NUL in it. PostgreSQL's text and jsonb cannot hold NUL: the collector refused the record, and a refused
    record is acknowledged, so the sale and its flag were lost for good. Each NUL is stored as U+FFFD."""
    broker.start()
    running = collector_for(broker, chain_db)
    till, publisher = publishing_till(tmp_path, broker, till_password)
    db = tmp_path / "till.db"
    sale = TransactionRow(
        till.run_id, 1, "pos\x001", 1.0, "T\x001", "c\x001", 9.0, "completed", 1, None, True, None, None, None
    )
    flag = AlertRow("flag", "no_face", "high", 9.0, None, "pos\x001", "c\x001", None, None, {"note\x00": "a\x00b"})
    with caplog.at_level(logging.WARNING, logger="edge.fleet"):
        till.pos.save([(sale, flag)])
        till.finish()
        try:
            assert wait_until_shipped(chain_db, db, "s1", "t1", timeout_s=20) == till_rows(db)
            assert running.collector.metrics.rejects._value.get() == 0
        finally:
            publisher.stop()
    with psycopg.connect(chain_db) as chain:
        sales = chain.execute("SELECT pos_transaction_id, pos_till_id, cashier_id FROM agecam.transactions")
        assert sales.fetchall() == [("T\ufffd1", "pos\ufffd1", "c\ufffd1")]
        flags = chain.execute("SELECT pos_till_id, cashier_id, association FROM agecam.alerts").fetchall()
        assert flags == [("pos\ufffd1", "c\ufffd1", {"note\ufffd": "a\ufffdb"})]
    key = sqlite3.connect(db).execute("SELECT key FROM outbox_key").fetchone()[0]
    warnings = sorted(r.getMessage() for r in caplog.records if "NUL" in r.getMessage())
    assert len(warnings) == 2, "one line per record: the sale and its flag"
    assert all("s1/t1" in line for line in warnings), warnings
    assert [f"{key}:2" in warnings[0], f"{key}:3" in warnings[1]] == [True, True], warnings
