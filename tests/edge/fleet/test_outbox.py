"""The till's side without a broker: records enter the outbox with the record, only when the fleet is on;
the outbox is bounded with a warning while the broker is away; the fleet and metrics settings refuse what
cannot work; the metrics textfile is node_exporter's format."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path

import pytest
from fleet_servers import free_port
from fleet_till import SimulatedTill, write_config
from prometheus_client.parser import text_string_to_metric_families

from edge.config import load_config, parse_config
from edge.errors import ConfigError
from edge.fleet.metrics import TillMetrics
from edge.fleet.publisher import Publisher
from edge.store.eventlog import EventLog


def test_each_record_the_chain_needs_is_queued_with_it(tmp_path):
    till = SimulatedTill(tmp_path / "till.db")
    for n in range(3):
        till.customer(sale=n == 0)
    till.finish()
    db = sqlite3.connect(tmp_path / "till.db")
    kinds = [row[0] for row in db.execute("SELECT kind FROM outbox ORDER BY id")]
    # run start; per customer: the final record, then its hour; the sale: 3 transaction states, alert, flag; run end
    assert kinds[0] == "run" and kinds[-1] == "run"
    assert kinds.count("customer") == 3 and kinds.count("hourly") == 3
    assert kinds.count("transaction") == 3 and kinds.count("alert") == 2
    bodies = [row[0] for row in db.execute("SELECT body FROM outbox WHERE kind = 'run'")]
    assert '"status":"running"' in bodies[0] and '"status":"stopped"' in bodies[1]
    assert all("source" not in body and "config" not in body for body in bodies), "no camera URL leaves the till"
    estimates = [
        json.loads(row[0]) for row in db.execute("SELECT body FROM outbox WHERE kind != 'run' AND kind != 'hourly'")
    ]
    assert {body["p_under"] for body in estimates} == {0.93, 0.04}, "each estimate goes with its probability"


def test_without_the_fleet_nothing_is_queued(tmp_path):
    log = EventLog(tmp_path / "plain.db")
    log.start_run(
        mode="live",
        source="0",
        model_path="m",
        model_sha256="0",
        provider="p",
        version="v",
        config_json="{}",
        started=0,
    )
    log.close()
    assert sqlite3.connect(tmp_path / "plain.db").execute("SELECT count(*) FROM outbox").fetchone() == (0,)


def test_the_outbox_is_bounded_with_a_warning_while_the_broker_is_away(tmp_path, caplog):
    password = tmp_path / "password"
    password.write_text("x")
    config = write_config(
        tmp_path / "c.yaml", f"mqtt://127.0.0.1:{free_port()}", "s", "t", password, max_outbox_rows=100
    )
    publisher = Publisher(load_config(config))
    publisher.connect(timeout_s=2)  # nothing listens there
    till = SimulatedTill(tmp_path / "till.db")
    publisher.start(tmp_path / "till.db")
    for _ in range(80):
        till.customer(sale=False)
    with caplog.at_level(logging.WARNING):
        deadline = time.monotonic() + 10
        while publisher.stats.dropped == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.2)
    publisher.stop(flush_s=0)
    assert publisher.stats.dropped == 61 and publisher.stats.depth == 100  # 1 run + 80 x (customer, hour)
    assert "dropped the 61 oldest unshipped records" in caplog.text
    ids = [row[0] for row in sqlite3.connect(tmp_path / "till.db").execute("SELECT id FROM outbox")]
    assert ids == list(range(62, 162)), "the newest are kept"


@pytest.mark.parametrize(
    ("fleet", "words"),
    [
        ({"enabled": True, "broker": "mqtt://h"}, "set store_id, till_id"),
        ({"password": "hunter2"}, "keep the broker password out of the config"),
        ({"broker": "tcp://h:1883"}, "mqtt:// or mqtts://"),
        ({"username": "u"}, "password_file or password_env"),
        ({"store_id": "a/b"}, "fleet.store_id"),
        (
            {"enabled": True, "broker": "mqtt://h", "store_id": "s", "till_id": "t", "topic_prefix": "x/"},
            "must end with 's/t/'",
        ),
    ],
)
def test_fleet_settings_that_cannot_work_are_refused(fleet, words):
    with pytest.raises(ConfigError, match=words):
        parse_config({"fleet": fleet}, "c.yaml", Path("."))


def test_a_missing_password_file_or_variable_is_a_config_error(tmp_path, monkeypatch):
    base = {"enabled": True, "broker": "mqtt://127.0.0.1", "store_id": "s", "till_id": "t", "username": "u"}
    with pytest.raises(ConfigError, match="cannot read the password file"):
        Publisher(parse_config({"fleet": {**base, "password_file": "nope"}}, "c.yaml", tmp_path))
    monkeypatch.delenv("TILL_PW", raising=False)
    with pytest.raises(ConfigError, match="TILL_PW"):
        Publisher(parse_config({"fleet": {**base, "password_env": "TILL_PW"}}, "c.yaml", tmp_path))


class _Frame:
    faces = (object(), object())
    inference_s = 0.012


def test_metrics_textfile_is_node_exporter_format(tmp_path):
    config = parse_config({"metrics": {"textfile": "agecam.prom", "textfile_every_s": 0.1}}, "c.yaml", tmp_path)
    metrics = TillMetrics(config)
    metrics.outbox = lambda: {"depth": 7, "oldest_s": 12.5, "shipped": 3, "dropped": 0}
    metrics.open()
    metrics.on_frame(_Frame())
    metrics.on_status({"fps": 9.5, "dropped": 4, "customers": 2, "source": "reconnecting"}, {"alerts": 1, "flags": 2})
    metrics.close()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families((tmp_path / "agecam.prom").read_text())
        for sample in family.samples
    }
    assert samples[("agecam_faces_total", ())] == 2 and samples[("agecam_fps", ())] == 9.5
    assert samples[("agecam_source_state", (("state", "reconnecting"),))] == 1
    assert samples[("agecam_source_state", (("state", "live"),))] == 0
    assert samples[("agecam_flags_total", ())] == 2 and samples[("agecam_outbox_depth", ())] == 7
    assert samples[("agecam_inference_seconds_bucket", (("le", "0.02"),))] == 1
    assert not list(tmp_path.glob("*.tmp*")), "written aside and renamed"
