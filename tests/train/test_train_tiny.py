"""A tiny real run (36 real photos, real YuNet, real ImageNet MobileNetV2), then eval and resume on it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from train.checkpoint import load_checkpoint, load_deploy_model

TRAIN = ["train", "--name", "tiny", "--epochs1", "4", "--epochs2", "2", "--views", "2", "--threads", "2"]


@pytest.fixture(scope="module")
def tiny_run(run_cli, tiny_appa: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("run")
    argv = [*TRAIN, "--data", str(tiny_appa), "--runs-dir", str(base), "--cache-dir", str(base / "crops")]
    assert run_cli(argv) == 0
    return base / "tiny"


def test_run_writes_metrics_plots_and_loss_goes_down(run_cli, tiny_run: Path) -> None:
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    stage1 = [h["train_loss"] for h in metrics["history"] if h["stage"] == 1]
    assert len(stage1) == 4 and stage1[-1] < stage1[0]
    assert [h["stage"] for h in metrics["history"]].count(2) == 2
    for plot in metrics["plots"]:
        assert (tiny_run / plot).stat().st_size > 1000
    assert {"curves.png", "valid-tiny-appa0/mae_by_age.png"} <= {Path(p).as_posix() for p in metrics["plots"]}
    valid = metrics["valid"]["tiny-appa0"]
    assert valid["n"] >= 10 and 0 < valid["mae"] < 60
    assert metrics["crop_cache"]["misses"] == 36 and metrics["trunk_cache"] == "miss"
    for name in ("config.yaml", "best.pt", "last.pt", "bad_rows.csv"):
        assert (tiny_run / name).is_file()


def test_checkpoint_rebuilds_the_till_model(run_cli, tiny_run: Path) -> None:
    data = load_checkpoint(tiny_run / "best.pt")
    assert data["backbone"] == "mobilenet_v2" and data["head"] == "dist"
    assert data["crop"] == {"size": 224, "margin": 0.3} and data["normalisation"]["colour"] == "RGB"
    model, _ = load_deploy_model(tiny_run / "best.pt")
    faces = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (3, 224, 224, 3), dtype=np.uint8))
    with torch.no_grad():
        age, std, probs = model(faces)
    assert age.shape == std.shape == (3,) and probs.shape == (3, 101)
    assert torch.all((age >= 0) & (age <= 100)) and torch.all(std > 0)
    assert torch.allclose(probs.sum(dim=1), torch.ones(3), atol=1e-4)


def test_eval_json(run_cli, tiny_run: Path, tiny_appa: Path, capsys: pytest.CaptureFixture) -> None:
    out = tiny_run / "eval"
    argv = [
        "eval",
        "--model",
        str(tiny_run / "best.pt"),
        "--data",
        str(tiny_appa),
        "--json",
        "--out",
        str(out),
        "--cache-dir",
        str(tiny_run.parent / "crops"),
    ]
    assert run_cli(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 12 and report["split"] == "valid"
    for key in ("mae", "mae_by_age_bin", "c25_minor_recall", "c25_teen_recall", "c25_false_alarm", "no_face"):
        assert key in report
    assert set(report["mae_by_age_bin"]) == {"0-12", "13-17", "18-24", "25-34", "35-44", "45-59", "60+"}
    for name in ("mae_by_age.png", "pred_vs_true.png", "curves.png", "reliability.png", "metrics.json"):
        assert (out / name).is_file()
    assert set(report["ci95"]) == {"mae", "mean_error", "c25_minor_recall", "c25_teen_recall", "c25_false_alarm"}
    low, high = report["ci95"]["mae"]
    assert low <= report["mae"] <= high and report["bootstrap"]["resamples"] == 1000
    low, high = report["ci95"]["mean_error"]  # signed, so it can sit anywhere from -MAE to +MAE
    assert low <= report["mean_error"] <= high and abs(report["mean_error"]) <= report["mae"]
    assert set(report["mean_error_by_age_bin"]) == set(report["mae_by_age_bin"])
    assert list(report["under25_by_age"]) == ["13", "14", "15", "16", "17"]
    assert list(report["false_alarm_by_age"]) == ["25-29", "30-39", "40+"]
    assert sum(entry["n"] for entry in report["false_alarm_by_age"].values()) == sum(a >= 25 for a in ages(tiny_appa))
    within = report["within_years"]
    assert within["2"]["n"] == 12 and within["2"]["value"] <= within["5"]["value"]
    calibration = report["calibration"]  # the dist head's age_probs; T fitted because this is the valid split
    assert calibration["model_temperature"] == 1.0 and calibration["fitted_temperature"] > 0
    assert set(calibration["ece"]) == set(calibration["ece_cross_fitted"]) == {"p_under_25", "p_under_18"}
    assert calibration["nll_fitted"] <= calibration["nll"] + 1e-6  # the fit minimises exactly this NLL
    assert report["risk_operating_points"] is None  # these 12 photos hold no minor: no risk to set


def ages(folder: Path) -> list[float]:
    with (folder / "labels.csv").open() as handle:
        return [float(row["real_age"]) for row in csv.DictReader(handle) if row["split"] == "valid"]


def test_eval_by_gender_and_race_and_readable_text(
    run_cli, tiny_run: Path, tiny_utk: Path, capsys: pytest.CaptureFixture
) -> None:
    """UTKFace's labels give MAE and the Challenge 25 rates per group; without --json, readable lines."""
    out = tiny_run / "eval-utk"
    argv = ["eval", "--model", str(tiny_run / "best.pt"), "--data", str(tiny_utk), "--out", str(out)]
    assert run_cli([*argv, "--cache-dir", str(tiny_run.parent / "crops"), "--resamples", "200"]) == 0
    text = capsys.readouterr().out
    assert "Challenge 25 (95 % bootstrap intervals):" in text and "race" in text and f"report: {out}" in text
    report = json.loads((out / "metrics.json").read_text())
    assert f"mean error {report['mean_error']:+.2f} [" in text
    assert report["bootstrap"]["resamples"] == 200
    for attribute in ("gender", "race"):
        groups = report[f"by_{attribute}"]
        assert sum(group["n"] for group in groups.values()) == report["n"] == 16
        for group in groups.values():
            assert group["mae"]["n"] == group["n"] and group["mae"]["ci95"][0] <= group["mae"]["value"]
    assert {group["name"] for group in report["by_gender"].values()} <= {"male", "female"}
    points = report["risk_operating_points"]  # 5 minors and 7 aged 30+ among these 16
    assert list(points) == ["minors_0.95", "minors_0.98"]
    for point in points.values():
        low, high = point["ci95"]
        assert 0 <= point["risk"] <= 1 and low <= point["over_30_reached"] <= high
    # catching more of the minors never needs a higher risk, nor flags fewer adults
    assert points["minors_0.98"]["risk"] <= points["minors_0.95"]["risk"]
    assert points["minors_0.98"]["over_30_reached"] >= points["minors_0.95"]["over_30_reached"]
    assert f"95 % of minors: risk {points['minors_0.95']['risk']:.3f}, aged 30+ reaching it" in text


