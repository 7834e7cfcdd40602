"""Every user mistake ends with one clear line and its documented exit code, no traceback, and no
event log left behind."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import pwd
import shutil
import stat
from pathlib import Path

import pytest
from onnx import TensorProto

from edge.store.eventlog import EventLog
from edge.vision.model_contract import metadata_props

from clips import clip
from mounts import tmpfs
from onnx_models import brightness_model, save


def assert_clean_failure(result, code: int, *words: str) -> None:
    assert result.code == code, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("agecam: error:")]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    for word in words:
        assert word in lines[0]


@pytest.fixture
def video(assets: Path) -> Path:
    return clip(assets, "face-demographics-walking")


def no_database_in(folder: Path) -> bool:
    return not folder.exists() or not list(folder.rglob("*.db"))


def test_missing_video(agecam, write_config, tmp_path):
    result = agecam("--config", write_config(), "replay", tmp_path / "nope.mp4", "--fast")
    assert_clean_failure(result, 3, "nope.mp4", "not found")
    assert no_database_in(tmp_path / "state")


def test_unreadable_video(agecam, write_config, tmp_path):
    fake = tmp_path / "clip.mp4"
    fake.write_bytes(b"this is not a video" * 100)
    result = agecam("--config", write_config(), "replay", fake, "--fast")
    assert_clean_failure(result, 3, "clip.mp4")
    assert no_database_in(tmp_path / "state")


def test_missing_model(agecam, write_config, tmp_path, video):
    result = agecam("--config", write_config(age_model={"path": str(tmp_path / "gone.onnx")}), "replay", video)
    assert_clean_failure(result, 4, "gone.onnx", "not found")
    assert no_database_in(tmp_path / "state")


def test_corrupt_model(agecam, write_config, tmp_path, tiny_model, video):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(tiny_model.read_bytes()[:200])
    result = agecam("--config", write_config(age_model={"path": str(broken)}), "replay", video)
    assert_clean_failure(result, 4, "broken.onnx", "cannot be loaded")
    assert no_database_in(tmp_path / "state")


CONTRACT_BREAKS = {
    "no metadata": (dict(metadata={}), "lacks agecam.contract_version"),
    "other version": (
        dict(metadata={**metadata_props(32, 0.3, 0, 100), "agecam.contract_version": "9"}),
        "contract version '9'",
    ),
    "float input": (dict(input_type=TensorProto.FLOAT), "must be uint8"),
    "fixed batch": (dict(batch=1), "dynamic batch"),
    "size mismatch": (dict(metadata=metadata_props(64, 0.3, 0, 100)), "[N, 64, 64, 3]"),
    "missing output": (dict(outputs=("age", "sigma")), "no 'age_std' output"),
    "bad number": (dict(metadata={**metadata_props(32, 0.3, 0, 100), "agecam.crop_margin": "wide"}), "is not a number"),
    "next major version": (
        dict(metadata={**metadata_props(32, 0.3, 0, 100), "agecam.contract_version": "2.0"}),
        "contract version '2.0'",
    ),
    "zero temperature": (dict(metadata=metadata_props(32, 0.3, 0, 100, age_temperature=0.0)), "age_temperature"),
}


@pytest.mark.parametrize("case", list(CONTRACT_BREAKS))
def test_model_that_breaks_the_contract(agecam, write_config, tmp_path, video, case):
    options, message = CONTRACT_BREAKS[case]
    model = save(brightness_model(**options), tmp_path / "odd.onnx")
    result = agecam("--config", write_config(age_model={"path": str(model)}), "replay", video)
    assert_clean_failure(result, 4, "odd.onnx", message)
    assert no_database_in(tmp_path / "state")


def test_missing_detector(agecam, write_config, tmp_path, video):
    config = write_config(detector={"model": str(tmp_path / "yunet.onnx")})
    result = agecam("--config", config, "replay", video)
    assert_clean_failure(result, 5, "yunet.onnx", "not found")
    assert no_database_in(tmp_path / "state")


def test_corrupt_detector(agecam, write_config, tmp_path, video):
    (tmp_path / "yunet.onnx").write_bytes(b"\x08\x01garbage" * 50)
    result = agecam("--config", write_config(detector={"model": str(tmp_path / "yunet.onnx")}), "replay", video)
    assert_clean_failure(result, 5, "yunet.onnx")
    assert no_database_in(tmp_path / "state")


COMMAND_LINE_MODELS = {  # the command's arguments around the model path, and what the line tells the user
    "bench model": (lambda model: ["bench", "model", model], "check the MODEL paths given to agecam bench model"),
    "bench edge": (lambda model: ["bench", "edge", "--model", model], "check --model"),
}


@pytest.mark.parametrize("command", list(COMMAND_LINE_MODELS))
def test_a_missing_model_given_on_the_command_line_is_not_sent_to_the_config(agecam, write_config, tmp_path, command):
    """Both said 'set age_model.path in the config' of a path the user had typed on the command line."""
    arguments, remedy = COMMAND_LINE_MODELS[command]
    result = agecam("--config", write_config(), *arguments(tmp_path / "gone.onnx"))
    assert_clean_failure(result, 4, f"age model {tmp_path / 'gone.onnx'} not found: {remedy}")
    assert "age_model.path" not in result.err


def test_a_missing_model_in_the_config_names_the_config_file(agecam, write_config, tmp_path):
    config = write_config(age_model={"path": str(tmp_path / "gone.onnx")})
    result = agecam("--config", config, "config", "check")
    assert_clean_failure(result, 4, f"age model {tmp_path / 'gone.onnx'} not found: set age_model.path in {config}")


@pytest.mark.parametrize(("section", "key", "code"), [("age_model", "path", 4), ("detector", "model", 5)])
@pytest.mark.parametrize("link", ["dangling", "loop"])
def test_a_model_behind_a_broken_symbolic_link_says_what_the_link_is(
    agecam, write_config, tmp_path, section, key, code, link
):
    """A link to a file since removed (a model swapped by a script), or a loop, read 'not found' of a name the
    folder's listing shows."""
    path = tmp_path / "model.onnx"
    if link == "dangling":
        path.symlink_to(tmp_path / "releases" / "old.onnx")
        expected = f"{path} is a symbolic link to a missing file {tmp_path / 'releases' / 'old.onnx'}"
    else:
        path.symlink_to(tmp_path / "other.onnx")
        (tmp_path / "other.onnx").symlink_to(path)
        expected = f"{path} is a symbolic link loop"
    result = agecam("--config", write_config(**{section: {key: str(path)}}), "config", "check")
    assert_clean_failure(result, code, expected)
    assert "not found" not in result.err


