"""agecam events and stats on the replayed scenario's event log (the report: test_report.py)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import warnings

import pytest

from edge.store.eventlog import EventLog


def test_events_lists_customers_alerts_and_flags(agecam, default_run):
    _, config, db = default_run
    result = agecam("--config", config, "events", "--db", db, "--format", "json")
    assert result.code == 0
    rows = result.json()
    kinds = {row["kind"] for row in rows}
    assert kinds == {"customer", "alert", "flag"}
    assert [row["at"] for row in rows] == sorted(row["at"] for row in rows)
    assert sum(row["kind"] == "customer" for row in rows) == 6


def test_events_filters_by_kind_type_cashier_and_time(agecam, default_run):
    _, config, db = default_run
    flags = agecam("--config", config, "events", "--db", db, "--kind", "flag", "--format", "json").json()
    assert flags and {row["type"] for row in flags} == {"sold_without_id_check"}
    by_type = agecam("--config", config, "events", "--db", db, "--type", "sold_without_id_check", "--format", "json")
    assert by_type.json() == flags
    cashiers = {row["cashier_id"] for row in flags}
    for cashier in cashiers:
        only = agecam("--config", config, "events", "--db", db, "--cashier", cashier, "--format", "json").json()
        assert only and {row["cashier_id"] for row in only} == {cashier}
    late = agecam("--config", config, "events", "--db", db, "--since", "2100-01-01", "--format", "json")
    assert late.code == 0 and late.json() == []
    first = flags[0]["at"]
    after = agecam("--config", config, "events", "--db", db, "--kind", "flag", "--since", first, "--format", "json")
    assert after.json() == flags
    before = agecam("--config", config, "events", "--db", db, "--kind", "flag", "--until", first, "--format", "json")
    assert before.json() == []


def test_events_as_csv_and_table(agecam, default_run):
    _, config, db = default_run
    text = agecam("--config", config, "events", "--db", db, "--format", "csv").out
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and rows[0].keys() >= {"kind", "at", "type", "severity", "till_id", "cashier_id", "age", "age_low"}
    table = agecam("--config", config, "events", "--db", db, "--kind", "flag").out.splitlines()
    assert table[0].split()[:4] == ["kind", "at", "type", "severity"] and len(table) == 1 + sum(
        row["kind"] == "flag" for row in rows
    )
    column = table[0].index("p_under")  # two digits, as policy.risk (0.25) has
    flags = [row for row in rows if row["kind"] == "flag"]
    assert [line[column:].split()[0] for line in table[1:]] == [f"{float(row['p_under']):.2f}" for row in flags]


def test_stats_by_hour_and_day_count_every_customer(agecam, default_run):
    _, config, db = default_run
    for by in ("hour", "day"):
        rows = agecam("--config", config, "stats", "--db", db, "--by", by, "--format", "json").json()
        assert sum(row["customers"] for row in rows) == 6
        assert all(len(row["period"]) == (17 if by == "hour" else 10) for row in rows)
    table = agecam("--config", config, "stats", "--db", db).out.splitlines()
    assert table[0].split()[0] == "period" and table[0].split()[-1] == "total"


@pytest.mark.parametrize("command", ["events", "stats"])
def test_missing_or_old_event_log_is_exit_6(agecam, write_config, tmp_path, command):
    missing = agecam("--config", write_config(), command, "--db", tmp_path / "none.db")
    assert missing.code == 6 and "not found" in missing.err
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as connection:
        connection.execute("PRAGMA user_version = 1")
    result = agecam("--config", write_config(), command, "--db", old)
    assert result.code == 6 and "schema 1" in result.err


def test_bad_time_filter_is_exit_2(agecam, write_config, tmp_path):
    EventLog(tmp_path / "new.db").close()
    result = agecam("--config", write_config(), "events", "--db", tmp_path / "new.db", "--since", "yesterday")
    assert result.code == 2 and "--since" in result.err


def test_migrations_bring_a_version_1_log_up_to_date(tmp_path):
    from edge.store.schema import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as connection:
        for statement in MIGRATIONS[0]:
            connection.execute(statement)
        connection.execute("PRAGMA user_version = 1")
    EventLog(path).close()
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = {row[1] for row in connection.execute("PRAGMA table_info(runs)")}
    assert tables >= {"runs", "customers", "pos_events", "pos_rejects", "transactions", "alerts"}
    assert "pid" in columns


def test_compliance_per_cashier_follows_the_scenario(default_run, scenario):
    """A check is required for minors buying alcohol (they read under the threshold); done if recorded."""
    from edge.store.queries import compliance, open_log

    _, _, db = default_run
    expected: dict[str, dict] = {}
    for customer in json.loads((scenario / "truth.json").read_text())["customers"]:
        if customer["alcohol"] and customer["real_age"] < 18:
            line = expected.setdefault(customer["cashier_id"], {"required": 0, "checked": 0})
            line["required"] += 1
            line["checked"] += customer["id_check"] is not None
    connection = open_log(db)
    try:
        rows = compliance(connection, None, None)
        found = {row["cashier"]: {"required": row["required"], "checked": row["checked"]} for row in rows}
    finally:
        connection.close()
    assert found == expected and expected


def test_a_report_of_an_empty_period_says_so_without_warnings(agecam, default_run, tmp_path):
    _, config, db = default_run
    out = tmp_path / "empty.html"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "No artists with labels" reached the user's terminal
        result = agecam(
            "--config", config, "report", "--db", db, "--out", out, "--since", "2100-01-01", "--until", "2100-01-02"
        )
    assert result.code == 0 and result.err == "", result.err
    page = out.read_text()
    assert "No customers were counted" in page and "No flags in this period." in page
