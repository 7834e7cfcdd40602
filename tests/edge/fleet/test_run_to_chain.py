"""`agecam run` on a till of a chain, as a real process: its records reach PostgreSQL through mosquitto and
`agecam collect`, its metrics are served on loopback, `agecam stats` and `agecam events` read the chain
as they read a till; a wrong broker password is one line and exit 2 before any run starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from fleet_servers import free_port
from fleet_till import till_rows, wait_until_shipped
from prometheus_client.parser import text_string_to_metric_families

from fleet_clients import USERS
from pos_scenario import scenario_config

ROOT = Path(__file__).resolve().parents[3]


def fleet_settings(broker, password: Path, **extra) -> dict:
    return {
        "enabled": True,
        "broker": broker.url,
        "store_id": "north-7",
        "till_id": "till-2",
        "username": "till",
        "password_file": str(password),
        **extra,
    }


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


def post(port: int, event: dict) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/events", data=json.dumps(event).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_a_live_run_reaches_the_chain_with_metrics(
    tmp_path, scenario, tiny_model, broker, chain_db, till_password, collector_for, agecam
):
    broker.start()
    collector_for(broker, chain_db)
    pos_port, metrics_port = free_port(), free_port()
    config = scenario_config(
        tmp_path,
        tiny_model,
        pos={"enabled": True, "port": pos_port},
        fleet=fleet_settings(broker, till_password),
        metrics={"port": metrics_port},
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "edge.cli", "--config", str(config), "run", "--source", str(scenario / "till.mp4")]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while "agecam_frames" not in _try_scrape(metrics_port) or not _try_scrape(metrics_port)["agecam_frames"]:
            assert process.poll() is None and time.monotonic() < deadline, "agecam run did not start"
            time.sleep(0.2)
        common = {"till_id": "pos-2", "cashier_id": "dana", "transaction_id": "T-1"}
        for kind in ("transaction_start", "item_scanned", "transaction_end"):
            extra = {"category": "spirits"} if kind == "item_scanned" else {}
            assert post(pos_port, {"type": kind, **common, **extra}) == 202
        time.sleep(3)
        metrics = scrape(metrics_port)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
    assert metrics["agecam_frames_total"] > 0 and metrics["agecam_pos_events_total{result=accepted}"] >= 0
    assert metrics["agecam_source_state{state=replaying}"] in (0.0, 1.0)
    assert "agecam_outbox_depth" in metrics and metrics["agecam_inference_seconds_count"] > 0
    db = tmp_path / "state" / "agecam.db"
    expected = till_rows(db)
    assert wait_until_shipped(chain_db, db, "north-7", "till-2") == expected
    assert expected["customers"] and expected["transactions"] == {(1, 1, "completed")}
    assert expected["runs"] == {(1, "stopped")}
    for command in (["stats", "--format", "json"], ["events", "--format", "json"]):
        on_till = agecam("--config", config, *command, "--db", db)
        on_chain = agecam("--config", config, *command, "--db", chain_db)
        assert on_till.code == on_chain.code == 0, on_chain.err
        assert _comparable(on_chain.json()) == _comparable(on_till.json())
    chances = [row["p_under"] for row in on_chain.json() if row["age"] is not None]  # a flag without a face: none
    assert chances and None not in chances, "each estimate reaches the chain with its P(under the threshold)"
    by_store = agecam("--config", config, "stats", "--format", "json", "--db", chain_db, "--store", "elsewhere")
    assert by_store.json() == []
    nothing = agecam("--config", config, "events", "--db", chain_db, "--kind", "customer", "--cashier", "dana")
    assert nothing.code == 0 and "customer" not in nothing.out
    refused = agecam("--config", config, "stats", "--db", db, "--store", "north-7")
    assert refused.code == 2 and "--store reads the chain's database" in refused.err


def _comparable(rows: list[dict]) -> list[tuple]:
    """The columns a till and the chain share (the chain names the fleet's till, a till the POS's)."""
    return sorted(
        (row.get("kind"), row.get("type"), row.get("age"), row.get("p_under"), row.get("customers")) for row in rows
    )


def _try_scrape(port: int) -> dict[str, float]:
    try:
        values = scrape(port)
    except OSError:
        return {}
    return {"agecam_frames": values.get("agecam_frames_total", 0)}


def test_a_wrong_broker_password_is_one_line_and_exit_2(tmp_path, broker, chain_db, tiny_model, agecam, assets):
    broker.start()
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    config = scenario_config(tmp_path, tiny_model, fleet=fleet_settings(broker, wrong))
    result = agecam(
        "--config", config, "run", "--source", assets / "videos" / "face-demographics-walking-and-pause.gif"
    )
    lines = [line for line in result.err.splitlines() if line.startswith("agecam: error:")]
    assert result.code == 2 and len(lines) == 1 and "check the user name and the password" in lines[0], result.err
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1, result.err
    assert not (tmp_path / "state").exists(), "no run was started"
    args = ["collect", "--broker", broker.url, "--db", chain_db, "--username", "collector", "--password-file", wrong]
    result = agecam(*args)
    lines = [line for line in result.err.splitlines() if line.startswith("agecam: error:")]
    assert result.code == 2 and len(lines) == 1 and "collect: broker" in lines[0], result.err


def test_collect_refuses_what_cannot_work(agecam, tmp_path, postgres):
    password = tmp_path / "p"
    password.write_text(USERS["collector"])
    cases = [
        (["--broker", "http://x", "--db", postgres.url()], 2, "--broker"),
        (["--broker", "mqtt://127.0.0.1:1", "--db", str(tmp_path / "x.db")], 2, "postgresql://"),
        (
            ["--broker", "mqtt://127.0.0.1:1", "--db", postgres.url(), "--username", "u", "--password-file", "/none"],
            2,
            "/none",
        ),
        (
            ["--broker", "mqtt://127.0.0.1:1", "--db", f"postgresql://agecam@127.0.0.1:{free_port()}/x"],
            6,
            "chain database",
        ),
    ]
    for args, code, words in cases:
        result = agecam("collect", *args)
        lines = [line for line in result.err.splitlines() if line.startswith("agecam: error:")]
        assert result.code == code and len(lines) == 1 and words in lines[0], result.err
