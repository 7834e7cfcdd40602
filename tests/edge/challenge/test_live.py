"""`agecam run` with the POS endpoint, as a real process on a paced video source: events are stored and
fed to the policy, a bad event does not stop it, SIGTERM ends it cleanly, and every acknowledged event
is still in the log after kill -9."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pos_scenario import scenario_config

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(port: int, event: dict | bytes) -> tuple[int, dict]:
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/events", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@contextlib.contextmanager
def live_run(tmp_path: Path, scenario: Path, model: Path):
    port = free_port()
    config = scenario_config(tmp_path, model, pos={"enabled": True, "port": port})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "edge.cli",
        "--config",
        str(config),
        "run",
        "--source",
        str(scenario / "till.mp4"),
    ]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            assert process.poll() is None and time.monotonic() < deadline, "agecam run did not start"
            time.sleep(0.2)
        yield process, port, tmp_path / "state" / "agecam.db"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def sale(till: str) -> list[dict]:
    common = {"till_id": till, "cashier_id": "dana", "transaction_id": f"{till}-1"}
    return [
        {"type": "transaction_start", **common},
        {"type": "item_scanned", "category": "spirits", **common},
        {"type": "transaction_end", **common},
    ]


def test_live_events_reach_the_policy_and_sigterm_stops_cleanly(tmp_path, scenario, tiny_model):
    with live_run(tmp_path, scenario, tiny_model) as (process, port, db):
        assert post(port, b"{oops")[0] == 400
        replies = [post(port, event) for event in sale("till-9")]
        assert [status for status, _ in replies] == [202, 202, 202]
        time.sleep(1.0)  # the main loop takes queued events at its next frame
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.stderr.read()
    with contextlib.closing(sqlite3.connect(db)) as connection:
        assert connection.execute("SELECT status, mode FROM runs").fetchall() == [("stopped", "live")], (
            "agecam run is a live run, even with a file standing in for the camera"
        )
        txn = connection.execute("SELECT status, restricted_items, cashier_id FROM transactions").fetchall()
        assert txn == [("completed", 1, "dana")]
        assert connection.execute("SELECT count(*) FROM pos_events").fetchone()[0] == 3
        assert connection.execute("SELECT http_status FROM pos_rejects").fetchall() == [(400,)]


def test_every_acknowledged_event_survives_kill_9(tmp_path, scenario, tiny_model):
    with live_run(tmp_path, scenario, tiny_model) as (process, port, db):
        acknowledged = [post(port, event)[1]["id"] for till in ("a", "b", "c") for event in sale(till)]
        process.kill()
        process.wait(timeout=30)
    with contextlib.closing(sqlite3.connect(db)) as connection:
        ids = [row[0] for row in connection.execute("SELECT id FROM pos_events ORDER BY id")]
    assert ids == acknowledged


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('{"type": "item_scanned", "till_id": "t"}', "needs 't'"),
        ('{"t": 1, "type": "void", "till_id": "t"}', "line 1: 'type' must be one of"),
        ("not json", "line 1: not valid JSON"),
    ],
)
def test_a_bad_replay_script_exits_11_before_any_run(agecam, tmp_path, scenario, tiny_model, line, words):
    script = tmp_path / "pos.jsonl"
    script.write_text(line + "\n")
    config = scenario_config(tmp_path, tiny_model)
    result = agecam("--config", config, "replay", scenario / "till.mp4", "--pos", script)
    assert result.code == 11 and "Traceback" not in result.err
    assert next(line for line in result.err.splitlines() if line.startswith("agecam: error:")).count(words) == 1
    assert not (tmp_path / "state").exists()


def test_simulate_and_score_refuse_bad_input_with_one_line(agecam, tmp_path, scenario):
    def one_line(result, code: int, words: str) -> None:
        lines = [line for line in result.err.splitlines() if line.startswith("agecam: error:")]
        assert result.code == code and len(lines) == 1 and words in lines[0], result.err
        assert "Traceback" not in result.err

    one_line(agecam("simulate", "--faces", tmp_path / "none", "--out", tmp_path / "o"), 11, "labels.csv")
    (tmp_path / "faces").mkdir()
    (tmp_path / "faces" / "labels.csv").write_text("file_name,real_age\na.jpg,old\n")
    one_line(agecam("simulate", "--faces", tmp_path / "faces", "--out", tmp_path / "o", "--split", ""), 11, "line 2")
    one_line(agecam("simulate", "--faces", tmp_path / "faces", "--out", tmp_path / "o", "--size", "big"), 2, "--size")
    one_line(agecam("score", tmp_path, "--db", tmp_path / "x.db"), 11, "truth.json")
    one_line(agecam("score", scenario, "--db", tmp_path / "x.db"), 6, "not found")
