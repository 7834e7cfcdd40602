"""`agecam bench edge` on a real clip: rounds that alternate decode+detect and the pipeline, reported as JSON.
No timing is asserted (figures go in notes); the report's shape and its counts are."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2

from clips import clip

ROOT = Path(__file__).resolve().parents[3]


def test_bench_edge_reports_the_median_of_alternating_rounds(agecam, write_config, tiny_model, assets):
    video = clip(assets, "face-demographics-walking-and-pause")
    config = write_config(detector={"interval": 3})
    args = ["bench", "edge", video, "--model", tiny_model, "--loops", "3", "--min-frames", "50", "--json"]
    result = agecam("--config", config, *args)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    rounds = report["rounds_pipeline_vs_decode_detect"]
    assert len(rounds) == 3 and rounds == sorted(rounds)
    assert report["pipeline_vs_decode_detect"] == rounds[1]
    assert report["clip_frames"] == 41 and report["frames"] == 82, "the whole clip twice: at least 50 frames"
    assert report["pipeline"]["frames"] == report["pipeline_every_face"]["frames"] == 82
    assert report["detection_size"] == [640, 360] and report["detection_interval"] == 3
    assert 1 / 3 <= report["pipeline"]["full_detections_per_frame"] < 1
    assert report["pipeline"]["faces_per_frame"] > 2.5  # three people on nearly every frame
    every = report["pipeline_every_face"]
    assert every["age_inferences_per_frame"] == every["faces_per_frame"]
    assert 0 < report["pipeline"]["age_inferences_per_frame"] < every["age_inferences_per_frame"]


def test_bench_model_compares_padded_batches_with_plain_runs(agecam, write_config, tiny_model, assets):
    video = clip(assets, "face-demographics-walking-and-pause")
    for padding, padded in (("on", True), ("off", False)):
        config = write_config(age_model={"batch_padding": padding})
        result = agecam("--config", config, "bench", "model", tiny_model, "--video", video, "--repeats", "2", "--json")
        assert result.code == 0, result.err
        (report,) = json.loads(result.out)
        assert report["padded"] is padded and report["batch8_ms_per_face"] > 0
        assert ("unpadded_batch8_ms_per_face" in report) is padded


def clip_with_a_corrupt_end(assets: Path, out: Path, whole: int = 12, frames: int = 60) -> Path:
    """The demo clip's first `whole` frames as an MJPEG AVI, then `frames` more each with its JPEG headers
    overwritten: the file's structure stays whole, only decoding those frames fails (FFmpeg logs each)."""
    capture = cv2.VideoCapture(str(clip(assets, "face-demographics-walking-and-pause")))
    images = [capture.read()[1] for _ in range(whole)]
    capture.release()
    height, width = images[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"MJPG"), 10, (width, height))
    for index in range(frames):
        writer.write(images[index % whole])
    writer.release()
    data = bytearray(out.read_bytes())
    starts = [match.start() for match in re.finditer(b"\xff\xd8\xff", data)]
    assert len(starts) == frames
    for start in starts[whole:]:
        data[start + 2 : start + 400] = bytes(398)  # the tables after the start marker: zeros
    out.write_bytes(bytes(data))
    return out


def test_bench_model_reads_only_the_frames_it_times_the_model_on(write_config, tiny_model, assets, tmp_path):
    """It decoded the whole clip into memory to use its first 10 frames: a long clip's every frame (gigabytes
    at 1080p), and here the corrupt frames after them, whose errors FFmpeg printed (its log level: errors)."""
    video = clip_with_a_corrupt_end(assets, tmp_path / "cut.avi")
    command = [sys.executable, "-m", "edge.cli", "--config", str(write_config()), "--log-level", "WARNING"]
    command += ["bench", "model", str(tiny_model), "--video", str(video), "--repeats", "1", "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENCV_FFMPEG_LOGLEVEL": "16"}  # AV_LOG_ERROR
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # OpenCV passes FFmpeg's lines to stdout ('[OPENCV:FFMPEG:08] No JPEG data found in image'), over the JSON
    assert "jpeg" not in (result.stdout + result.stderr).lower(), "frames after the first 10 were decoded"
    (report,) = json.loads(result.stdout)
    assert report["batch1_ms_per_face"] > 0 and report["batch8_ms_per_face"] > 0
