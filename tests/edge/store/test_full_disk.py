"""A full disk during a run (issue #14, item 5): the till keeps detecting, holds its writes in memory and
stores them once space returns, the POS endpoint answers 503 and /health says why, and a start on a full
disk is exit 6 with one line. SQLite's max_page_count refuses writes with SQLITE_FULL exactly as a full
disk does; the end-to-end test fills a real tmpfs (root only: skipped elsewhere)."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from edge.challenge.server import PosServer, monotonic_clock
from edge.config import PosConfig
from edge.store.eventlog import CustomerRecord, EventLog
from edge.store.pos_records import AlertRow, PosStore, TransactionRow
from edge.vision.customer import AgeEstimate

from live_agecam import agecam_command, environment, error_lines, free_port, health, live_agecam, post, sale
from mounts import fill_disk, tmpfs
from pos_scenario import scenario_config

ESTIMATE = AgeEstimate(16.0, 14.0, 18.0, 5)


def start(log: EventLog) -> int:
    return log.start_run(
        mode="live", source="0", model_path="m", model_sha256="s", provider="CPU", version="0", config_json="{}",
        started=time.time(),
    )  # fmt: skip


def fill_up(log: EventLog) -> None:
    """From now on the file cannot grow: SQLITE_FULL, 'database or disk is full'."""
    pages = log.db.execute("PRAGMA page_count").fetchone()[0]
    log.db.execute(f"PRAGMA max_page_count = {pages}")


def make_room(log: EventLog) -> None:
    log.db.execute("PRAGMA max_page_count = 1000000")


def customers(count: int, ended: bool, age: float = 16.0) -> list[CustomerRecord]:
    estimate = AgeEstimate(age, age - 2, age + 2, 5)
    return [CustomerRecord(n, 10.0 + n, 12.0 + n, estimate, "<18", True, ended) for n in range(count)]


def flag(number: int, run_id: int = 1) -> tuple[TransactionRow, AlertRow]:
    txn = TransactionRow(
        run_id, number, "till-1", 1.0, f"T{number}", "dana", 2.0, "completed", 1, None, True, 3, ESTIMATE, None
    )
    alert = AlertRow("flag", "sold_without_id_check", "high", 2.0, None, "till-1", "dana", 3, ESTIMATE, None)
    return txn, alert


def test_writes_refused_by_a_full_disk_are_held_and_stored_when_space_returns(tmp_path):
    log = EventLog(tmp_path / "agecam.db")
    run_id = start(log)
    store = PosStore(log, run_id, 0.0)
    fill_up(log)
    log.save_customers(run_id, customers(400, ended=False))  # no exception: the frame loop goes on
    log.save_customers(run_id, customers(400, ended=True, age=17.0))  # the same tracks' later state
    assert store.save([flag(1, run_id), flag(2, run_id)]) == [None, None]
    assert log.health.state == "degraded" and "disk is full" in log.health.describe()
    assert len(log.backlog) == 401, "one held write per customer, plus the flags' write"
    log.tick()  # too early for a retry, and still full anyway
    make_room(log)
    log._retry_at = 0.0  # the next retry is due (RETRY_S): skip the wait
    log.tick()
    assert log.health.state == "ok" and len(log.backlog) == 0
    rows = log.db.execute("SELECT count(*), min(age), max(age), min(ended) FROM customers").fetchone()
    assert rows == (400, 17.0, 17.0, 1), "the latest state of every customer, once"
    assert log.db.execute("SELECT sum(customers) FROM hourly_stats").fetchone()[0] == 400
    assert log.db.execute("SELECT count(*) FROM alerts WHERE kind = 'flag'").fetchone()[0] == 2
    log.close()
    assert log.unwritten() is None


def test_writes_still_held_at_the_end_are_reported_not_lost_silently(tmp_path):
    log = EventLog(tmp_path / "agecam.db")
    run_id = start(log)
    fill_up(log)
    log.save_customers(run_id, customers(400, ended=True))
    log.close()  # one last try stores what still fits, one customer at a time
    held = len(log.backlog)
    assert held > 0 and f"{held} write(s) held in memory could not be stored" in log.unwritten()
    with contextlib.closing(sqlite3.connect(log.path)) as db:
        assert db.execute("SELECT count(*) FROM customers").fetchone()[0] == 400 - held


@pytest.fixture
def server(tmp_path):
    main = EventLog(tmp_path / "agecam.db")
    run_id = start(main)
    pos = PosServer(PosConfig(port=0))
    pos.start(PosStore(main.sibling(durable=True), run_id, time.time()), monotonic_clock(time.time()))
    yield pos
    pos.stop()
    pos.store.log.close()
    main.close()


def test_the_endpoint_answers_503_on_a_full_disk_and_health_says_why(server):
    fill_up(server.store.log)
    statuses = [post(server.port, {"type": "transaction_start", "till_id": f"t{n}"})[0] for n in range(300)]
    assert 503 in statuses, "the disk never filled"
    after = statuses[statuses.index(503) :]
    assert set(after) == {503}, "nothing is acknowledged once the disk is full"
    state = health(server.port)
    assert state["status"] == "degraded" and "disk is full" in state["storage"]
    make_room(server.store.log)
    status, reply = post(server.port, {"type": "transaction_start", "till_id": "later"})
    assert status == 202 and health(server.port)["status"] == "ok"
    with contextlib.closing(sqlite3.connect(server.store.log.path)) as db:
        assert db.execute("SELECT id FROM pos_events WHERE till_id = 'later'").fetchone() == (reply["id"],)


def wall(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def wait_for_a_customer(db: Path) -> None:
    deadline = time.monotonic() + 40
    while True:
        with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(db)) as connection:
            if connection.execute("SELECT count(*) FROM customers").fetchone()[0]:
                return
        assert time.monotonic() < deadline, "no customer came"
        time.sleep(0.3)


def test_a_live_run_on_a_full_disk_keeps_detecting_refuses_events_and_recovers(tmp_path, scenario, tiny_model):
    port = free_port()
    config = scenario_config(tmp_path, tiny_model, pos={"enabled": True, "port": port})
    with tmpfs(tmp_path / "state", "16m") as state, live_agecam(config, scenario / "till.mp4", port) as process:
        acknowledged = [post(port, event)[1]["id"] for event in sale(1)]
        wait_for_a_customer(state / "agecam.db")
        filler, full_at = fill_disk(state), time.time()
        statuses = []
        for number in range(2, 40):
            replies = [post(port, event) for event in sale(number)]
            statuses += [status for status, _ in replies]
            acknowledged += [reply["id"] for status, reply in replies if status == 202]
            if 503 in statuses:
                break
        assert 503 in statuses and set(statuses) <= {202, 503}
        assert health(port)["status"] == "degraded"
        time.sleep(3)  # faces go on being tracked and estimated meanwhile: their writes are held in memory
        assert process.poll() is None, "the frame loop must not stop on a full disk"
        filler.unlink()
        freed_at = time.time()
        deadline = time.monotonic() + 20
        while (status := post(port, sale(99)[0]))[0] != 202 or health(port)["status"] != "ok":
            assert time.monotonic() < deadline, f"no recovery: {status}, {health(port)}"
            time.sleep(0.5)
        acknowledged.append(status[1]["id"])
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        log = process.stderr.read()
        assert "is writable again: stored the" in log and "Traceback" not in log, log
        with contextlib.closing(sqlite3.connect(state / "agecam.db")) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            stored = {row[0] for row in db.execute("SELECT id FROM pos_events")}
            spans = [(wall(a), wall(b)) for a, b in db.execute("SELECT first_seen, last_seen FROM customers")]
        assert set(acknowledged) <= stored, "every acknowledged event is in the log"
        assert any(first < freed_at and last > full_at for first, last in spans), "tracked through the full disk"
        fill_disk(state)
        again = subprocess.run(agecam_command(config, "run", "--source", str(scenario / "till.mp4")),
                               env=environment(), capture_output=True, text=True, timeout=120)  # fmt: skip
        lines = error_lines(again.stderr)
        assert again.returncode == 6 and len(lines) == 1 and "Traceback" not in again.stderr, again.stderr
        assert "full" in lines[0] and str(state) in lines[0]


def test_a_lock_held_by_another_program_does_not_stall_the_frame_loop(tmp_path, scenario, tiny_model):
    """A backup or the sqlite3 shell holding the write lock: the frame loop waited SQLite's 10 s on each write,
    retry and heartbeat, down to a frame every 10-20 s; now its writes are held and it keeps detecting."""
    port = free_port()
    config = scenario_config(tmp_path, tiny_model, pos={"enabled": True, "port": port})
    db = tmp_path / "state" / "agecam.db"
    with live_agecam(config, scenario / "till.mp4", port) as process:
        wait_for_a_customer(db)
        with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as other:
            other.execute("BEGIN EXCLUSIVE")
            locked_at = time.time()
            assert post(port, sale(1)[0])[0] == 503, "the POS connection waits its 10 s, then says retry"
            time.sleep(max(0.0, locked_at + 12 - time.time()))
            other.execute("ROLLBACK")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.stderr.read()
    with contextlib.closing(sqlite3.connect(db)) as connection:
        frames, dropped = connection.execute("SELECT frames, dropped_frames FROM runs").fetchone()
    assert dropped < frames / 2, f"the frame loop stalled on the lock: {frames} frames processed, {dropped} dropped"
