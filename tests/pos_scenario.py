"""Helpers for the small till scenario from real UTKFace `valid` photos, shared by the POS tests.

The tiny test model reads age from crop brightness (tests/onnx_models.py), so the faces are made to
read young or old: half are darkened (gamma 2.5) and labelled 15, half are lightened and labelled 45.
With the policy threshold at 38 (the model's scale: darkened faces read about 30-36, lightened ones
about 40-44), the flags the policy should raise follow from the labels.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import yaml

from edge import cli

SCENARIO_SEED = 11  # 6 customers: minors sold alcohol with and without a check, adults without one
POLICY = {"threshold": 38, "minor_age": 37}


def make_faces(source: Path, out: Path, count: int = 8) -> Path:
    with (source / "labels.csv").open(newline="") as stream:
        rows = [r for r in csv.DictReader(stream) if r["split"] == "valid" and 25 <= int(r["real_age"]) <= 60]
    (out / "images").mkdir(parents=True)
    labels = ["file_name,real_age"]
    for index, row in enumerate(sorted(rows, key=lambda r: r["file_name"])[:count]):
        photo = cv2.imread(str(source / "images" / row["file_name"])).astype(np.float32) / 255
        young = index % 2 == 0
        photo = photo**2.5 if young else 1 - (1 - photo) * 0.4
        cv2.imwrite(str(out / "images" / f"face{index}.jpg"), (photo * 255).clip(0, 255).astype(np.uint8))
        labels.append(f"face{index}.jpg,{15 if young else 45}")
    (out / "labels.csv").write_text("\n".join(labels) + "\n")
    return out


def scenario_config(folder: Path, model: Path, **sections: dict) -> Path:
    data: dict = {"age_model": {"path": str(model)}, "state": {"dir": str(folder / "state")}, "policy": dict(POLICY)}
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def replay(config: Path, scenario: Path, db: Path, *extra: str) -> int:
    args = ["--config", config, "--log-level", "WARNING", "replay", scenario / "till.mp4", "--fast", "--json"]
    return cli.main([str(a) for a in [*args, "--pos", scenario / "pos.jsonl", "--db", db, *extra]])
