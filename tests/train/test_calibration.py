"""Bootstrap intervals and calibration on distributions with a known answer: a temperature the fit must
recover, a miscalibration of known size, intervals that narrow with more data and repeat with the seed."""

from __future__ import annotations

import numpy as np
import pytest

from edge.vision.model_contract import temper_probs
from train.assurance import assurance_metrics, paired_differences
from train.calibration import below, calibration_report, ece, fit_temperature, nll
from train.intervals import Bootstrap
from train.metrics import age_metrics

AGES = np.arange(0, 101)


def _world(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per photo a true age distribution (a Gaussian of 2-9 years around a random age) and an age drawn from it."""
    rng = np.random.default_rng(seed)
    centres, widths = rng.uniform(5, 80, n), rng.uniform(2, 9, n)
    probs = np.exp(-0.5 * ((AGES[None, :] - centres[:, None]) / widths[:, None]) ** 2)
    probs /= probs.sum(axis=1, keepdims=True)
    true = np.array([rng.choice(AGES, p=row) for row in probs], dtype=np.float64)
    return probs, true


def test_the_fit_recovers_the_temperature_of_an_overconfident_model() -> None:
    calibrated, true = _world(3000, seed=1)
    overconfident = temper_probs(calibrated, 0.5)  # p^2: too sure; T = 2 undoes it exactly
    temperature = fit_temperature(overconfident, true, 0)
    assert temperature == pytest.approx(2.0, rel=0.08)
    assert fit_temperature(overconfident, true, 0) == temperature  # deterministic
    assert nll(overconfident, true, 0, temperature) < nll(overconfident, true, 0)
    before, after = (ece(below(p, 0, 25), (true < 25).astype(float)) for p in (overconfident, calibrated))
    assert after < before


def test_ece_of_a_known_miscalibration() -> None:
    outcome = np.array([1.0, 0.0] * 50)
    assert ece(np.full(100, 0.9), outcome) == pytest.approx(0.4)
    assert ece(np.where(outcome > 0, 0.95, 0.05), outcome) == pytest.approx(0.05)


def test_temperature_one_changes_nothing_and_the_report_fits_only_when_asked() -> None:
    probs, true = _world(400, seed=2)
    assert np.allclose(temper_probs(probs, 1.0), probs, atol=1e-9)
    shipped = calibration_report(probs, true, 0, 1.0, fit=False)
    assert "fitted_temperature" not in shipped and set(shipped["ece"]) == {"p_under_25", "p_under_18"}
    fitted = calibration_report(probs, true, 0, 1.0, fit=True)
    assert fitted["fitted_temperature"] == pytest.approx(1.0, rel=0.15)  # calibrated already


def test_bootstrap_intervals_repeat_with_the_seed_and_narrow_with_more_rows() -> None:
    rng = np.random.default_rng(3)
    small, large = rng.random(50) < 0.3, rng.random(2000) < 0.3
    boot = Bootstrap(resamples=500, seed=7)
    assert boot.interval(small) == boot.interval(small)
    assert Bootstrap(resamples=500, seed=8).interval(small) != boot.interval(small)
    (lo_s, hi_s), (lo_l, hi_l) = boot.interval(small), boot.interval(large)
    assert lo_l <= large.mean() <= hi_l and hi_l - lo_l < (hi_s - lo_s) / 3
    assert boot.estimate(np.array([])) == {"n": 0, "value": None, "ci95": None}


def test_assurance_figures_count_the_right_people() -> None:
    true = np.array([13, 13.5, 14, 17.9, 25, 29, 30, 45, 60, 16])
    pred = np.array([20, 30, 24, 26, 24, 31, 22, 50, 58, 18])
    gender = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, -1])
    report = assurance_metrics(true, pred, {"gender": gender, "race": np.full(10, -1)}, Bootstrap(resamples=100))
    assert report["under25_by_age"]["13"] == {"n": 2, "value": 0.5, "ci95": report["under25_by_age"]["13"]["ci95"]}
    assert report["under25_by_age"]["17"]["value"] == 0.0 and report["under25_by_age"]["15"]["n"] == 0
    assert [report["false_alarm_by_age"][band]["value"] for band in ("25-29", "30-39", "40+")] == [0.5, 1.0, 0.0]
    assert report["within_years"]["2"]["value"] == 0.4 and report["within_years"]["5"]["value"] == 0.5
    assert set(report["by_gender"]) == {"0", "1"} and "by_race" not in report  # no labels: no section
    assert report["by_gender"]["0"]["name"] == "male" and report["by_gender"]["0"]["n"] == 5


def test_mean_error_keeps_the_sign_that_mae_drops() -> None:
    """Children estimated older and adults younger: MAE adds them up, the mean error per bin shows which way."""
    true = np.array([5, 8, 40, 50], dtype=np.float64)
    pred = np.array([9, 12, 37, 47], dtype=np.float64)
    figures = age_metrics(true, pred)
    assert figures["mae"] == 3.5 and figures["mean_error"] == 0.5
    assert figures["mean_error_by_age_bin"]["0-12"] == 4.0 and figures["mean_error_by_age_bin"]["35-44"] == -3.0
    assert figures["mean_error_by_age_bin"]["13-17"] is None
    report = assurance_metrics(true, pred, {}, Bootstrap(resamples=200))
    low, high = report["ci95"]["mean_error"]
    assert -3.0 <= low <= 0.5 <= high <= 4.0 and report["ci95"]["mae"][0] >= 3.0


def test_paired_differences_compare_the_same_photos() -> None:
    true = np.array([14, 15, 16, 17, 30, 40, 50, 60], dtype=np.float64)
    base = np.array([27, 26, 20, 28, 24, 40, 50, 60], dtype=np.float64)
    better = np.array([16, 15, 18, 22, 30, 41, 50, 60], dtype=np.float64)  # every teen under 25, no false alarm
    boot = Bootstrap(resamples=200)
    same = paired_differences(true, base, base, boot)
    assert same["mae"]["value"] == 0 and same["mae"]["ci95"] == [0.0, 0.0]
    diff = paired_differences(true, base, better, boot)
    assert diff["mae"]["value"] == pytest.approx((2 + 0 + 2 + 5 + 0 + 1) / 8 - (13 + 11 + 4 + 11 + 6) / 8)
    assert diff["c25_teen_recall"]["value"] == 0.75 and diff["c25_teen_recall"]["n"] == 4
    assert diff["c25_false_alarm"]["value"] == -0.25 and diff["mae"]["ci95"][1] < 0