def test_a_model_file_this_user_cannot_read_is_one_line_not_a_traceback(
    tiny_model, write_config, tmp_path, agecam_as_another_user
):
    """Another user's 0600 model: read_bytes raised PermissionError past the checks, a traceback (exit 1), and a
    SIGHUP reload onto it ended the till."""
    model = tmp_path / "model.onnx"
    shutil.copy(tiny_model, model)
    model.chmod(0o600)
    os.chown(model, pwd.getpwnam("nobody").pw_uid, -1)
    result = agecam_as_another_user("--config", write_config(age_model={"path": str(model)}), "config", "check")
    assert result.returncode == 4 and "Traceback" not in result.stderr, result.stderr
    assert f"age model {model} cannot be read (Permission denied)" in result.stderr


def test_detector_asset_with_wrong_hash_is_refused(agecam, write_config, tmp_path, assets, video, monkeypatch):
    fake_assets = tmp_path / "assets"
    shutil.copytree(assets / "models", fake_assets / "models")
    target = fake_assets / "models" / "face_detection_yunet_2026may.onnx"
    target.chmod(0o644)
    with target.open("r+b") as stream:
        stream.seek(1000)
        stream.write(b"tampered")
    monkeypatch.setenv("AGECAM_ASSETS", str(fake_assets))
    result = agecam("--config", write_config(), "replay", video)
    assert_clean_failure(result, 5, "bad hash", "agecam assets fetch")


def test_unwritable_state_directory(agecam, write_config, tmp_path, video):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if shutil.os.access(locked, shutil.os.W_OK):
            pytest.skip("running as a user that can write anywhere")
        result = agecam("--config", write_config(state={"dir": str(locked / "state")}), "replay", video)
        assert_clean_failure(result, 6, "state directory")
    finally:
        locked.chmod(0o700)


