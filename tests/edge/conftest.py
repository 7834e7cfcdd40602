"""Fixtures of the small till scenario (see tests/pos_scenario.py), shared by the POS tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge import cli

from pos_scenario import SCENARIO_SEED, make_faces, replay, scenario_config


@pytest.fixture(scope="session")
def scenario(tmp_path_factory, assets) -> Path:
    """till.mp4 (6 customers, 10 fps, 480x360), pos.jsonl and truth.json."""
    root = tmp_path_factory.mktemp("scenario")
    faces = make_faces(assets / "data" / "utkface", root / "faces")
    out = root / "till"
    args = ["simulate", "--faces", faces, "--out", out, "--customers", "6", "--seed", str(SCENARIO_SEED)]
    assert cli.main([str(a) for a in [*args, "--split", "", "--fps", "10", "--size", "480x360"]]) == 0
    return out


@pytest.fixture(scope="session")
def default_run(tmp_path_factory, scenario, tiny_model) -> tuple[Path, Path, Path]:
    """The scenario replayed once with the default settings (but the policy scale): folder, config, db."""
    folder = tmp_path_factory.mktemp("default-run")
    config = scenario_config(folder, tiny_model)
    db = folder / "state" / "agecam.db"
    assert replay(config, scenario, db) == 0
    return folder, config, db
