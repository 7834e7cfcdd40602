"""End to end on a simulated till: simulate -> replay --pos -> flags in the event log -> score, and the
privacy rules: no image by default, only flagged customers' crops with evidence enabled, purge."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import time
from pathlib import Path

from edge import cli

from pos_scenario import replay, scenario_config

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm"}


def run_cli(*args: object) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = cli.main([str(arg) for arg in args])
    return code, buffer.getvalue()


def rows(db: Path, sql: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return connection.execute(sql).fetchall()


def test_scenario_files_are_deterministic(scenario, tmp_path):
    truth = json.loads((scenario / "truth.json").read_text())
    assert len(truth["customers"]) == 6
    events = [json.loads(line) for line in (scenario / "pos.jsonl").read_text().splitlines()]
    assert [event["t"] for event in events] == sorted(event["t"] for event in events)
    assert {event["type"] for event in events} == {"transaction_start", "item_scanned", "id_checked", "transaction_end"}
    faces = Path(truth["settings"]["faces"])
    args = ["simulate", "--faces", faces, "--out", tmp_path, "--customers", "6", "--seed", "11", "--split", ""]
    assert run_cli(*args, "--fps", "10", "--size", "480x360")[0] == 0
    assert (tmp_path / "pos.jsonl").read_text() == (scenario / "pos.jsonl").read_text()
    assert json.loads((tmp_path / "truth.json").read_text()) == truth


def test_score_finds_every_minor_sold_without_check_and_no_adult(default_run, scenario):
    _, _, db = default_run
    code, out = run_cli("score", scenario, "--db", db, "--json")
    assert code == 0
    score = json.loads(out)
    assert score["minors_sold_without_check"] >= 1 and score["minor_flag_recall"] == 1.0
    assert score["adults_sold_without_check"] >= 1 and score["adult_false_flag_share"] == 0.0
    assert score["association_accuracy"] == 1.0
    assert score["minor_alert_recall"] == 1.0
    assert score["alert_latency_s"]["max"] <= 0.5


def test_flags_carry_estimate_interval_samples_transaction_and_cashier(default_run, scenario):
    _, _, db = default_run
    truth = {c["transaction_id"]: c for c in json.loads((scenario / "truth.json").read_text())["customers"]}
    flags = rows(
        db,
        "SELECT t.pos_transaction_id, a.type, a.severity, a.cashier_id, a.age, a.age_low, a.age_high, a.samples,"
        " a.association FROM alerts a JOIN transactions t ON t.id = a.transaction_id WHERE a.kind = 'flag'",
    )
    assert flags
    for txn, kind, severity, cashier, age, low, high, samples, association in flags:
        customer = truth[txn]
        assert customer["real_age"] < 18 and customer["sold_without_check"], txn
        assert (kind, severity) == ("sold_without_id_check", "high")
        assert cashier == customer["cashier_id"] and low <= age <= high and age < 38 and samples >= 1
        assert json.loads(association)["share"] > 0.5
    assert rows(db, "SELECT count(*) FROM pos_events")[0][0] == len((scenario / "pos.jsonl").read_text().splitlines())


def test_a_default_run_leaves_no_image_file_anywhere(default_run, scenario, tmp_path_factory):
    folder, _, db = default_run
    written = [path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES]
    assert written == [], "a default run must not store any image"
    base = tmp_path_factory.getbasetemp()
    started = min(p.stat().st_mtime for p in scenario.iterdir())  # the scenario was made before the run
    elsewhere = [
        path
        for root in (base, Path.cwd())
        for path in root.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES
        and not {"faces", "evidence"} & set(path.parts)  # the scenario's inputs; the evidence tests' files
        and path.lstat().st_mtime >= started  # lstat: the evidence tests leave dangling symlinks too
    ]
    assert elsewhere == [], "nor anywhere else: the test folders or the working directory"
    assert not (folder / "state" / "evidence").exists()
    assert rows(db, "SELECT count(*) FROM alerts WHERE evidence IS NOT NULL")[0][0] == 0
    scenario_images = {p for p in scenario.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES}
    assert scenario_images == set(), "the scenario itself holds a video, no stills"


def test_evidence_keeps_only_flagged_customers_and_purge_deletes_them(tmp_path, scenario, tiny_model):
    config = scenario_config(tmp_path, tiny_model, evidence={"enabled": True, "retention_days": 1})
    db = tmp_path / "state" / "agecam.db"
    assert replay(config, scenario, db) == 0
    kept = rows(db, "SELECT evidence FROM alerts WHERE kind = 'flag'")
    crops = sorted((tmp_path / "state" / "evidence").glob("*"))
    assert kept and sorted(Path(path) for (path,) in kept) == crops
    assert rows(db, "SELECT count(*) FROM alerts WHERE kind = 'alert' AND evidence IS NOT NULL")[0][0] == 0
    images = [p for p in tmp_path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    assert sorted(images) == crops, "no image other than the flagged customers' crops"

    code, out = run_cli("--config", config, "purge")
    assert code == 0 and "removed 0" in out, "crops younger than the retention stay"
    old = time.time() - 2 * 86400
    os.utime(crops[0], (old, old))
    code, out = run_cli("--config", config, "purge")
    assert code == 0 and "removed 1" in out
    assert not crops[0].exists() and all(path.exists() for path in crops[1:])
    assert rows(db, "SELECT count(*) FROM alerts WHERE evidence IS NOT NULL")[0][0] == len(crops) - 1


def test_score_text_is_lines_for_people(default_run, scenario):
    _, _, db = default_run
    code, out = run_cli("score", scenario, "--db", db)
    assert code == 0 and "{" not in out and "None" not in out
    lines = dict(line.split("  ", 1) for line in out.splitlines())
    assert lines["minors sold without check"].strip().endswith("flagged 100%")
    assert "latency after the scan: median" in lines["ID-check alerts"]


def test_a_truth_file_that_is_not_a_scenarios_is_one_line_and_exit_11(default_run, scenario, tmp_path):
    _, _, db = default_run
    for text in ("[]", "null", '{"customers": [1]}', '{"customers": [{"transaction_id": "T0001"}]}'):
        (tmp_path / "truth.json").write_text(text)
        code, _ = run_cli("score", tmp_path, "--db", db)
        assert code == 11, text


def test_the_replay_of_another_scenario_is_refused(default_run, scenario, tmp_path, capsys):
    # Every scenario names its transactions T0001...: another scenario's run must not be scored as this one's.
    _, _, db = default_run
    assert run_cli("score", scenario, "--db", db)[0] == 0  # its own replay is scored
    faces = Path(json.loads((scenario / "truth.json").read_text())["settings"]["faces"])
    for seed, customers in ((12, "6"), (11, "5")):  # same length, other seed; or the same seed, fewer customers
        other = tmp_path / f"other-{seed}-{customers}"
        args = ["simulate", "--faces", faces, "--out", other, "--customers", customers, "--seed", seed, "--split", ""]
        assert run_cli(*args, "--fps", "5", "--size", "320x240")[0] == 0
        capsys.readouterr()
        assert run_cli("score", other, "--db", db) == (11, ""), f"{other} was scored with {scenario}'s run"
        assert f"--pos {other / 'pos.jsonl'}" in capsys.readouterr().err
