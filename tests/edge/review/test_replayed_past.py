"""The demo clip and POS script replayed at a past time (`replay --start`), as footage is replayed later:
the report without a period still covers it, a half-hour zone's days each count a customer once, and a
crop past evidence.retention_days is not shown even before a purge has run."""

from __future__ import annotations

import os
import re
import sqlite3
import time
import warnings
from pathlib import Path

import pytest

from edge import cli
from edge.config import load_config
from edge.review.auth import hash_password

from clips import clip
from review_app import PASSWORD, demo_config, log_in

ROOT = Path(__file__).resolve().parents[3]
START = "2026-06-30T18:10:00Z"  # 23:40 on 30 June in Asia/Kolkata (UTC+05:30): its last local hour


@pytest.fixture(scope="module")
def past_run(tmp_path_factory, assets) -> tuple[Path, Path]:
    """The demo (Challenge 40, its zone) replayed at START with evidence crops on: config and event log."""
    folder = tmp_path_factory.mktemp("past-run")
    accounts = {"rita": {"role": "reviewer", "password_hash": hash_password(PASSWORD)}}
    config = demo_config(folder, evidence={"enabled": True}, review={"timezone": "Asia/Kolkata", "accounts": accounts})
    db = folder / "state" / "agecam.db"
    video, pos = clip(assets, "face-demographics-walking-and-pause"), ROOT / "examples" / "demo-pos.jsonl"
    args = ["--config", config, "--log-level", "WARNING", "replay", video, "--fast", "--pos", pos, "--db", db]
    assert cli.main([str(arg) for arg in [*args, "--start", START]]) == 0
    return config, db


@pytest.fixture
def reviewer(past_run):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from edge.review.app import create_app

    config, db = past_run
    with TestClient(create_app(load_config(config), db), base_url="http://127.0.0.1") as client:
        log_in(client, "rita")
        yield client


def _cards(page: str) -> dict[str, int]:
    """Each card's number by its words, the nouns in the plural whatever the number ('1 customer counted')."""
    found = re.findall(r'<span class="n">(\d+)</span> ([a-zA-Z -]+)', page)
    return {re.sub(r"^(customer|flag|alert|restricted sale)\b", r"\1s", label.strip()): int(n) for n, label in found}


def test_a_report_without_a_period_covers_records_replayed_before_the_run(agecam, past_run, tmp_path):
    config, db = past_run
    with sqlite3.connect(db) as connection:
        flags = connection.execute("SELECT count(*) FROM alerts WHERE kind = 'flag'").fetchone()[0]
    assert flags >= 1
    out = tmp_path / "report.html"
    assert agecam("--config", config, "report", "--db", db, "--out", out).code == 0
    page = out.read_text()
    assert f"<h2>Flags ({flags})</h2>" in page and "Sold without ID check" in page
    assert "Period <strong>2026-06-30 23:40" in page
    assert _cards(page)["customers counted"] >= 1 and "No customers were counted" not in page


def test_a_half_hour_zone_counts_each_customer_on_one_day(reviewer, past_run):
    with sqlite3.connect(past_run[1]) as connection:
        customers = connection.execute("SELECT sum(customers) FROM hourly_stats").fetchone()[0]
    days = {day: _cards(reviewer.get(f"/?from={day}&to={day}").text) for day in ("2026-06-30", "2026-07-01")}
    both = _cards(reviewer.get("/?from=2026-06-30&to=2026-07-01").text)
    assert days["2026-06-30"]["customers counted"] == customers == both["customers counted"]
    assert days["2026-07-01"]["customers counted"] == 0, "30 June's last hour is not 1 July's too"
    page = reviewer.get("/?from=2026-07-01&to=2026-07-01").text
    assert "No customers were counted in this period." in page


def test_a_crop_past_retention_is_not_shown_before_a_purge(reviewer, past_run):
    config, db = past_run
    with sqlite3.connect(db) as connection:
        flag_id, crop = connection.execute("SELECT id, evidence FROM alerts WHERE kind = 'flag'").fetchone()
    assert crop and Path(crop).is_file()
    assert reviewer.get(f"/flags/{flag_id}/evidence").status_code == 200
    old = time.time() - (load_config(config).evidence.retention_days + 1) * 86400
    os.utime(crop, (old, old))  # the till is off: no purge has run since the crop aged out
    assert Path(crop).is_file()
    assert reviewer.get(f"/flags/{flag_id}/evidence").status_code == 404
    assert "deleted after the retention period" in reviewer.get(f"/flags/{flag_id}").text
