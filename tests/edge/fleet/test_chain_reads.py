"""`agecam events|stats|report --db postgresql://...` against a real PostgreSQL filled through the collector's
own store (CentralStore.write of parsed messages): the time indexes serve the queries, a flag shows its chain
review outcome, older, newer, read-only and unprivileged databases each get one line, and no password shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
from fleet_servers import free_port
from test_chain_schema import _schema_1_database

from edge.fleet.messages import parse_record
from edge.store.central import CentralStore, ChainRecord
from edge.store.central_schema import SCHEMA_VERSION

START = datetime(2026, 3, 1, tzinfo=UTC)
ESTIMATE = {"age": 17.0, "age_low": 14.0, "age_high": 20.0, "p_under": 0.7, "samples": 5}


def _record(store: str, seq: int, kind: str, data: dict) -> ChainRecord:
    body = {"v": 1, "id": f"{seq % 7:016x}:{seq}", "store_id": store, "till_id": "t1", "seq": seq, "kind": kind}
    body |= {"at": "2026-03-01T00:00:00.000Z", "data": data}
    return parse_record(f"agecam/{store}/t1/{kind}", json.dumps(body).encode())


def _iso(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _fill(url: str, stores: int, customers: int) -> None:
    """`customers` counted customers a store, one a minute, and a sale with a flag every 50th."""
    records = []
    for s in range(stores):
        store, seq = f"s{s:02d}", 0
        for i in range(customers):
            seq += 1
            when = _iso(i + s)
            records.append(_record(store, seq, "customer", {
                "run_id": 1, "track_id": i, "first_seen": when, "last_seen": when, **ESTIMATE, "age_group": "<18",
                "counted": True,
            }))  # fmt: skip
            if i % 50 == 0:
                sale = {"run_id": 1, "number": i, "pos_transaction_id": f"T{i}", "pos_till_id": "p1"}
                records.append(_record(store, seq + 1, "transaction", {
                    **sale, "cashier_id": "c1", "started_at": when, "ended_at": when, "status": "completed",
                    "restricted_items": 1, "id_check": None, "check_required": True, "track_id": i, **ESTIMATE,
                }))  # fmt: skip
                records.append(_record(store, seq + 2, "alert", {
                    "run_id": 1, "alert_id": i, "transaction_number": i, "kind": "flag",
                    "type": "sold_without_id_check", "severity": "high", "at": when, "t": 1.0, "latency_s": None,
                    "pos_till_id": "p1",
                    "cashier_id": "c1", "association": None, "has_evidence": False, "track_id": i, **ESTIMATE,
                }))  # fmt: skip
                seq += 2
    store = CentralStore(url)
    try:
        for start in range(0, len(records), 5000):
            assert not store.write(records[start : start + 5000], []).refused
    finally:
        store.close()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("ANALYZE")


def _seq_scans(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as db:
        rows = db.execute("SELECT relname, seq_scan FROM pg_stat_user_tables WHERE schemaname = 'agecam'")
        return dict(rows.fetchall())


def test_chain_events_use_the_time_indexes(chain_db, agecam, write_config):
    """A period, or the first rows of all, read through customers_by_time and alerts_by_time: filtering and
    sorting on the text of the times read every row of both tables (a sequential scan) on each query."""
    _fill(chain_db, stores=10, customers=2000)
    config = write_config()
    for args in (["--since", "2026-03-01T05:00", "--until", "2026-03-01T06:00"], ["--limit", "5"]):
        before = _seq_scans(chain_db)
        result = agecam("--config", config, "events", "--db", chain_db, "--format", "json", *args)
        assert result.code == 0, result.err
        rows = json.loads(result.out)
        assert rows and rows == sorted(rows, key=lambda row: (row["at"], row["kind"]))
        after = _seq_scans(chain_db)  # the CLI's backend has ended, so its counts are in
        assert {table: after[table] - before[table] for table in ("customers", "alerts")} == {
            "customers": 0,
            "alerts": 0,
        }, args
    rows = json.loads(agecam("--config", config, "events", "--db", chain_db, "--format", "json").out)
    assert len(rows) == 1000 and rows[0]["at"] == "2026-03-01T00:00:00.000Z"


def test_chain_flags_show_their_review_outcome_or_pending(chain_db, agecam, write_config):
    _fill(chain_db, stores=1, customers=60)
    with psycopg.connect(chain_db, autocommit=True) as db:
        db.execute(
            "INSERT INTO agecam.flag_reviews (store_id, till_id, log_key, alert_id, outcome, reviewer)"
            " SELECT store_id, till_id, log_key, alert_id, 'confirmed', 'lp' FROM agecam.alerts WHERE alert_id = 50"
        )
    args = ["--config", write_config(), "events", "--db", chain_db, "--format", "json", "--limit", "100"]
    rows = json.loads(agecam(*args).out)
    assert [row["outcome"] for row in rows if row["kind"] == "flag"] == ["pending", "confirmed"]
    assert {row["outcome"] for row in rows if row["kind"] == "customer"} == {None}


def test_chain_events_read_a_schema_1_database_as_it_is(chain_db, agecam, write_config):
    _schema_1_database(chain_db)  # not migrated: a reader must not need the collector to have run first
    result = agecam("--config", write_config(), "events", "--db", chain_db, "--format", "json")
    assert result.code == 0, result.err
    assert [(row["kind"], row["p_under"], row["outcome"]) for row in json.loads(result.out)] == [
        ("customer", None, None),
        ("flag", None, "pending"),
    ]


def test_chain_reads_refuse_a_newer_schema_and_a_role_without_grants(chain_db, agecam, write_config, postgres):
    _fill(chain_db, stores=1, customers=3)
    config = write_config()
    with psycopg.connect(chain_db, autocommit=True) as db:
        db.execute("DROP ROLE IF EXISTS outsider")
        db.execute("CREATE ROLE outsider LOGIN PASSWORD 'outsider-secret'")
    outsider = chain_db.replace("agecam@", "outsider:outsider-secret@")
    for command in ("events", "stats"):
        result = agecam("--config", config, command, "--db", outsider)
        assert result.code == 6 and "outsider-secret" not in result.err, result.err
        assert result.err.count("\n") == 1 and "USAGE on schema agecam" in result.err, result.err
    with psycopg.connect(chain_db, autocommit=True) as db:
        db.execute("GRANT USAGE ON SCHEMA agecam TO outsider")  # the schema, not its tables
    result = agecam("--config", config, "events", "--db", outsider)
    assert result.code == 6 and result.err.count("\n") == 1 and "permission denied" in result.err, result.err
    with psycopg.connect(chain_db, autocommit=True) as db:
        db.execute("UPDATE agecam.schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    result = agecam("--config", config, "events", "--db", chain_db)
    assert result.code == 6 and f"chain schema {SCHEMA_VERSION + 1}, newer" in result.err, result.err


def test_collector_opens_a_current_chain_with_row_grants_or_read_only(chain_db, agecam, postgres):
    """No DDL once the schema is current: a least-privilege role or a read-only database opens (its writes
    are retried); a read-only database that still needs the schema is refused in one line, exit 6."""
    CentralStore(chain_db).close()
    with psycopg.connect(chain_db, autocommit=True) as db:
        db.execute("DROP ROLE IF EXISTS writer")
        db.execute("CREATE ROLE writer LOGIN")
        db.execute("GRANT USAGE ON SCHEMA agecam TO writer")
        db.execute("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA agecam TO writer")
    CentralStore(chain_db.replace("agecam@", "writer@")).close()
    fresh = postgres.create_database(f"{chain_db.rsplit('/', 1)[1]}_ro")
    for url in (chain_db, fresh):
        with psycopg.connect(postgres.url(), autocommit=True) as db:
            db.execute(f'ALTER DATABASE "{url.rsplit("/", 1)[1]}" SET default_transaction_read_only = on')
    CentralStore(chain_db).close()
    result = agecam("collect", "--broker", "mqtt://127.0.0.1:1", "--db", fresh)
    assert result.code == 6 and result.err.count("\n") == 1 and "read-only" in result.err, result.err


def test_no_password_of_a_chain_url_is_shown(agecam, write_config, tmp_path):
    config, port = write_config(), free_port()
    for url, code in (
        (f"postgresql://agecam@127.0.0.1:{port}/x?sslmode=disable&password=hunter2", 6),
        (f"postgresql://agecam:hun@ter2@127.0.0.1:{port}/x", 2),  # libpq's error named 'ter2@127.0.0.1' as host
        (f"postgresql://agecam:hun?ter2@127.0.0.1:{port}/x", 6),  # libpq takes '?' and '/' into a password: the
        (f"postgresql://agecam:hun/ter2@127.0.0.1:{port}/x", 6),  # first mask stopped there, and showed it all
        (f"host=127.0.0.1 port={port} user=agecam password=hunter2", 2),  # was 'event log not found: host=...'
    ):
        result = agecam("--config", config, "events", "--db", url)
        assert result.code == code and "ter2" not in result.err and result.err.count("\n") == 1, result.err
    result = agecam("--config", config, "report", "--db", f"postgresql://u:hunter2@127.0.0.1:{port}/x", "--out",
                    tmp_path / "r.html")  # fmt: skip
    assert result.code == 2 and "hunter2" not in result.err and "agecam events" in result.err, result.err
    result = agecam("collect", "--broker", "mqtt://127.0.0.1:1", "--db", "host=h user=u password=hunter2")
    assert result.code == 2 and "hunter2" not in result.err, result.err