def test_state_directory_on_a_read_only_filesystem(agecam, write_config, video):
    # /proc refuses new folders even to root, as a read-only or full disk would.
    result = agecam("--config", write_config(state={"dir": "/proc/agecam/state"}), "replay", video)
    assert_clean_failure(result, 6, "/proc/agecam/state", "state.dir")


def test_state_directory_that_is_a_file(agecam, write_config, tmp_path, video):
    (tmp_path / "taken").write_text("not a folder")
    result = agecam("--config", write_config(state={"dir": str(tmp_path / "taken")}), "replay", video)
    assert_clean_failure(result, 6, "taken")


def test_database_that_is_not_sqlite(agecam, write_config, tmp_path, video):
    bogus = tmp_path / "notes.db"
    bogus.write_text("shopping list: milk, eggs, bread " * 200)
    result = agecam("--config", write_config(), "replay", video, "--db", bogus)
    assert_clean_failure(result, 6, "notes.db", "not a usable agecam database")
    assert bogus.read_text().startswith("shopping list"), "the user's file must not be touched"


@pytest.mark.parametrize("command", ["events", "stats", "report"])
@pytest.mark.parametrize("since", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_a_period_beyond_the_calendar_is_a_bad_option(agecam, write_config, tmp_path, command, since):
    extra = ["--out", tmp_path / "r.html"] if command == "report" else []
    result = agecam("--config", write_config(), command, "--since", since, *extra)
    assert_clean_failure(result, 2, "--since", since)


def test_a_replay_start_beyond_the_calendar_is_refused_before_the_run(agecam, write_config, tmp_path, video):
    result = agecam("--config", write_config(), "replay", video, "--fast", "--start", "9999-12-31T23:59:59")
    assert_clean_failure(result, 2, "--start", "9999-12-31T23:59:59")
    assert no_database_in(tmp_path / "state")


BENCH_OPTIONS = {
    "no loops": (["bench", "edge", "--loops", "0"], "--loops 0"),
    "no repeats": (["bench", "model", "model.onnx", "--repeats", "0"], "--repeats 0"),
    "zero width": (["bench", "edge", "--width", "0", "--loops", "1"], "--width 0"),
    "nan days": (["purge", "--days", "nan"], "--days nan"),
}


@pytest.mark.parametrize("case", list(BENCH_OPTIONS))
def test_an_option_out_of_range_is_one_line(agecam, write_config, case):
    args, words = BENCH_OPTIONS[case]
    assert_clean_failure(agecam("--config", write_config(), *args), 2, words)


def test_a_report_that_fills_the_disk_leaves_the_previous_report_whole(agecam, write_config, tmp_path):
    db = tmp_path / "agecam.db"
    EventLog(db).close()
    with tmpfs(tmp_path / "reports", "64k") as folder:
        out = folder / "report.html"
        out.write_text("<p>last week's report</p>")
        with (folder / "filler").open("wb", buffering=0) as filler, contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * 4096)
        result = agecam("--config", write_config(), "report", "--db", db, "--out", out)
        assert_clean_failure(result, 6, "report.html")
        assert out.read_text() == "<p>last week's report</p>"
        assert sorted(path.name for path in folder.iterdir()) == ["filler", "report.html"], "no temporary left"


def test_a_report_through_a_symlink_or_into_a_pipe_writes_its_target(agecam, write_config, tmp_path):
    """The atomic write replaced a symlinked report (leaving its target stale) and, as root, /dev/stdout itself."""
    db = tmp_path / "agecam.db"
    EventLog(db).close()
    kept = tmp_path / "kept.html"
    kept.write_text("old")
    kept.chmod(0o640)
    link = tmp_path / "report.html"
    link.symlink_to(kept)
    assert agecam("--config", write_config(), "report", "--db", db, "--out", link).code == 0
    assert link.is_symlink() and "<html" in kept.read_text().lower() and kept.stat().st_mode & 0o777 == 0o640
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        read = pool.submit(pipe.read_text)
        try:
            assert agecam("--config", write_config(), "report", "--db", db, "--out", pipe).code == 0
            assert "<html" in read.result(timeout=30).lower()
        finally:  # a reader still waiting for a writer would hang the pool's shutdown: give it an empty one
            with contextlib.suppress(OSError):
                os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
    assert stat.S_ISFIFO(pipe.lstat().st_mode), "the pipe is still a pipe"
