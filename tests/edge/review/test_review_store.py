"""The review tables: an event log of the previous schema upgrades in place, the audit tables refuse
changes, outcomes follow the flag into `agecam events` and `agecam report`, and a live run's heartbeat
reaches its row (till health)."""

from __future__ import annotations

import sqlite3

import pytest

from edge.config import load_config
from edge.store import flag_queries
from edge.store.eventlog import EventLog
from edge.store.queries import open_log
from edge.store.review_queries import Span
from edge.store.review_records import OutcomeChanged, ReviewStore, UnknownFlag, record_heartbeat
from edge.store.schema import MIGRATIONS, SCHEMA_VERSION

from review_app import one_flag

REVIEW_VERSION = next(i for i, steps in enumerate(MIGRATIONS) if any("flag_reviews (" in s for s in steps)) + 1
P_UNDER_VERSION = next(i for i, steps in enumerate(MIGRATIONS) if any("p_under" in s for s in steps)) + 1
EVERYTHING = Span("2000-01-01", "2100-01-01")


def _previous_version_log(path, version: int = REVIEW_VERSION - 1) -> None:
    """A log as the agecam before the review app (or another `version`) left it: one run, one sale and its flag."""
    with sqlite3.connect(path) as db:
        for steps in MIGRATIONS[:version]:
            for statement in steps:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {version}")
        db.execute(
            "INSERT INTO runs (id, started_at, ended_at, status, mode, source, model_path, model_sha256, provider,"
            " agecam_version, config_json, frames) VALUES (1, '2026-11-22T09:00:00.000Z', '2026-11-22T10:00:00.000Z',"
            " 'completed', 'live', '0', 'm.onnx', 'x', 'CPU', '0.1.0', '{}', 36000)"
        )
        db.execute(
            "INSERT INTO transactions (id, run_id, number, pos_transaction_id, till_id, cashier_id, started_at,"
            " ended_at, status, restricted_items, check_required) VALUES (1, 1, 1, 'T1', 'till-1', 'alice',"
            " '2026-11-22T09:30:00.000Z', '2026-11-22T09:31:00.000Z', 'completed', 1, 1)"
        )
        db.execute(
            "INSERT INTO alerts (id, run_id, transaction_id, kind, type, severity, at, t, till_id, cashier_id)"
            " VALUES (7, 1, 1, 'flag', 'sold_without_id_check', 'high', '2026-11-22T09:31:00.000Z', 1860,"
            " 'till-1', 'alice')"
        )


def test_a_log_of_the_previous_version_upgrades_in_place(tmp_path):
    path = tmp_path / "old.db"
    _previous_version_log(path)
    log = EventLog(path)  # what `agecam serve`, run and replay do on opening
    try:
        assert log.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert ReviewStore(log).set_outcome(7, "rita", "false_alarm", "till footage", expected="open") == "open"
    finally:
        log.close()
    db = open_log(path)
    try:
        [row] = flag_queries.flags(db, flag_queries.FlagFilter(EVERYTHING))
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        db.close()
    assert (row["id"], row["cashier_id"], row["outcome"]) == (7, "alice", "false_alarm")
    assert (row["p_under"], row["threshold"]) == (None, None), "no chance, no recorded threshold: shown as —"
    assert {"transactions_restricted", "hourly_stats_by_hour", "flag_reviews_by_alert"} <= indexes


def test_read_only_commands_show_an_old_logs_flags_as_open(agecam, write_config, tmp_path):
    path = tmp_path / "old.db"
    _previous_version_log(path)
    rows = agecam("--config", write_config(), "events", "--db", path, "--kind", "flag", "--format", "json").json()
    assert [row["outcome"] for row in rows] == ["open"]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == REVIEW_VERSION - 1, "a read changes nothing"


