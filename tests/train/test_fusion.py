"""Fusion of several samples' age distributions: identical samples change nothing, the geometric mean is
sharper than the mean where samples disagree, and the report measures every fusion the same way."""

from __future__ import annotations

import numpy as np

from train.fusion import fusion_report, linear_pool, log_linear_pool

AGES = np.arange(0, 101)


def _gaussians(centres: np.ndarray, width: float) -> np.ndarray:
    probs = np.exp(-0.5 * ((AGES - centres[..., None]) / width) ** 2)
    return probs / probs.sum(axis=-1, keepdims=True)


def test_pooling_identical_samples_returns_that_sample() -> None:
    one = _gaussians(np.array([[30.0], [50.0]]), 4.0)
    views = np.repeat(one, 3, axis=1)
    assert np.allclose(linear_pool(views), one[:, 0]) and np.allclose(log_linear_pool(views), one[:, 0], atol=1e-9)


def test_where_samples_disagree_the_geometric_mean_is_narrower_than_the_mean() -> None:
    views = _gaussians(np.array([[20.0, 30.0]]), 4.0)
    spread = [float(np.sqrt(p @ AGES**2 - (p @ AGES) ** 2)) for p in (linear_pool(views)[0], log_linear_pool(views)[0])]
    assert spread[1] < spread[0]
    assert np.isclose(log_linear_pool(views)[0] @ AGES, 25.0, atol=0.01)


def test_the_report_covers_every_fusion_with_and_without_a_temperature() -> None:
    rng = np.random.default_rng(0)
    true = rng.uniform(5, 70, 400)
    views = _gaussians(true[:, None] + rng.normal(0, 4, (400, 3)), 5.0)
    report = fusion_report(views, true, 0)
    for name in ("single view", "linear pool", "log-linear pool"):
        assert set(report[name]) == {"T=1", "cross-fitted T"}
        assert len(report[name]["cross-fitted T"]["temperatures"]) == 2
    difference = report["log-linear minus linear, cross-fitted T"]["p_under_25"]
    assert difference["ci95"][0] <= difference["value"] <= difference["ci95"][1]
