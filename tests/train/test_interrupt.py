"""A training stopped by SIGTERM (systemd, a job scheduler) or one that diverges: one line, the documented exit
code, and a run folder that --resume (or a fresh run) can take on."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from train.checkpoint import load_checkpoint

TINY = ["--views", "1", "--crop-size", "64", "--threads", "2", "--epochs2", "0"]


def _agecam(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "edge.cli", *args]


def test_sigterm_mid_training_says_how_to_resume_and_resume_finishes(
    run_cli, tiny_appa: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    paths = ["--data", str(tiny_appa), "--runs-dir", str(tmp_path), "--cache-dir", str(tmp_path / "crops")]
    argv = ["train", "--name", "stopped", *TINY, *paths]
    with (tmp_path / "stderr").open("w") as log:
        process = subprocess.Popen(_agecam([*argv, "--epochs1", "100000"]), stderr=log)
    deadline = time.monotonic() + 240
    while "stage 1 epoch 2:" not in (tmp_path / "stderr").read_text() and time.monotonic() < deadline:
        assert process.poll() is None, (tmp_path / "stderr").read_text()
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 130  # before: killed by the signal (-15), with no word on what was kept
    last_line = (tmp_path / "stderr").read_text().strip().splitlines()[-1]
    assert last_line.startswith("agecam: error: training stopped:") and "--resume" in last_line
    run = tmp_path / "stopped"
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
    assert load_checkpoint(run / "last.pt")["stage"] == 1  # whole, and resumable
    assert run_cli([*argv, "--epochs1", "1", "--resume"]) == 0
    assert (run / "metrics.json").is_file()


def test_a_diverging_run_stops_at_the_first_nan_epoch(run_cli, tiny_appa: Path, tmp_path: Path, capsys) -> None:
    """Labels above age_max make the distribution head's loss NaN; a NaN valid MAE never beats the best, so
    the run used to train to its end and then fail with "checkpoint not found: best.pt"."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("age_max: 5\n")
    paths = ["--data", str(tiny_appa), "--runs-dir", str(tmp_path), "--cache-dir", str(tmp_path / "crops")]
    argv = ["train", "--name", "nan", "--recipe", str(recipe), *TINY, "--epochs1", "3", *paths]
    assert run_cli(argv) == 9
    out = capsys.readouterr().out
    assert "stage 1 epoch 1: training diverged" in out and "age_max" in out
    assert not (tmp_path / "nan" / "last.pt").exists()
