"""Issue #13's training measures for faces never seen: the `domains` and `framing` augmentations (and the crops'
framing they answer), age balancing, keeping the last (averaged) epoch, held-out datasets, and `agecam
candidates` on real photos with real tiny runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from edge.errors import EXIT_DATA, EXIT_TRAIN
from train.augment import DOMAIN_LOOKS, tight_framing, view, walking_blur
from train.candidates import PlannedRun, markdown, plan, summarise
from train.loop import EpochSettings, balanced_weights


@pytest.fixture(scope="module")
def crop(tiny_appa: Path) -> np.ndarray:
    image = cv2.imread(str(next((tiny_appa / "images").iterdir())))
    return cv2.resize(image, (224, 224))


def test_domains_views_are_repeatable_and_include_unseen_looks(crop: np.ndarray) -> None:
    assert view(crop, 0, 7, 0, "domains") is crop  # view 0 stays the clean crop
    first, again = view(crop, 0, 7, 3, "domains"), view(crop, 0, 7, 3, "domains")
    assert np.array_equal(first, again) and first.shape == crop.shape and first.dtype == np.uint8
    views = [view(crop, 0, index, 1, "domains") for index in range(60)]
    till = [view(crop, 0, index, 1, "till") for index in range(60)]
    grey = sum(np.array_equal(v[..., 0], v[..., 1]) and np.array_equal(v[..., 1], v[..., 2]) for v in views)
    assert 2 <= grey <= 30  # grayscale is one look of six, drawn for a share of the views
    assert not any(np.array_equal(v[..., 0], v[..., 2]) for v in till)  # the till profile never greys
    contrast = np.mean([v.std() for v in views]), np.mean([v.std() for v in till])
    assert contrast[0] < contrast[1]  # faded, scanned and small faces: less contrast on average


def test_each_domain_look_alone_changes_the_face_its_own_way(crop: np.ndarray) -> None:
    looks = {name: look(crop, np.random.default_rng(3)) for name, look in DOMAIN_LOOKS.items()}
    assert all(out.shape == crop.shape and out.dtype == np.uint8 for out in looks.values())
    assert all(not np.array_equal(out, crop) for out in looks.values())
    grey = looks["grey"]
    assert np.array_equal(grey[..., 0], grey[..., 2]) and not np.array_equal(crop[..., 0], crop[..., 2])
    assert looks["low_contrast"].std() < 0.75 * crop.std()

    def sharpness(image: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())

    assert sharpness(looks["small"]) < 0.5 * sharpness(crop) and sharpness(looks["scanner"]) < sharpness(crop)


def test_tight_framing_keeps_the_middle_and_repeats_its_border(crop: np.ndarray) -> None:
    out = tight_framing(crop, np.random.default_rng(5), low=0.625, high=0.625)  # a photo ending at the face box
    keep, start = 140, 42  # the face box is 224 / 1.6 = 140 px in a crop with margin 0.3
    assert out.shape == crop.shape and out.dtype == np.uint8
    middle = slice(start, start + keep)
    assert np.array_equal(out[middle, middle], crop[middle, middle])
    assert np.array_equal(out[:, :start], np.repeat(out[:, start : start + 1], start, axis=1))  # left: one column
    assert np.array_equal(out[-start:], np.repeat(out[-start - 1 : -start], start, axis=0))  # bottom: one row
    assert not np.array_equal(out[:, :start], crop[:, :start])


def test_framing_views_are_the_till_views_with_half_of_them_framed_tight(crop: np.ndarray) -> None:
    assert view(crop, 0, 7, 0, "framing") is crop  # view 0 stays the clean crop
    framing = [view(crop, 0, index, 2, "framing") for index in range(60)]
    till = [view(crop, 0, index, 2, "till") for index in range(60)]
    framed = [f for f, t in zip(framing, till, strict=True) if not np.array_equal(f, t)]
    assert 15 <= len(framed) <= 45  # a tight framing for about half the views, the others as the till draws them
    side = (224 - round(0.8125 * 224)) // 2  # the widest framing keeps 182 px: 21 repeated columns a side at least
    assert all(np.array_equal(f[:, :side], np.repeat(f[:, side : side + 1], side, axis=1)) for f in framed)


def _detail(image: np.ndarray, axis: int) -> float:
    """Mean absolute step between neighbouring pixels along an axis (1: across the row, 0: down the column)."""
    return float(np.abs(np.diff(image.astype(np.float32), axis=axis)).mean())


def test_walking_blur_streaks_along_the_walk_and_keeps_the_brightness(crop: np.ndarray) -> None:
    out = walking_blur(crop, np.random.default_rng(2), low=0.08, high=0.08)  # an 18 px streak
    assert out.shape == crop.shape and out.dtype == np.uint8
    assert _detail(out, 1) < 0.5 * _detail(crop, 1)  # detail along the walk goes
    kept_across, kept_along = _detail(out, 0) / _detail(crop, 0), _detail(out, 1) / _detail(crop, 1)
    assert kept_across > 1.2 * kept_along  # detail across the walk stays more (the streak tilts up to 20 degrees)
    assert abs(float(out.mean()) - float(crop.mean())) < 1.0  # a normalised kernel: no darkening at the edges
    short = walking_blur(crop, np.random.default_rng(2), low=0.02, high=0.02)
    assert _detail(out, 1) < _detail(short, 1) < _detail(crop, 1)  # longer streaks blur more


def test_motion_views_are_the_framing_views_with_a_third_of_them_streaked(crop: np.ndarray) -> None:
    assert view(crop, 0, 7, 0, "motion") is crop  # view 0 stays the clean crop
    motion = [view(crop, 0, index, 2, "motion") for index in range(90)]
    framing = [view(crop, 0, index, 2, "framing") for index in range(90)]
    pairs = [(m, f) for m, f in zip(motion, framing, strict=True) if not np.array_equal(m, f)]
    assert 15 <= len(pairs) <= 45  # about 30 of 90 streaked, the others exactly as `framing` draws them
    assert all(_detail(m, 1) < _detail(f, 1) for m, f in pairs)


def test_balanced_weights_favour_rare_ages() -> None:
    ages = torch.tensor([22.0] * 90 + [3.0] * 10)
    assert balanced_weights(ages, 0.0) is None
    full = balanced_weights(ages, 1.0)
    assert full[-1] / full[0] == pytest.approx(9.0) and full.mean() == pytest.approx(1.0)
    half = balanced_weights(ages, 0.5)
    assert half[-1] / half[0] == pytest.approx(3.0)
    settings = EpochSettings(
        ages, None, 20, torch.Generator().manual_seed(0), torch.device("cpu"), 2.0, 0.1, None, full
    )
    drawn = torch.cat(settings.batches(len(ages)))
    assert len(drawn) == 100 and 30 <= int((drawn >= 90).sum()) <= 70  # about half the draws are the rare tenth


def test_holdout_must_name_a_dataset(run_cli, tiny_appa: Path, tmp_path: Path, capsys) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("holdout: [appa-real]\n")
    argv = ["train", "--recipe", str(recipe), "--data", str(tiny_appa), "--runs-dir", str(tmp_path / "runs")]
    assert run_cli([*argv, "--cache-dir", str(tmp_path / "crops")]) == EXIT_DATA
    line = capsys.readouterr().out.strip()
    assert "holdout 'appa-real'" in line and tiny_appa.name in line and "\n" not in line
    assert not (tmp_path / "runs").exists()


def test_candidates_needs_two_datasets(run_cli, tiny_appa: Path, tmp_path: Path, capsys) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\n")
    argv = ["candidates", str(recipe), "--data", str(tiny_appa), "--runs-dir", str(tmp_path / "runs")]
    assert run_cli(argv) == EXIT_TRAIN
    assert "two or more datasets" in capsys.readouterr().out and not (tmp_path / "runs").exists()


def test_plan_covers_each_holdout_per_seed() -> None:
    runs = plan({"a": "a.yaml"}, ["appa", "utk"], [0, 1])
    assert [r.name for r in runs[:3]] == ["a-seed0-all", "a-seed0-without-appa", "a-seed0-without-utk"]
    assert len(runs) == 6 and {r.seed for r in runs} == {0, 1}


def test_summary_scores_the_mean_of_in_domain_and_cross_figures() -> None:
    def rows(appa: float, utk: float, children: float | None = None) -> dict[str, dict]:
        """children: the signed error for 0-12 on appa, as runs trained since it was recorded have it."""
        by_bin = {} if children is None else {"mean_error_by_age_bin": {"0-12": children, "13-17": -9.0}}
        return {"appa": {"mae": appa, "c25_teen_recall": 0.9, **by_bin}, "utk": {"mae": utk, "c25_teen_recall": None}}

    valid = {}
    for recipe, shift in (("weak", 1.0), ("strong", 0.0)):
        for seed in (0, 1):
            children = 2.0 + seed if recipe == "strong" else None
            valid[PlannedRun(recipe, None, seed, None)] = rows(5 + shift + seed, 4 + shift)
            valid[PlannedRun(recipe, None, seed, "appa")] = rows(7 + shift, 4.5, children)  # appa unseen: cross
            valid[PlannedRun(recipe, None, seed, "utk")] = rows(5.5, 6 + shift)
    devices = {run: "cuda" if run.seed == 0 else "cpu" for run in valid}
    summary = summarise(valid, ["weak", "strong"], ["appa", "utk"], [0, 1], devices)
    strong = summary["recipes"]["strong"]
    assert strong["trained_on"] == {"cpu": 3, "cuda": 3}
    assert strong["figures"]["appa valid"]["mae"] == {"per_seed": [5.0, 6.0], "mean": 5.5, "spread": 1.0}
    assert strong["figures"]["appa cross"]["mae"]["mean"] == 7.0 and strong["figures"]["utk cross"]["mae"]["mean"] == 6
    assert strong["score"] == pytest.approx((5.5 + 7 + 4 + 6) / 4)
    assert summary["chosen"] == "strong" and summary["recipes"]["weak"]["score"] == pytest.approx(strong["score"] + 1)
    assert strong["figures"]["appa valid"]["teens_under_25"]["mean"] == 0.9
    assert strong["figures"]["utk valid"]["teens_under_25"] == {"per_seed": [None, None], "mean": None, "spread": None}
    children = strong["figures"]["appa cross"]["children_mean_error"]
    assert children == {"per_seed": [2.0, 3.0], "mean": 2.5, "spread": 1.0}
    assert strong["figures"]["appa valid"]["children_mean_error"]["mean"] is None  # those runs did not record it
    text = markdown(summary)
    line = "strong: children's (0-12) mean error on the dataset never seen (+: older): appa cross +2.5, utk cross -"
    assert line in text.splitlines()
    assert "weak: children" not in text


def test_candidates_trains_every_holdout_and_resumes(
    run_cli, tiny_appa: Path, small_utk: Path, tmp_path: Path, capsys
) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        "name: tiny\ncut: 14\nviews: 2\naugment: domains\nbalance: 0.5\n"
        "stage1: {epochs: 2, lr: 0.001, batch_size: 16}\nstage2: {epochs: 2, lr: 0.0006, batch_size: 8}\n"
    )
    runs = tmp_path / "runs"
    argv = ["candidates", str(recipe), "--data", str(tiny_appa), str(small_utk), "--seeds", "0"]
    argv += ["--runs-dir", str(runs), "--cache-dir", str(tmp_path / "crops"), "--threads", "2"]
    assert run_cli(argv) == 0
    summary = json.loads((runs / "candidates.json").read_text())
    appa, utk = tiny_appa.name, small_utk.name
    assert set(summary["recipes"]["tiny"]["figures"]) == {
        f"{appa} valid",
        f"{appa} cross",
        f"{utk} valid",
        f"{utk} cross",
    }
    trained = {
        name: json.loads((runs / f"tiny-seed0-{name}" / "metrics.json").read_text())
        for name in ("all", f"without-{appa}", f"without-{utk}")
    }
    assert trained[f"without-{appa}"]["train_photos"] == 16 and trained[f"without-{utk}"]["train_photos"] == 24
    assert trained["all"]["train_photos"] == 40
    for metrics in trained.values():  # the last epoch is kept, never the best on valid
        assert metrics["kept"] == "last" and (metrics["best"]["stage"], metrics["best"]["epoch"]) == (2, 2)
    # Trunk outputs are cached per dataset: the runs with one held out reuse what the first run computed.
    assert [trained[name]["trunk_cache"] for name in trained] == ["miss", "hit", "hit"]
    cross = summary["recipes"]["tiny"]["figures"][f"{appa} cross"]["mae"]["mean"]
    assert cross == pytest.approx(trained[f"without-{appa}"]["valid"][appa]["mae"], abs=1e-3)
    children = trained[f"without-{utk}"]["valid"][utk]["mean_error_by_age_bin"]["0-12"]  # the trainer records it
    assert children is not None  # small_utk's valid split has children
    figure = summary["recipes"]["tiny"]["figures"][f"{utk} cross"]["children_mean_error"]["mean"]
    assert figure == pytest.approx(children, abs=1e-3)
    device = trained["all"]["device"]  # each run's device, read from its metrics.json
    assert device in ("cpu", "cuda") and summary["recipes"]["tiny"]["trained_on"] == {device: 3}
    assert "| tiny (chosen) |" in (runs / "candidates.md").read_text()
    assert (runs / "candidates.md").read_text().splitlines()[2].endswith(f"| {device} 3 |")
    stamp = (runs / "tiny-seed0-all" / "metrics.json").stat().st_mtime_ns
    capsys.readouterr()
    assert run_cli(argv) == 0  # a second call reads the finished runs and retrains nothing
    assert (runs / "tiny-seed0-all" / "metrics.json").stat().st_mtime_ns == stamp
    assert json.loads((runs / "candidates.json").read_text()) == summary


def test_crop_framing_finds_utkface_crops_mostly_border_and_appa_reals_mostly_photo(
    tiny_appa: Path, tiny_utk: Path
) -> None:
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "crop_framing.py"
    argv = [sys.executable, str(script), "--data", str(tiny_appa), str(tiny_utk)]
    report = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    appa, utk = report[str(tiny_appa)], report[str(tiny_utk)]
    assert (appa["photos"], utk["photos"]) == (12, 16) and utk["faces"] == 16
    assert utk["outside_mean"] > 0.5 and utk["crops_over_1_percent_outside"] == 1.0  # chips cut at the face
    assert appa["outside_mean"] < 0.2  # photos with context around the face
