"""`agecam simulate` and `agecam score` on hostile input: a hand-edited truth.json, a damaged event log, odd
arguments. Each is one line with the documented exit code, never a traceback."""

from __future__ import annotations

import contextlib
import json
import resource
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pos_scenario import make_faces


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agecam: error: "), stderr
    return lines[0]


def edited_truth(scenario: Path, folder: Path, change: dict, index: int = 0) -> Path:
    truth = json.loads((scenario / "truth.json").read_text())
    truth["customers"][index].update(change)
    folder.mkdir()
    (folder / "truth.json").write_text(json.dumps(truth))
    return folder


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"real_age": "15"}, "real_age"),
        ({"real_age": None}, "real_age"),
        ({"real_age": 250}, "real_age"),  # outside every age band: StopIteration
        ({"real_age": -1}, "real_age"),
        ({"real_age": float("nan")}, "real_age"),  # json writes NaN, and reads it back
        ({"leave": "4.5"}, "leave"),
        ({"enter": None}, "enter"),
        ({"transaction_id": ["T0001"]}, "transaction_id"),  # unhashable
        ({"alcohol": "no"}, "alcohol"),  # a non-empty string read as True
        ({"cashier_id": 5}, "cashier_id"),
    ],
)
def test_a_truth_value_of_the_wrong_type_or_range_is_one_line_and_exit_11(
    agecam, default_run, scenario, tmp_path, change, key
):
    _, _, db = default_run
    result = agecam("score", edited_truth(scenario, tmp_path / "edited", change), "--db", db)
    assert result.code == 11
    assert f"truth.json: customer 1 has {key} " in one_error_line(result.err)


def test_a_transaction_named_twice_in_the_truth_says_so(agecam, default_run, scenario, tmp_path):
    _, _, db = default_run
    folder = edited_truth(scenario, tmp_path / "edited", {"transaction_id": "T0001"}, index=1)
    result = agecam("score", folder, "--db", db)
    assert result.code == 11 and "a transaction_id appears twice" in one_error_line(result.err)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("UPDATE alerts SET latency_s = NULL WHERE type = 'id_check_required'", "latency_s None"),
        ("UPDATE alerts SET latency_s = 'soon' WHERE type = 'id_check_required'", "latency_s 'soon'"),
        ("UPDATE transactions SET started_at = 'garbage'", "has times 'garbage' to "),
        ("UPDATE transactions SET ended_at = 'garbage'", "to 'garbage', which agecam never writes"),
        ("UPDATE pos_events SET at = 'garbage'", "a time or second agecam never writes"),
        ("UPDATE pos_events SET t = 'soon'", "a time or second agecam never writes"),
        ("UPDATE customers SET first_seen = 'yesterday'", "a time or second agecam never writes"),
    ],
)
def test_an_edited_event_log_is_one_line_and_exit_6(agecam, default_run, scenario, tmp_path, sql, message):
    _, _, db = default_run
    edited = tmp_path / "edited.db"
    shutil.copy(db, edited)
    with contextlib.closing(sqlite3.connect(edited)) as connection, connection:
        connection.execute(sql)
    result = agecam("score", scenario, "--db", edited)
    assert result.code == 6
    line = one_error_line(result.err)
    assert str(edited) in line and message in line


def test_score_refuses_run_zero_rather_than_scoring_the_latest(agecam, default_run, scenario):
    _, _, db = default_run
    result = agecam("score", scenario, "--db", db, "--run", "0")
    assert result.code == 2 and "--run 0" in one_error_line(result.err)


@pytest.fixture(scope="module")
def faces(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_faces(assets / "data" / "utkface", tmp_path_factory.mktemp("hostile") / "faces")


def test_simulate_refuses_a_negative_seed(agecam, faces, tmp_path):
    # numpy's generator takes no negative seed: a traceback (exit 1) after the plan, with the folder made.
    args = ["simulate", "--faces", faces, "--out", tmp_path / "till", "--customers", "2", "--seed", "-1"]
    result = agecam(*args, "--fps", "5", "--size", "320x240")
    assert result.code == 2 and "--seed -1" in one_error_line(result.err)
    assert not (tmp_path / "till").exists()


def test_a_labels_file_with_a_header_alone_says_it_has_no_rows(agecam, faces, tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    (folder / "images").symlink_to(faces / "images")
    (folder / "labels.csv").write_text("file_name,real_age\n")
    result = agecam("simulate", "--faces", folder, "--out", tmp_path / "till", "--customers", "1")
    assert result.code == 11 and "labels.csv has no rows" in one_error_line(result.err)


def test_score_refuses_a_run_id_past_sqlites_integers(agecam, default_run, scenario):
    _, _, db = default_run
    result = agecam("score", scenario, "--db", db, "--run", str(2**63))  # an OverflowError: a traceback, exit 1
    assert result.code == 2 and f"--run {2**63}: give a run id of the log" in one_error_line(result.err)


def test_a_truth_file_that_is_a_device_is_refused_with_bounded_memory(default_run, scenario, tmp_path):
    """/dev/zero was read until memory ran out: here a MemoryError under a 1 GiB limit, and a traceback."""
    _, _, db = default_run
    (tmp_path / "till").mkdir()
    (tmp_path / "till" / "truth.json").symlink_to("/dev/zero")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    command = [sys.executable, "-m", "edge.cli", "score", str(tmp_path / "till"), "--db", str(db)]
    result = subprocess.run(command, preexec_fn=limit, capture_output=True, text=True, timeout=120)
    assert result.returncode == 11 and "truth.json is not a regular file" in one_error_line(result.stderr)


@pytest.mark.parametrize("status", ["stopped", "failed", "running"])
def test_a_replay_that_did_not_reach_the_videos_end_is_not_scored(agecam, default_run, scenario, tmp_path, status):
    """A replay stopped by Ctrl-C applies the rest of its script after its last frame, so every transaction is in
    the log: it was scored as if whole, the customers after the stop counting as missed."""
    _, _, db = default_run
    cut = tmp_path / "cut.db"
    shutil.copy(db, cut)
    with contextlib.closing(sqlite3.connect(cut)) as connection, connection:
        connection.execute("UPDATE runs SET status = ?", (status,))
    result = agecam("score", scenario, "--db", cut)
    assert result.code == 11 and f"run 1 is {status}, not completed: replay the whole video" in one_error_line(
        result.err
    )


@pytest.mark.parametrize("option", ["--out", "--faces"])
def test_simulate_refuses_an_empty_folder_option(agecam, faces, tmp_path, monkeypatch, option):
    """--out "$DIR" with the variable unset wrote till.mp4, pos.jsonl and truth.json into the working folder."""
    monkeypatch.chdir(tmp_path)
    paths = {"--faces": str(faces), "--out": str(tmp_path / "till"), option: ""}
    result = agecam("simulate", *[part for pair in paths.items() for part in pair], "--customers", "1", "--fps", "5")
    assert result.code == 2 and f"{option} is empty: give a path" in one_error_line(result.err)
    assert list(tmp_path.iterdir()) == []
