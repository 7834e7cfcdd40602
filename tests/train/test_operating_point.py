"""Models compared at the same minor recall (train/operating_point.py), on probabilities with a known answer:
the risk that catches a share of minors, the 30+ photos that reach it, and a paired interval that tells a
model that separates the ages better from one that does not."""

from __future__ import annotations

import numpy as np
import pytest

from train.intervals import Bootstrap
from train.operating_point import (
    adults_reached,
    eval_operating_points,
    operating_points,
    p_under_challenge,
    risk_catching,
)


def _photos(n: int, adult_shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(true ages, P(< 25)): minors' probabilities high, adults' lower by `adult_shift`, with noise."""
    rng = np.random.default_rng(seed)
    true = rng.choice([10.0, 15.0, 20.0, 27.0, 35.0, 50.0], n)
    base = np.where(true < 18, 0.7, np.where(true < 25, 0.5, 0.35 - adult_shift * (true >= 30)))
    return true, np.clip(base + rng.normal(0, 0.15, n), 0, 1)


def test_the_risk_is_the_largest_that_the_share_of_minors_reaches() -> None:
    p_minors = np.linspace(0.05, 1.0, 20)  # 0.05, 0.10, ..., 1.0
    risk = risk_catching(p_minors, 0.95)
    assert risk == pytest.approx(0.10)  # 19 of 20 reach it; 0.15 is reached by 18
    assert np.mean(p_minors >= risk) >= 0.95 and np.mean(p_minors >= 0.15) < 0.95
    assert risk_catching(p_minors, 1.0) == pytest.approx(0.05)
    true = np.array([10.0] * 20 + [40.0] * 4)
    adults = np.array([0.02, 0.08, 0.12, 0.9])
    assert adults_reached(np.concatenate([p_minors, adults]), true, 0.95) == pytest.approx(0.5)  # 0.12 and 0.9


def test_a_model_that_separates_the_ages_better_reaches_fewer_adults() -> None:
    true, plain = _photos(3000, 0.0, seed=1)
    _, sharper = _photos(3000, 0.15, seed=1)  # the same noise; adults 30+ 0.15 lower
    report = operating_points({"plain": plain, "sharper": sharper}, true, Bootstrap(resamples=200))
    for share in ("minors_0.95", "minors_0.98"):
        base, better = report["plain"][share], report["sharper"][share]
        assert base["risk"] == better["risk"]  # the minors are the same photos with the same probabilities
        assert better["over_30_reached"] < base["over_30_reached"]
        low, high = better["minus_plain"]["ci95"]
        assert low <= better["minus_plain"]["value"] <= high < 0
        assert base["ci95"][0] <= base["over_30_reached"] <= base["ci95"][1]


def test_a_model_compared_with_itself_differs_by_nothing_and_repeats_with_the_seed() -> None:
    true, p = _photos(500, 0.1, seed=2)
    report = operating_points({"a": p, "b": p.copy()}, true, Bootstrap(resamples=100, seed=3))
    assert report["b"]["minors_0.98"]["minus_a"] == {"value": 0.0, "ci95": [0.0, 0.0]}
    assert report == operating_points({"a": p, "b": p.copy()}, true, Bootstrap(resamples=100, seed=3))
    assert report != operating_points({"a": p, "b": p.copy()}, true, Bootstrap(resamples=100, seed=4))


def test_p_under_25_is_the_mass_below_25() -> None:
    probs = np.zeros((2, 101))
    probs[0, 20], probs[1, 24], probs[1, 25] = 1.0, 0.3, 0.7
    assert p_under_challenge(probs, 0).tolist() == pytest.approx([1.0, 0.3])


def test_a_set_without_minors_or_adults_gives_nan_not_an_error() -> None:
    assert np.isnan(risk_catching(np.array([]), 0.95))
    assert np.isnan(adults_reached(np.array([0.5, 0.2]), np.array([40.0, 50.0]), 0.95))  # no minors
    assert np.isnan(adults_reached(np.array([0.5, 0.2]), np.array([10.0, 20.0]), 0.95))  # no one aged 30+
    true = np.array([10.0, 12.0, 40.0])  # resamples often draw no minor or no adult; the rest still count
    report = operating_points({"a": np.array([0.9, 0.8, 0.1])}, true, Bootstrap(resamples=200))
    assert report["a"]["minors_0.95"]["over_30_reached"] == 0.0 and report["a"]["minors_0.95"]["ci95"] == [0.0, 0.0]


def test_eval_reports_one_model_and_nothing_without_minors_or_adults() -> None:
    """`agecam eval` reports one model's entry; a set lacking minors or anyone aged 30+ gets None, not NaN."""
    true = np.array([10.0, 15.0, 16.0, 35.0, 40.0, 50.0])
    p = np.array([0.9, 0.6, 0.4, 0.5, 0.3, 0.1])
    boot = Bootstrap(resamples=100)
    points = eval_operating_points(p, true, boot)
    assert points == operating_points({"model": p}, true, boot)["model"]
    assert points["minors_0.95"]["risk"] == 0.4 and points["minors_0.95"]["over_30_reached"] == 0.3333
    assert eval_operating_points(p[3:], true[3:], boot) is None  # adults only
    assert eval_operating_points(p[:3], true[:3], boot) is None  # minors only