def test_read_only_commands_read_a_log_from_before_p_under(agecam, write_config, tmp_path):
    path = tmp_path / "v6.db"
    _previous_version_log(path, P_UNDER_VERSION - 1)
    rows = agecam("--config", write_config(), "events", "--db", path, "--format", "json")
    assert rows.code == 0, rows.err
    assert [(row["kind"], row["outcome"], row["p_under"]) for row in rows.json()] == [("flag", "open", None)]
    out = tmp_path / "report.html"
    report = agecam("--config", write_config(), "report", "--db", path, "--out", out)
    assert report.code == 0, report.err
    page = out.read_text()
    assert "Sold without ID check" in page and "Chance under the Challenge age" in page and "likely under" not in page
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == P_UNDER_VERSION - 1, "a read changes nothing"


def test_the_audit_tables_are_append_only(review_db):
    flag_id = one_flag(review_db)
    log = EventLog(review_db)
    try:
        store = ReviewStore(log)
        store.set_outcome(flag_id, "rita", "false_alarm", "")
        store.log_evidence_view(flag_id, "rita")
        for table in ("flag_reviews", "evidence_views"):
            for statement in (f"UPDATE {table} SET alert_id = 0", f"DELETE FROM {table}"):
                with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                    log.db.execute(statement)
    finally:
        log.close()


def test_outcomes_need_a_real_flag_and_a_known_outcome(review_db):
    with sqlite3.connect(review_db) as db:
        alert = db.execute("SELECT min(id) FROM alerts WHERE kind = 'alert'").fetchone()[0]
    log = EventLog(review_db)
    try:
        store = ReviewStore(log)
        for missing in (alert, 10**6):
            with pytest.raises(UnknownFlag):
                store.set_outcome(missing, "rita", "false_alarm", "")
        with pytest.raises(ValueError, match="unknown outcome"):
            store.set_outcome(one_flag(review_db), "rita", "open", "")
        store.set_outcome(one_flag(review_db), "rita", "not_a_sale", "")
        with pytest.raises(OutcomeChanged):
            store.set_outcome(one_flag(review_db), "sam", "false_alarm", "", expected="open")
    finally:
        log.close()


def test_outcomes_show_in_events_and_the_report(agecam, default_run, review_db, tmp_path):
    _, config, _ = default_run
    flag_id = one_flag(review_db)
    log = EventLog(review_db)
    try:
        ReviewStore(log).set_outcome(flag_id, "rita", "confirmed_underage", "")
    finally:
        log.close()
    rows = agecam("--config", config, "events", "--db", review_db, "--kind", "flag", "--format", "json").json()
    assert sorted(row["outcome"] for row in rows) == sorted(["confirmed_underage"] + ["open"] * (len(rows) - 1))
    out = tmp_path / "report.html"
    assert agecam("--config", config, "report", "--db", review_db, "--out", out).code == 0
    page = out.read_text()
    assert "<td>Confirmed underage</td><td>1</td>" in page and "Open (not reviewed)" in page


def test_a_heartbeat_updates_the_runs_row(review_db):
    log = EventLog(review_db)
    try:
        record_heartbeat(log, 1, {"frames": 42, "dropped": 3, "fps": 9.5, "source": "reconnecting"}, at=1.8e9)
        row = log.db.execute("SELECT frames, dropped_frames, fps, source_state, last_seen FROM runs").fetchone()
    finally:
        log.close()
    assert row == (42, 3, 9.5, "reconnecting", "2027-01-15T08:00:00.000Z")


def test_a_running_replay_saves_its_heartbeat(monkeypatch, scenario, tiny_model, tmp_path):
    """The runner's status goes into the run's row while it runs (here every 0.2 s instead of 10 s)."""
    from edge.pipeline import runner
    from edge.vision.source import parse_source

    monkeypatch.setattr(runner, "STATUS_EVERY_S", 0.2)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(f"age_model:\n  path: {tiny_model}\nstate:\n  dir: {tmp_path / 'state'}\n")
    seen = []
    result = runner.run_source(
        load_config(config_path),
        parse_source(str(scenario / "till.mp4")),
        fast=True,
        db_path=tmp_path / "run.db",
        on_status=seen.append,
    )
    with sqlite3.connect(tmp_path / "run.db") as db:
        row = db.execute("SELECT last_seen, source_state, fps, frames FROM runs").fetchone()
    assert seen and row[0] is not None and row[1] == seen[-1]["source"] and row[2] == seen[-1]["fps"]
    assert result.frames >= row[3] > 0
