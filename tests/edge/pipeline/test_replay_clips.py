"""The real YuNet on the real clips: the right number of distinct customers, stable track ids,
batched age inference, and a complete event log."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from pathlib import Path

import cv2
import pytest

from edge import cli
from edge.config import parse_config
from edge.pipeline.frame import Pipeline
from edge.store.eventlog import EventLog
from edge.vision.age_model import load_age_model
from edge.vision.detector import FaceDetector, load_detector
from edge.vision.source import Frame
from edge.vision.tracker import FaceTracker

from clips import CLIPS, clip

SUMMARY_KEYS = {"frames", "faces", "customers", "stats", "fps", "stage_ms", "dropped_frames", "model"}


@pytest.fixture(scope="module")
def replays(tmp_path_factory, assets, tiny_model):
    """Replay each clip once with the CLI (JSON summary) into its own database."""
    results = {}
    folder = tmp_path_factory.mktemp("replays")
    config = folder / "config.yaml"
    config.write_text(f"age_model:\n  path: {tiny_model}\nstate:\n  dir: {folder / 'state'}\n")
    for name in CLIPS:
        db = folder / f"{name}.db"
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            code = cli.main(
                [
                    "--config",
                    str(config),
                    "--log-level",
                    "WARNING",
                    "replay",
                    str(clip(assets, name)),
                    "--fast",
                    "--json",
                    "--db",
                    str(db),
                    "--start",
                    "2026-11-22T09:58:30+00:00",
                ]
            )
        assert code == 0
        results[name] = (json.loads(buffer.getvalue()), db)
    return results


@pytest.mark.parametrize("name", list(CLIPS))
def test_each_clip_yields_the_right_number_of_customers(replays, name):
    summary, _ = replays[name]
    assert summary.keys() >= SUMMARY_KEYS
    assert len(summary["customers"]) == CLIPS[name]
    assert summary["uncounted_tracks"] == 0, "a person was split into extra tracks"
    assert sorted(c["track_id"] for c in summary["customers"]) == list(range(1, CLIPS[name] + 1))
    for customer in summary["customers"]:
        assert customer["age_low"] <= customer["age"] <= customer["age_high"]
        assert customer["samples"] >= 3


@pytest.mark.parametrize("name", list(CLIPS))
def test_track_ids_are_stable_across_every_frame(assets, detector_path, name):
    detector = FaceDetector(detector_path, min_face_px=16)
    tracker = FaceTracker(iou_threshold=0.2, max_center_shift=1.0, forget_after_s=2.0)
    capture = cv2.VideoCapture(str(clip(assets, name)))
    ids_per_frame = []
    index = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        seen, ended = tracker.update(detector.detect(image), index / 12.5)
        ids_per_frame.append(sorted(track.track_id for track in seen))
        assert not ended
        index += 1
    assert index > 30
    assert all(ids == list(range(1, CLIPS[name] + 1)) for ids in ids_per_frame)


def test_crops_of_all_tracks_in_a_frame_are_batched(replays):
    summary, _ = replays["face-demographics-walking-and-pause"]
    assert summary["largest_batch"] == 3
    assert summary["age_inferences"] >= 3 * 3


def test_sampling_stops_once_the_estimate_is_stable(replays):
    summary, _ = replays["head-pose-face-detection-female-and-male"]
    # 56 frames x 2 faces could cost 112 inferences; a stable estimate stops sampling long before.
    assert summary["faces"] == 112
    assert summary["age_inferences"] < 40


def test_event_log_holds_run_customers_and_hourly_stats(replays):
    summary, db_path = replays["face-demographics-walking-and-pause"]
    db = sqlite3.connect(db_path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] >= 1
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    run = db.execute("SELECT status, mode, frames, faces, model_sha256, provider, ended_at FROM runs").fetchall()
    assert len(run) == 1
    status, mode, frames, faces, sha, provider, ended_at = run[0]
    assert (status, mode, frames, faces) == ("completed", "replay", 41, summary["faces"])
    assert len(sha) == 64 and provider == "CPUExecutionProvider" and ended_at
    customers = db.execute(
        "SELECT track_id, first_seen, last_seen, age, age_low, age_high, samples, age_group,"
        " counted, ended FROM customers ORDER BY track_id"
    ).fetchall()
    assert [row[0] for row in customers] == [1, 2, 3]
    for _, first, last, age, low, high, samples, group, counted, ended in customers:
        assert first.startswith("2026-11-22T09:58:30") and first <= last
        assert low <= age <= high and samples >= 3 and counted == 1 and ended == 1
        assert group in {"<18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"}
    stats = db.execute("SELECT hour, age_group, customers, age_sum FROM hourly_stats").fetchall()
    assert sum(row[2] for row in stats) == 3
    assert {row[0] for row in stats} == {"2026-11-22T09:00Z"}
    by_group: dict[str, list[float]] = {}
    for row in customers:
        by_group.setdefault(row[7], []).append(row[3])
    assert {row[1]: (row[2], pytest.approx(row[3])) for row in stats} == {
        group: (len(ages), pytest.approx(sum(ages))) for group, ages in by_group.items()
    }


def test_a_replay_writes_no_image_anywhere(replays, tmp_path_factory):
    _, db_path = replays["face-demographics-walking"]
    folder = Path(db_path).parent
    images = [p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp", ".webp"}]
    assert images == []
    blobs = (
        sqlite3.connect(db_path)
        .execute("SELECT count(*) FROM customers WHERE typeof(age) = 'blob' OR typeof(age_group) = 'blob'")
        .fetchone()[0]
    )
    assert blobs == 0


def test_every_inference_reaches_a_customer_including_the_last_frames(assets, tiny_model, tmp_path):
    """The age model runs a frame behind detection; the batch still in flight when the clip ends must
    be applied before the customers are saved. Sampling every face on every frame makes that batch certain."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"age_model:\n  path: {tiny_model}\nstate:\n  dir: {tmp_path / 'state'}\n"
        "customer:\n  max_samples: 1000\n  stable_window: 1000\n  sample_interval_s: 0\n  min_quality: 0\n"
    )
    db = tmp_path / "every.db"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        video = str(clip(assets, "face-demographics-walking"))
        code = cli.main(["--config", str(config), "replay", video, "--fast", "--json", "--db", str(db)])
    assert code == 0
    summary = json.loads(buffer.getvalue())
    samples = sqlite3.connect(db).execute("SELECT sum(samples) FROM customers").fetchone()[0]
    assert summary["age_inferences"] == summary["faces"] == samples


