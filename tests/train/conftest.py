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


def _dataset_folder(assets: Path, folder: Path, dataset: str, counts: dict[str, int], header: list[str]) -> Path:
    """A labels.csv folder with `counts` real photos per split of a shared dataset, spread over its rows."""
    rows = [row for split, count in counts.items() for row in _rows(assets, dataset, split, count)]
    (folder / "images").mkdir()
    for row in rows:
        shutil.copy(assets / "data" / dataset / "images" / row["file_name"], folder / "images")
    write_labels(folder, rows, header)
    return folder


@pytest.fixture(scope="session")
def tiny_appa(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """36 real APPA-REAL photos (24 train, 12 valid) in the labels.csv layout."""
    folder = tmp_path_factory.mktemp("tiny-appa")
    return _dataset_folder(assets, folder, "appa-real", {"train": 24, "valid": 12}, ["file_name", "real_age", "split"])


@pytest.fixture(scope="session")
def tiny_utk(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 real UTKFace valid photos with their gender and race labels, in the labels.csv layout."""
    header = ["file_name", "real_age", "gender", "race", "split"]
    return _dataset_folder(assets, tmp_path_factory.mktemp("tiny-utk"), "utkface", {"valid": 16}, header)


@pytest.fixture(scope="session")
def small_utk(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """28 real UTKFace photos (16 train, 12 valid): a second dataset to train on beside tiny_appa."""
    folder = tmp_path_factory.mktemp("small-utk")
    return _dataset_folder(assets, folder, "utkface", {"train": 16, "valid": 12}, ["file_name", "real_age", "split"])


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


TINY_TRAIN = [
    "train",
    "--name",
    "exp",
    "--epochs1",
    "2",
    "--epochs2",
    "1",
    "--views",
    "1",
    "--crop-size",
    "64",
    "--threads",
    "2",
]


@pytest.fixture(scope="session")
def checkpoint(run_cli, tiny_appa: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained through the trainer on real photos (64 px crops), for export and ensemble tests."""
    base = tmp_path_factory.mktemp("export-run")
    argv = [*TINY_TRAIN, "--data", str(tiny_appa), "--runs-dir", str(base), "--cache-dir", str(base / "crops")]
    assert run_cli(argv) == 0
    return base / "exp" / "best.pt"
