"""Fixtures on real data from $AGECAM_ASSETS (CI: ../shared): small dataset folders built from real photos."""

from __future__ import annotations

import argparse
import csv
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="torch not installed: the trainer tests need the [train] extra")

ASSETS = os.environ.get("AGECAM_ASSETS")


@pytest.fixture(scope="session")
def assets() -> Path:
    if not ASSETS or not Path(ASSETS).is_dir():
        pytest.skip("AGECAM_ASSETS is not set to the shared assets folder (data/, models/, torch/)")
    root = Path(ASSETS).resolve()
    os.environ.setdefault("TORCH_HOME", str(root / "torch"))
    return root


def _rows(assets: Path, dataset: str, split: str, count: int) -> list[dict[str, str]]:
    with (assets / "data" / dataset / "labels.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == split]
    step = max(1, len(rows) // count)  # spread over the file, so the ages spread too
    return rows[::step][:count]


def write_labels(folder: Path, rows: list[dict[str, str]], header: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="session")
def tiny_appa(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """36 real APPA-REAL photos (24 train, 12 valid) in the labels.csv layout."""
    folder = tmp_path_factory.mktemp("tiny-appa")
    rows = _rows(assets, "appa-real", "train", 24) + _rows(assets, "appa-real", "valid", 12)
    (folder / "images").mkdir()
    for row in rows:
        shutil.copy(assets / "data" / "appa-real" / "images" / row["file_name"], folder / "images")
    write_labels(folder, rows, ["file_name", "real_age", "split"])
    return folder


@pytest.fixture(scope="session")
def tiny_utk(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 real UTKFace valid photos with their gender and race labels, in the labels.csv layout."""
    folder = tmp_path_factory.mktemp("tiny-utk")
    rows = _rows(assets, "utkface", "valid", 16)
    (folder / "images").mkdir()
    for row in rows:
        shutil.copy(assets / "data" / "utkface" / "images" / row["file_name"], folder / "images")
    write_labels(folder, rows, ["file_name", "real_age", "gender", "race", "split"])
    return folder


@pytest.fixture(scope="session")
def small_utk(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """28 real UTKFace photos (16 train, 12 valid): a second dataset to train on beside tiny_appa."""
    folder = tmp_path_factory.mktemp("small-utk")
    rows = _rows(assets, "utkface", "train", 16) + _rows(assets, "utkface", "valid", 12)
    (folder / "images").mkdir()
    for row in rows:
        shutil.copy(assets / "data" / "utkface" / "images" / row["file_name"], folder / "images")
    write_labels(folder, rows, ["file_name", "real_age", "split"])
    return folder


@pytest.fixture(scope="session")
def utk_rows(assets: Path) -> list[dict[str, str]]:
    return _rows(assets, "utkface", "train", 12)


@pytest.fixture()
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "crops"


def _run_cli(argv: list[str]) -> int:
    """The agecam CLI's contract for train's and export's commands: handler exit code, or an AgecamError's code."""
    from edge.errors import AgecamError
    from export.cli import register as register_export
    from train.cli import register

    parser = argparse.ArgumentParser(prog="agecam")
    parser.add_argument("--config")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    register_export(subparsers)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except AgecamError as error:
        print(f"agecam: error: {error}")
        return error.exit_code


@pytest.fixture(scope="session")
def run_cli():
    return _run_cli