@pytest.mark.parametrize("channels", [1, 4])
def test_grey_or_bgra_frames_keep_the_run_going_and_its_samples(assets, tiny_model, tmp_path, channels):
    """A camera format that OpenCV hands over as one grey channel crashed the motion check of the default
    detector.interval 3; one with alpha failed every age batch, so no customer ever got an estimate."""
    config = parse_config({"age_model": {"path": str(tiny_model)}}, "test", tmp_path)
    event_log = EventLog(tmp_path / "odd.db")
    run_id = event_log.start_run(
        mode="replay", source="grey", model_path="m", model_sha256="0", provider="cpu", version="0",
        config_json="{}", started=0.0,
    )  # fmt: skip
    pipeline = Pipeline(config, load_detector(config), load_age_model(config), event_log, run_id, 0.0)
    capture = cv2.VideoCapture(str(clip(assets, "face-demographics-walking")))
    convert = cv2.COLOR_BGR2GRAY if channels == 1 else cv2.COLOR_BGR2BGRA
    index, (ok, image) = 0, capture.read()
    while ok:
        pipeline.process(Frame(index, cv2.cvtColor(image, convert), index / 12.5, 0.0))
        index, (ok, image) = index + 1, capture.read()
    pipeline.finish()
    assert pipeline.counters.age_inferences > 0 and pipeline.counters.bad_age_samples == 0
    assert event_log.customers(run_id), "customers with an estimate"
    event_log.close()
