"""What an engineer meets first: argparse's own errors, the assets folder, `bench` without assets and `purge`
with a mistyped --db, each one line `agecam: error: ...` with its documented exit code, and nothing lost."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import edge.assets
from edge import cli
from edge.assets import DETECTOR_ASSET, Asset, download, sha256_of

ROOT = Path(__file__).resolve().parents[3]


def one_error_line(err: str, *words: str) -> str:
    """The one error line among stderr's log lines, with no traceback."""
    lines = [line for line in err.splitlines() if line.startswith("agecam")]
    assert len(lines) == 1 and lines[0].startswith("agecam: error: ") and "Traceback" not in err, err
    assert all(word in lines[0] for word in words), err
    return lines[0]


COMMAND_LINES = {
    "no command": ([], "the following arguments are required: COMMAND"),
    "unknown command": (["bogus"], "invalid choice: 'bogus'"),
    "bad number": (["bench", "edge", "--loops", "x"], "bench edge: argument --loops: invalid int value: 'x'"),
    "no action": (["assets"], "assets: the following arguments are required: ACTION"),
    "bad choice": (["events", "--kind", "z"], "events: argument --kind: invalid choice: 'z'"),
}


@pytest.mark.parametrize("case", list(COMMAND_LINES))
def test_a_bad_command_line_is_one_error_line(case, capsys):
    """argparse printed a usage block and `agecam bench edge: error: ...`, not the one line of every other error."""
    args, words = COMMAND_LINES[case]
    with pytest.raises(SystemExit) as exit_:
        cli.main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    one_error_line(err, words, "--help")
    assert "usage:" not in err


def test_a_bad_command_line_of_a_real_process_is_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "edge.cli", "bench", "edge", "--loops", "x"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 2 and done.stdout == ""
    one_error_line(done.stderr, "--loops", "'agecam bench edge --help'")


def test_fetch_into_a_folder_that_cannot_be_made_is_one_line(agecam, tmp_path, monkeypatch):
    """mkdir ran outside the download's error handling: a file in the way was a traceback (exit 1)."""
    (tmp_path / "assets").write_text("not a folder")
    monkeypatch.setenv("AGECAM_ASSETS", str(tmp_path / "assets"))
    result = agecam("assets", "fetch")
    assert result.code == 7
    one_error_line(result.err, f"cannot write into {tmp_path / 'assets' / 'models'}", "AGECAM_ASSETS")


def test_a_fetched_asset_is_readable_by_other_users(tmp_path, assets):
    """install.sh fetches as root for the service's user: mkstemp's 0600 kept the detector from it."""
    source = assets / DETECTOR_ASSET
    download(Asset(DETECTOR_ASSET, source.as_uri(), sha256_of(source), source.stat().st_size), tmp_path)
    mode = stat.S_IMODE(os.stat(tmp_path / DETECTOR_ASSET).st_mode)
    assert mode & 0o044 == 0o044, oct(mode)


def test_an_unreadable_asset_is_named_not_a_traceback(agecam, write_config, assets, monkeypatch):
    """Another user's 0600 detector: PermissionError ended `assets list`, `config check` and `run` (exit 1)."""

    def refused(path: Path) -> str:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setenv("AGECAM_ASSETS", str(assets))
    monkeypatch.setattr(edge.assets, "sha256_of", refused)
    listed = agecam("assets", "list")
    assert listed.code == 7 and "unreadable" in listed.out and "Traceback" not in listed.err
    checked = agecam("--config", write_config(), "config", "check")
    assert checked.code == 5
    one_error_line(checked.err, DETECTOR_ASSET, "cannot be read by this user", "chmod a+r")


def test_bench_without_the_demo_clip_says_to_fetch_it(agecam, write_config, tmp_path, monkeypatch):
    """It said 'video not found: .../face-demographics-walking-and-pause.gif: check the path' (exit 3)."""
    monkeypatch.setenv("AGECAM_ASSETS", str(tmp_path / "empty"))
    result = agecam("--config", write_config(), "bench", "edge", "--loops", "1")
    assert result.code == 7
    one_error_line(result.err, "face-demographics-walking-and-pause.gif", "is missing", "agecam assets fetch")


def test_bench_refuses_a_negative_frame_count(agecam, write_config):
    result = agecam("--config", write_config(), "bench", "edge", "--min-frames", "-5")
    assert result.code == 2
    one_error_line(result.err, "--min-frames -5")


def test_bench_model_on_a_clip_without_faces_is_one_line(agecam, write_config, tiny_model, tmp_path):
    """A clip with nobody in it gave no crops to time: a ZeroDivisionError traceback (exit 1)."""
    clip = tmp_path / "empty.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"mp4v"), 10, (320, 240))
    for _ in range(5):
        writer.write(np.full((240, 320, 3), 128, np.uint8))
    writer.release()
    result = agecam("--config", write_config(), "bench", "model", tiny_model, "--video", clip, "--repeats", "1")
    assert result.code == 3
    one_error_line(result.err, str(clip), "no face", "give a clip with faces")


def test_purge_with_a_mistyped_db_deletes_nothing(agecam, write_config, tmp_path):
    """The crops went and the missing log was skipped: the real log's flags kept pointing at deleted crops."""
    evidence = tmp_path / "state" / "evidence"
    evidence.mkdir(parents=True)
    crop = evidence / "run1-txn1-track1.jpg"
    crop.write_bytes(b"\xff\xd8 crop")
    os.utime(crop, (0, 0))
    result = agecam("--config", write_config(), "purge", "--days", "0", "--db", tmp_path / "agecm.db")
    assert result.code == 6
    one_error_line(result.err, "agecm.db", "check --db")
    assert crop.exists()


@pytest.mark.parametrize("args", [["train", "--data", "x"], ["export", "x.pt", "--out", "y.onnx"]])
def test_a_training_command_on_a_till_install_names_the_extra(args, tmp_path):
    """train/ and export/ ship in every wheel: without torch these ended in a ModuleNotFoundError traceback."""
    code = (
        "import sys\n"
        "for name in ['torch', 'torchvision', 'onnx', 'matplotlib']: sys.modules[name] = None\n"
        "from edge.cli import main\n"
        f"sys.exit(main({args!r}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2
    one_error_line(done.stderr, f"agecam {args[0]} needs torch", "pip install 'agecam[train]'")
