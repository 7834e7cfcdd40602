"""Evidence crops under hostile POS ids, with evidence off, and on a full disk: a crop's name never comes
from the POS, no image is written unless configured, and a crop that can't be written never costs its flag."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from edge.challenge.late_crops import FlagKey, LateCrops

from mounts import tmpfs
from pos_scenario import replay, scenario_config

CROP_NAME = r"run\d+-txn\d+-track\d+(-\d+)?\.jpg"


def flags(db: Path) -> list[str | None]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return [row[0] for row in connection.execute("SELECT evidence FROM alerts WHERE kind = 'flag' ORDER BY id")]


def hostile_script(scenario: Path, folder: Path) -> Path:
    """The scenario's POS events and video, with till and transaction ids that are paths."""
    out = folder / "hostile"
    out.mkdir()
    shutil.copy(scenario / "till.mp4", out / "till.mp4")
    lines = []
    for line in (scenario / "pos.jsonl").read_text().splitlines():
        event = json.loads(line)
        event["till_id"] = "../../till/../" + event["till_id"]
        if "transaction_id" in event:
            event["transaction_id"] = "/tmp/../../" + event["transaction_id"] + "/x"
        lines.append(json.dumps(event))
    (out / "pos.jsonl").write_text("\n".join(lines) + "\n")
    return out


def images(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.suffix.lower() in {".jpg", ".jpeg", ".png"}]


def test_path_like_pos_ids_never_name_a_crop(tmp_path, scenario, tiny_model):
    script = hostile_script(scenario, tmp_path)
    config = scenario_config(tmp_path, tiny_model, evidence={"enabled": True})
    db = tmp_path / "state" / "agecam.db"
    assert replay(config, script, db) == 0
    crops = [Path(crop) for crop in flags(db)]
    assert crops and all(crop is not None for crop in crops)
    evidence = tmp_path / "state" / "evidence"
    assert sorted(images(tmp_path)) == sorted(crops) and all(crop.parent == evidence for crop in crops)
    assert all(re.fullmatch(CROP_NAME, crop.name) for crop in crops)


def test_no_image_is_written_when_evidence_is_off(tmp_path, scenario, tiny_model):
    config = scenario_config(tmp_path, tiny_model)
    db = tmp_path / "state" / "agecam.db"
    assert replay(config, scenario, db) == 0
    assert flags(db) and all(crop is None for crop in flags(db))
    assert images(tmp_path) == [] and not (tmp_path / "state" / "evidence").exists()


@pytest.fixture
def small_disk(tmp_path):
    """STATE_DIR/evidence on a 64 KiB tmpfs (needs root)."""
    with tmpfs(tmp_path / "state" / "evidence", "64k") as folder:
        yield folder


def test_a_full_disk_leaves_no_partial_crop_and_the_run_goes_on(small_disk, tmp_path, scenario, tiny_model):
    noise = np.random.default_rng(0).integers(0, 256, (160, 160, 3), np.uint8)  # ~25 KB as JPEG: 2 fit
    crops = LateCrops(tmp_path / "state", 30)  # what a run saves flags' crops through
    saved = [crops.save(f"run0-txn{number}-track1", noise, FlagKey(0, number, 0.0)) for number in range(6)]
    assert saved[0] is not None and saved[-1] is None
    assert sorted(path.name for path in small_disk.iterdir()) == sorted(Path(p).name for p in saved if p)
    with contextlib.suppress(OSError), (small_disk / "filler").open("wb") as filler:  # whatever room is left
        while True:
            filler.write(b"\0" * 512)
            filler.flush()
    config = scenario_config(tmp_path, tiny_model, evidence={"enabled": True})
    db = tmp_path / "agecam.db"  # the event log elsewhere: only the evidence folder is full
    assert replay(config, scenario, db) == 0
    assert flags(db) and all(crop is None for crop in flags(db)), "each flag kept, without a crop"
    crops = images(small_disk)  # the crops saved before the disk filled, whole; no partial one from the run
    assert len(crops) == len([path for path in saved if path]) and all(path.stat().st_size > 0 for path in crops)
