"""`agecam record` and `agecam simulate` write whole outputs or none: a full disk or a bad photo midway leaves a
previous output as it was, and no temporary behind. The full disk is real: the command runs in its own process
with a file size limit (RLIMIT_FSIZE), so every write past it fails with EFBIG, as on a full disk."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli.run import _record_capture
from edge.scenario.output import PARTIAL, frames_readable
from edge.vision.source import SourceSpec

from pos_scenario import make_faces

SCENARIO = ("till.mp4", "pos.jsonl", "truth.json")


def agecam_on_a_full_disk(limit_bytes: int, *args: object) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    command = [sys.executable, "-m", "edge.cli", "--log-level", "WARNING", *map(str, args)]
    return subprocess.run(command, preexec_fn=limit, capture_output=True, text=True, timeout=300)


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agecam: error: "), stderr
    return lines[0]


def leftovers(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if PARTIAL in path.name]


def contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def faces(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_faces(assets / "data" / "utkface", tmp_path_factory.mktemp("atomic") / "faces")


def simulate_args(faces: Path, out: Path, seed: int) -> list[object]:
    return ["simulate", "--faces", faces, "--out", out, "--customers", "4", "--seed", seed, "--fps", "5"]


@pytest.fixture
def video(assets: Path) -> Path:
    return assets / "videos" / "face-demographics-walking.mp4"  # 35 frames at 12.5 fps, 480x270


def test_record_on_a_full_disk_leaves_the_previous_file_whole(agecam, write_config, video, tmp_path):
    out = tmp_path / "till.mp4"
    assert agecam("--config", write_config(), "record", video, out, "--seconds", "2").code == 0
    before = out.read_bytes()
    result = agecam_on_a_full_disk(20_000, "--config", write_config(), "record", video, out, "--seconds", "3")
    assert result.returncode == 6, result.stderr
    assert "of 35 frames reached the disk" in one_error_line(result.stderr)
    assert out.read_bytes() == before, "the previous recording was cut short or destroyed"
    assert leftovers(tmp_path) == []


def test_record_on_a_full_disk_leaves_no_file_where_there_was_none(write_config, video, tmp_path):
    out = tmp_path / "till.mkv"
    result = agecam_on_a_full_disk(20_000, "--config", write_config(), "record", video, out, "--seconds", "3")
    assert result.returncode == 6 and str(out) in one_error_line(result.stderr)
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", [".avi", ".mkv"])
def test_record_writes_each_container_whole(agecam, write_config, video, tmp_path, suffix):
    out = tmp_path / f"till{suffix}"
    assert agecam("--config", write_config(), "record", video, out, "--seconds", "2").code == 0
    capture = cv2.VideoCapture(str(out))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 25 and leftovers(tmp_path) == []


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf"])
def test_record_refuses_seconds_that_record_nothing_or_never_end(agecam, write_config, video, tmp_path, seconds):
    # 0 and nan wrote a file without a frame (exit 0); inf recorded a camera until killed.
    result = agecam("--config", write_config(), "record", video, tmp_path / "till.mp4", f"--seconds={seconds}")
    assert result.code == 2 and f"--seconds {float(seconds)}" in one_error_line(result.err)
    assert not (tmp_path / "till.mp4").exists()


def test_record_refuses_a_missing_folder_or_a_folder_as_the_file(agecam, write_config, video, tmp_path):
    result = agecam("--config", write_config(), "record", video, tmp_path / "nowhere" / "till.mp4", "--seconds", "1")
    assert result.code == 6 and "does not exist" in one_error_line(result.err)
    (tmp_path / "till.mp4").mkdir()
    result = agecam("--config", write_config(), "record", video, tmp_path / "till.mp4", "--seconds", "1")
    assert result.code == 6 and "it is a folder" in one_error_line(result.err)
    assert not (tmp_path / "nowhere").exists() and leftovers(tmp_path) == []


def test_simulate_on_a_full_disk_leaves_the_previous_scenario_whole(agecam, faces, tmp_path):
    out = tmp_path / "till"
    assert agecam(*simulate_args(faces, out, 1), "--size", "320x240").code == 0
    before = contents(out)
    result = agecam_on_a_full_disk(40_000, *simulate_args(faces, out, 2), "--size", "320x240")
    assert result.returncode == 6, result.stderr
    assert f"cannot write {out / 'till.mp4'}" in one_error_line(result.stderr)
    assert contents(out) == before, "the video was cut short, or the scenario's files no longer match"
    assert leftovers(tmp_path) == []


def test_a_bad_photo_midway_leaves_the_previous_scenario_and_no_new_folder(agecam, faces, tmp_path):
    out = tmp_path / "till"
    assert agecam(*simulate_args(faces, out, 1), "--size", "320x240").code == 0
    before = contents(out)
    broken = tmp_path / "broken" / "faces"  # "faces": the privacy test knows these photos are inputs
    (broken / "images").mkdir(parents=True)
    for photo in (faces / "images").iterdir():
        (broken / "images" / photo.name).write_bytes(b"not a photo")
    (broken / "labels.csv").write_bytes((faces / "labels.csv").read_bytes())
    for target in (out, tmp_path / "new"):
        result = agecam(*simulate_args(broken, target, 2), "--size", "320x240")
        assert result.code == 11 and "cannot read the face photo" in one_error_line(result.err)
    assert contents(out) == before
    assert not (tmp_path / "new").exists(), "an empty scenario folder was left behind"
    assert leftovers(tmp_path) == []


def test_simulate_into_a_folder_replaces_the_scenario_and_keeps_other_files(agecam, faces, tmp_path):
    out = tmp_path / "till"
    assert agecam(*simulate_args(faces, out, 1), "--size", "320x240").code == 0
    (out / "run.db").write_bytes(b"a replay's event log")  # README's workflow keeps it there
    assert agecam(*simulate_args(faces, out, 2), "--size", "320x240").code == 0
    assert sorted(path.name for path in out.iterdir()) == sorted([*SCENARIO, "run.db"])
    assert (out / "run.db").read_bytes() == b"a replay's event log"
    assert '"seed": 2' in (out / "truth.json").read_text() and leftovers(tmp_path) == []


def test_simulate_refuses_a_file_as_the_scenario_folder(agecam, faces, tmp_path):
    (tmp_path / "till").write_text("keep me")
    result = agecam(*simulate_args(faces, tmp_path / "till", 1), "--size", "320x240")
    assert result.code == 6 and "it is a file" in one_error_line(result.err)
    assert (tmp_path / "till").read_text() == "keep me"


def test_sigterm_midway_leaves_the_previous_scenario_and_no_temporary(agecam, faces, tmp_path):
    """SIGTERM (`timeout`, a cancelled CI job) killed simulate mid-video: exit -15 and a .partial- folder with
    a cut-off video left behind, one more on every rerun. It now stops as Ctrl-C does."""
    out = tmp_path / "till"
    assert agecam(*simulate_args(faces, out, 1), "--size", "320x240").code == 0
    before = contents(out)
    long = ["--customers", "8", "--fps", "10", "--size", "1280x720"]  # 400 frames: still rendering at the signal
    command = [sys.executable, "-m", "edge.cli", *map(str, simulate_args(faces, out, 2)), *long]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not leftovers(tmp_path) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and stderr.strip().endswith("agecam: interrupted"), stderr
    assert contents(out) == before and leftovers(tmp_path) == []
    assert agecam(*simulate_args(faces, out, 2), "--size", "320x240").code == 0  # the rerun
    assert '"seed": 2' in (out / "truth.json").read_text() and leftovers(tmp_path) == []


def test_sigterm_ends_a_recording_early_with_a_whole_file(write_config, tmp_path):
    # SIGTERM killed the process mid-write: the file at OUT had no index and did not play.
    source = tmp_path / "long.mp4"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter.fourcc(*"mp4v"), 25, (160, 120))
    base = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    for index in range(6000):
        writer.write(np.roll(base, index, axis=1))
    writer.release()
    out = tmp_path / "till.mp4"
    command = [sys.executable, "-m", "edge.cli", "--config", write_config(), "record", source, out, "--seconds", "999"]
    process = subprocess.Popen([str(arg) for arg in command], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (leftovers(tmp_path) or out.exists()) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0 and "recording stopped by a signal" in stderr, stderr
    assert 0 < frames_readable(out) < 6000 and leftovers(tmp_path) == []


def test_a_camera_recording_shorter_than_a_frame_keeps_the_frame_it_read(tmp_path):
    """A --seconds that ran out while the file was being made committed a video without a frame (exit 0). The
    clip, read as a stream, is timed by the clock like a camera."""
    clip = tmp_path / "camera.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"mp4v"), 30.0, (64, 48))
    for _ in range(5):
        writer.write(np.full((48, 64, 3), 90, np.uint8))
    writer.release()
    out, capture = tmp_path / "till.mp4", cv2.VideoCapture(str(clip))
    try:
        frames, _ = _record_capture(capture, SourceSpec("stream", str(clip)), out, 1e-9)
    finally:
        capture.release()
    assert frames == 1 and frames_readable(out) == 1 and leftovers(tmp_path) == []
