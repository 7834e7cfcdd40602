"""Age-assurance figures the way NIST FATE and ACCS evaluations report them, each with a 95 % bootstrap interval:
MAE and the signed mean error, Challenge 25 rates, the share of each teen age estimated under 25, false alarms
by adult age band, the share within 2 and 5 years, and MAE and the Challenge 25 rates by gender and by race
where the labels have them.
"""

from __future__ import annotations

import numpy as np

from train.intervals import Bootstrap

CHALLENGE_AGE = 25
TEEN_YEARS = range(13, 18)
ADULT_BANDS = {"25-29": (25, 30), "30-39": (30, 40), "40+": (40, 200)}
WITHIN_YEARS = (2, 5)
# UTKFace's coding of its gender and race columns (labels.csv keeps the codes).
GROUP_NAMES = {
    "gender": {"0": "male", "1": "female"},
    "race": {"0": "White", "1": "Black", "2": "Asian", "3": "Indian", "4": "Other"},
}


def challenge_outcomes(true: np.ndarray, under: np.ndarray) -> dict[str, np.ndarray]:
    """The 0/1 outcomes behind the Challenge 25 rates (train.metrics.age_metrics' keys)."""
    return {
        "c25_minor_recall": under[true < 18],
        "c25_teen_recall": under[(true >= 13) & (true < 18)],
        "c25_false_alarm": under[true >= CHALLENGE_AGE],
    }


def _group(true: np.ndarray, err: np.ndarray, under: np.ndarray, boot: Bootstrap) -> dict[str, object]:
    rates = {key: boot.estimate(values) for key, values in challenge_outcomes(true, under).items()}
    return {"n": int(true.size), "mae": boot.estimate(err), **rates}


def assurance_metrics(
    true: np.ndarray, pred: np.ndarray, groups: dict[str, np.ndarray], boot: Bootstrap
) -> dict[str, object]:
    """The report's interval figures; `groups` maps an attribute (gender, race) to its labels, -1 for none."""
    true, pred = np.asarray(true, np.float64), np.asarray(pred, np.float64)
    signed, under = pred - true, pred < CHALLENGE_AGE
    err = np.abs(signed)
    report: dict[str, object] = {
        "bootstrap": boot.describe(),
        "ci95": {
            "mae": boot.interval(err),
            "mean_error": boot.interval(signed),
            **{key: boot.interval(values) for key, values in challenge_outcomes(true, under).items()},
        },
        "under25_by_age": {str(year): boot.estimate(under[np.floor(true) == year]) for year in TEEN_YEARS},
        "false_alarm_by_age": {
            band: boot.estimate(under[(true >= low) & (true < high)]) for band, (low, high) in ADULT_BANDS.items()
        },
        "within_years": {str(years): boot.estimate(err <= years) for years in WITHIN_YEARS},
    }
    for attribute, labels in groups.items():
        found = sorted(set(labels.tolist()) - {-1})
        if found:
            names = GROUP_NAMES.get(attribute, {})
            report[f"by_{attribute}"] = {
                str(label): {"name": names.get(str(label), str(label)), **_group(true[m], err[m], under[m], boot)}
                for label in found
                for m in [labels == label]
            }
    return report


def paired_differences(true: np.ndarray, base: np.ndarray, other: np.ndarray, boot: Bootstrap) -> dict[str, object]:
    """other - base per photo (absolute error, or the under-25 outcome within each Challenge 25 group), with a
    bootstrap interval: two estimates of the same photos, compared photo by photo."""
    true, base, other = (np.asarray(values, np.float64) for values in (true, base, other))
    diffs = {"mae": np.abs(other - true) - np.abs(base - true)}
    base_rates = challenge_outcomes(true, base < CHALLENGE_AGE)
    other_rates = challenge_outcomes(true, other < CHALLENGE_AGE)
    diffs |= {key: other_rates[key].astype(np.float64) - base_rates[key] for key in base_rates}
    return {key: boot.estimate(values) for key, values in diffs.items()}
