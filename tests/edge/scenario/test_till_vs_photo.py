"""benchmarks/till_vs_photo.py on a real replay of the simulated till: customers are matched to their photo's
estimate by file name and grouped by real age, and the difference is the till's minus the photo's."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "till_vs_photo.py"


def test_the_difference_is_the_recorded_age_minus_the_photos(default_run, scenario, tmp_path) -> None:
    _, _, db = default_run
    customers = json.loads((scenario / "truth.json").read_text())["customers"]
    with sqlite3.connect(db) as connection:
        recorded = dict(connection.execute("SELECT pos_transaction_id, age FROM transactions WHERE age IS NOT NULL"))
    photos = {Path(c["file"]).name for c in customers}
    rows = ["dataset,file_name,real_age,age,age_std,face"] + [f"x,{name},30,20.0,5.0,True" for name in sorted(photos)]
    predictions = tmp_path / "predictions.csv"
    predictions.write_text("\n".join(rows) + "\n")
    argv = [sys.executable, str(SCRIPT), str(scenario), str(db), "--predictions", str(predictions)]
    report = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)["all"]
    ages = [recorded[c["transaction_id"]] for c in customers if c["transaction_id"] in recorded]
    assert report["all"]["customers"] == len(ages) >= 4
    assert abs(report["all"]["mean"] - (sum(ages) / len(ages) - 20.0)) <= 0.006
    minors = [c for c in customers if c["real_age"] < 18 and c["transaction_id"] in recorded]
    assert report["minors"]["customers"] == len(minors) and report["18_24"]["customers"] == 0  # ages 15 and 45
    assert report["30_plus"]["customers"] == len(ages) - len(minors)


def test_a_photo_without_an_estimate_leaves_its_customer_out(default_run, scenario, tmp_path) -> None:
    _, _, db = default_run
    predictions = tmp_path / "predictions.csv"
    predictions.write_text("dataset,file_name,real_age,age,age_std,face\n")
    argv = [sys.executable, str(SCRIPT), str(scenario), str(db), "--predictions", str(predictions)]
    report = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)["all"]
    assert report["all"] == {"customers": 0, "mean": None, "median": None, "sd": None}
