"""Event log files agecam must refuse before changing anything (issue #14, item 11): files that are not
agecam's, damaged files and read-only files end with exit 6 and one line; a stale run is marked failed
even when its pid is alive again in another process."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.store.eventlog import CustomerRecord, EventLog
from edge.store.process import start_marker
from edge.store.schema import MIGRATIONS, SCHEMA_VERSION
from edge.vision.customer import AgeEstimate

from clips import clip


@pytest.fixture
def video(assets: Path) -> Path:
    return clip(assets, "face-demographics-walking")


def one_error_line(result, code: int, *words: str) -> str:
    assert result.code == code, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("agecam: error:")]
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    assert all(word in lines[0] for word in words), lines[0]
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def foreign_db(path: Path, user_version: int = 0) -> Path:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        db.execute("INSERT INTO notes (text) VALUES ('milk'), ('eggs')")
        db.execute(f"PRAGMA user_version = {user_version}")
        db.commit()
    return path


def start(log: EventLog, started: float = 0.0) -> int:
    return log.start_run(
        mode="replay", source="x", model_path="m", model_sha256="s", provider="CPU", version="0", config_json="{}",
        started=started,
    )  # fmt: skip


def test_replay_refuses_a_foreign_database_and_changes_nothing_in_it(agecam, write_config, tmp_path, video):
    other = foreign_db(tmp_path / "other.db")
    before = digest(other)
    result = agecam("--config", write_config(), "replay", video, "--fast", "--db", other)
    one_error_line(result, 6, "other.db", "not an agecam event log", "notes")
    assert digest(other) == before, "not one byte of the user's file may change"
    with contextlib.closing(sqlite3.connect(other)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete", "WAL must not be switched on"
        assert [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["notes"]


@pytest.mark.parametrize("command", ["replay", "events", "stats", "report"])
def test_a_foreign_file_with_a_user_version_is_refused_by_every_command(agecam, write_config, tmp_path, video, command):
    other = foreign_db(tmp_path / "other.db", user_version=3)
    before = digest(other)
    args = {
        "replay": ["replay", video, "--fast"],
        "events": ["events"],
        "stats": ["stats"],
        "report": ["report", "--out", tmp_path / "r.html"],
    }[command]
    result = agecam("--config", write_config(), *args, "--db", other)
    one_error_line(result, 6, "other.db", "not an agecam event log")
    assert digest(other) == before and not (tmp_path / "r.html").exists()


def test_an_empty_file_is_a_new_event_log(agecam, write_config, tmp_path, video):
    empty = tmp_path / "new.db"
    empty.touch()
    assert agecam("--config", write_config(), "replay", video, "--fast", "--db", empty).code == 0
    with contextlib.closing(sqlite3.connect(empty)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def logged_customers(path: Path, count: int) -> None:
    log = EventLog(path)
    run_id = start(log)
    estimate = AgeEstimate(30.0, 25.0, 35.0, 5)
    records = [CustomerRecord(n, 1.0 * n, 1.0 * n + 2, estimate, "25-34", True, True) for n in range(count)]
    log.save_customers(run_id, records)
    log.close()


def test_damage_in_the_middle_of_the_file_is_found_at_start(agecam, write_config, tmp_path, video):
    path = tmp_path / "agecam.db"
    logged_customers(path, 3000)
    with contextlib.closing(sqlite3.connect(path)) as db:
        pages, size = db.execute("PRAGMA page_count").fetchone()[0], db.execute("PRAGMA page_size").fetchone()[0]
    with path.open("r+b") as stream:  # scribble over a page in the middle, as a failing disk would
        stream.seek((pages // 2) * size)
        stream.write(b"\xa5" * size)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (1,), "the damage must not show at opening"
    before = digest(path)
    result = agecam("--config", write_config(), "replay", video, "--fast", "--db", path)
    one_error_line(result, 6, "agecam.db", "damaged", "quick_check")
    assert digest(path) == before


def test_a_read_only_event_log_is_exit_6(agecam, write_config, tmp_path, video):
    path = tmp_path / "agecam.db"
    logged_customers(path, 3)
    if os.geteuid() == 0:  # root writes through file modes: make the file immutable instead
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available here")
    else:
        path.chmod(0o444)
    try:
        result = agecam("--config", write_config(), "replay", video, "--fast", "--db", path)
        one_error_line(result, 6, "agecam.db", "read-only")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (1,)


def test_a_stale_run_whose_pid_now_belongs_to_another_process_is_marked_failed(tmp_path):
    path = tmp_path / "agecam.db"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        while start_marker(sleeper.pid) is None:
            time.sleep(0.01)
        log = EventLog(path)
        stale, live = start(log), start(log)
        # The stale run's process died; its pid was handed to the sleeper, which started later.
        log.db.execute("UPDATE runs SET pid = ?, pid_start = ? WHERE id = ?", (sleeper.pid, "x:1", stale))
        log.db.execute(
            "UPDATE runs SET pid = ?, pid_start = ? WHERE id = ?", (sleeper.pid, start_marker(sleeper.pid), live)
        )
        log.close()
        again = EventLog(path)
        start(again)
        statuses = dict(again.db.execute("SELECT id, status FROM runs").fetchall())
        again.close()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert (statuses[stale], statuses[live]) == ("failed", "running")


def test_a_run_in_an_older_log_whose_pid_is_this_process_is_marked_failed(tmp_path):
    """A till whose agecam always gets the same pid (a container): the old log's run must not look alive."""
    path = tmp_path / "agecam.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        for statements in MIGRATIONS[:3]:
            for statement in statements:
                db.execute(statement)
        db.execute(
            "INSERT INTO runs (started_at, status, mode, source, model_path, model_sha256, provider, agecam_version,"
            " config_json, pid) VALUES ('2026-01-01T00:00:00.000Z', 'running', 'live', '0', 'm', 's', 'CPU', '0',"
            " '{}', ?)",
            (os.getpid(),),
        )
        db.execute("PRAGMA user_version = 3")
        db.commit()
    log = EventLog(path)  # upgraded in place, one transaction per migration
    start(log)
    assert log.db.execute("SELECT status FROM runs ORDER BY id").fetchall() == [("failed",), ("running",)]
    assert "pid_start" in {row[1] for row in log.db.execute("PRAGMA table_info(runs)")}
    assert log.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    log.close()