def test_resume_continues_and_existing_run_is_refused(
    run_cli, tiny_run: Path, tiny_appa: Path, capsys: pytest.CaptureFixture
) -> None:
    base = ["--data", str(tiny_appa), "--runs-dir", str(tiny_run.parent), "--cache-dir", str(tiny_run.parent / "crops")]
    assert run_cli([*TRAIN, *base]) == 9
    assert "--resume" in capsys.readouterr().out
    argv = [*TRAIN, *base, "--resume"]
    argv[argv.index("--epochs2") + 1] = "3"
    assert run_cli(argv) == 0
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert metrics["crop_cache"] == {"hits": 36, "misses": 0, "no_face": {}, "unreadable": {}}
    assert metrics["trunk_cache"] == "hit"
    history = metrics["history"]
    assert [(h["stage"], h["epoch"]) for h in history][-3:] == [(2, 1), (2, 2), (2, 3)]
    assert len(history) == 7
    last = load_checkpoint(tiny_run / "last.pt")  # the weight average went on from where it stopped
    assert int(last["ema"]["n_averaged"]) == 3  # one batch per epoch: 2 steps before the resume, 1 after
    assert any(not torch.equal(last["state_dict"][k], v) for k, v in last["train_state_dict"].items())
    assert run_cli([*argv, "--head", "l1"]) == 9  # a recipe that does not fit last.pt: one line, no traceback
    assert "does not match this recipe" in capsys.readouterr().out


def test_a_recipes_mixup_changes_stage_2_alone(run_cli, tiny_run: Path, tiny_appa: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "mixup.yaml"
    recipe.write_text("mixup: 2.0\nmixup_years: 30\n")
    crops = ["--cache-dir", str(tiny_run.parent / "crops")]  # the tiny run's crops and trunk outputs
    argv = [*TRAIN, "--recipe", str(recipe), "--data", str(tiny_appa), "--runs-dir", str(tmp_path), *crops]
    assert run_cli(argv) == 0
    plain, mixed = (json.loads((run / "metrics.json").read_text()) for run in (tiny_run, tmp_path / "tiny"))
    assert mixed["trunk_cache"] == "hit"

    def losses(metrics: dict, stage: int) -> list[float]:
        return [h["train_loss"] for h in metrics["history"] if h["stage"] == stage]

    assert losses(mixed, 1) == pytest.approx(losses(plain, 1), rel=1e-6)  # stage 1 does not mix
    plain_stage2 = losses(plain, 2)[:2]  # the resume test may have added a third epoch to the plain run
    assert len(plain_stage2) == len(losses(mixed, 2)) == 2
    assert losses(mixed, 2) != pytest.approx(plain_stage2, rel=1e-3)
    assert "mixup: 2.0" in (tmp_path / "tiny" / "config.yaml").read_text()
