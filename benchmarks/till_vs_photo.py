"""How far the till's age for a customer lies from the model's age for the same photo: each simulated
customer's fused estimate, as their transaction recorded it, minus `agecam eval`'s estimate of the photo the
simulation drew them from (the same model). What is left is what the till adds: the rendering into a video
(size, blur, noise, compression) and which frames were sampled and how they were weighed.

    agecam eval --model M --data ../shared/data/appa-real --out EVAL   # EVAL/predictions.csv
    python benchmarks/till_vs_photo.py SCENARIO RUN.db [SCENARIO RUN.db ...] --predictions EVAL/predictions.csv

SCENARIO is an `agecam simulate` folder, RUN.db the event log of `agecam replay --pos` on it with model M.
Customers are grouped by real age (edge.scenario.score.AGE_BANDS).
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
from pathlib import Path

import numpy as np
from risk_thresholds import scenario_parts  # a sibling script: this folder is on the path when run

from edge.scenario.score import AGE_BANDS, age_band, load_truth
from edge.store.queries import scenario_run


def photo_estimates(files: list[Path]) -> dict[str, float]:
    """File name -> `agecam eval`'s estimate, from its predictions.csv files."""
    estimates = {}
    for file in files:
        with file.open(newline="") as stream:
            estimates |= {row["file_name"]: float(row["age"]) for row in csv.DictReader(stream)}
    return estimates


def differences(scenario: Path, db: Path, photos: dict[str, float]) -> list[tuple[str, float]]:
    """(age band, till estimate - photo estimate) for each customer whose transaction recorded an age."""
    run = scenario_run(db, None)
    out = []
    for customer in load_truth(scenario):
        txn = run.get(customer["transaction_id"], {}).get("txn") or {}
        photo = photos.get(Path(customer["file"]).name)
        if txn.get("age") is None or photo is None:
            continue
        out.append((age_band(customer["real_age"]), float(txn["age"]) - photo))
    return out


def summary(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"customers": 0, "mean": None, "median": None, "sd": None}
    array = np.array(values)
    return {
        "customers": len(values),
        "mean": round(float(array.mean()), 2),
        "median": round(float(np.median(array)), 2),
        "sd": round(float(array.std()), 2),
    }


def report(found: list[tuple[str, float]]) -> dict[str, dict]:
    bands = {band: summary([d for b, d in found if b == band]) for band in AGE_BANDS}
    return {"all": summary([d for _, d in found]), **bands}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="+", metavar="SCENARIO RUN.db")
    parser.add_argument("--predictions", nargs="+", type=Path, required=True, help="agecam eval's predictions.csv")
    args = parser.parse_args()
    photos = functools.cache(lambda: photo_estimates(args.predictions))  # read once the pairs are checked
    parts = scenario_parts(parser, args, lambda scenario, db: differences(scenario, db, photos()))
    print(json.dumps({name: report(found) for name, found in parts.items()}, indent=2))


if __name__ == "__main__":
    main()
