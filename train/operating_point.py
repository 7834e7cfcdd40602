"""What a model's P(age < 25) costs per photo at the risk that catches a given share of minors: set
`policy.risk` so that at least that share of the minors' photos reach it, and count the photos of people aged
30+ that reach it too. Two models compared this way are compared at the same minor recall, which the
Challenge 25 rates of their point estimates are not, and over every photo of `valid` rather than the few dozen
minors of a simulated till. A photo is not a customer (the till fuses several frames, which sharpens the
probability), so these figures rank models; the scenarios of docs/training.md choose the default risk.
"""

from __future__ import annotations

import math

import numpy as np

from edge.vision.model_contract import probability_below
from train.assurance import CHALLENGE_AGE
from train.intervals import Bootstrap

MINOR_SHARES = (0.95, 0.98)
ADULT_AGE = 30  # the scenarios' and targets' band for a flag that is plainly wrong


def risk_catching(p_minors: np.ndarray, share: float) -> float:
    """The largest risk that at least `share` of the minors' probabilities reach (p >= risk); NaN without minors."""
    if p_minors.size == 0:
        return math.nan
    ordered = np.sort(p_minors)[::-1]
    return float(ordered[max(math.ceil(share * ordered.size) - 1, 0)])


def adults_reached(p_under: np.ndarray, true: np.ndarray, share: float) -> float:
    """The share of photos aged 30+ whose probability reaches the risk that catches `share` of the minors;
    NaN where the photos have no minors or no one aged 30+ (a small set's resample can lack either)."""
    adults, risk = p_under[true >= ADULT_AGE], risk_catching(p_under[true < 18], share)
    if adults.size == 0 or math.isnan(risk):
        return math.nan
    return float(np.mean(adults >= risk))


def p_under_challenge(tempered_probs: np.ndarray, age_min: float) -> np.ndarray:
    """P(age < 25) per photo from age_probs already tempered by the model's temperature."""
    return probability_below(tempered_probs, age_min, CHALLENGE_AGE)


def operating_points(
    p_under: dict[str, np.ndarray], true: np.ndarray, boot: Bootstrap, shares: tuple[float, ...] = MINOR_SHARES
) -> dict[str, dict[str, object]]:
    """Per model (the first is the base) and minor share: the risk, the 30+ share that reaches it with its
    interval, and for every later model the paired difference from the base. Each resample draws the same
    photos for every model and sets each model's risk again on them."""
    true = np.asarray(true, np.float64)
    names, base = list(p_under), next(iter(p_under))
    stats = {name: {share: [] for share in shares} for name in names}
    for rows in boot.index_draws(true.size):
        for name in names:
            for share in shares:
                stats[name][share].append(adults_reached(p_under[name][rows], true[rows], share))
    reached = {name: {share: adults_reached(p_under[name], true, share) for share in shares} for name in names}
    report: dict[str, dict[str, object]] = {}
    for name in names:
        report[name] = {}
        for share in shares:
            point = {
                "risk": round(risk_catching(p_under[name][true < 18], share), 4),
                "over_30_reached": round(reached[name][share], 4),
                "ci95": boot.percentiles(stats[name][share]),
            }
            if name != base:
                point[f"minus_{base}"] = {
                    "value": round(reached[name][share] - reached[base][share], 4),
                    "ci95": boot.percentiles(np.subtract(stats[name][share], stats[base][share])),
                }
            report[name][f"minors_{share:g}"] = point
    return report


def eval_operating_points(p_under: np.ndarray, true: np.ndarray, boot: Bootstrap) -> dict[str, object] | None:
    """`agecam eval`'s figures for one model (operating_points' entry for it); None where the photos have no
    minor or no one aged 30+, since then no risk is set or nothing can reach it."""
    true = np.asarray(true, np.float64)
    if not (true < 18).any() or not (true >= ADULT_AGE).any():
        return None
    return operating_points({"model": p_under}, true, boot)["model"]
