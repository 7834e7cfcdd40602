"""Inputs an engineer gets wrong: recipe values, odd labels files and photos, and a full disk. Each ends in one
line with the documented exit code, or is skipped and counted, never in a traceback."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import torch

from edge.errors import StateError
from train.checkpoint import save_checkpoint
from train.config import load_recipe
from train.crops import CropCache
from train.datasets import load_dataset
from train.describe import describe
from train.errors import DataError, TrainError
from train.trainer import _device


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"seed": -1}, "seed"),  # numpy refused it with a traceback after the crops were made
        ({"name": ""}, "name"),  # the run went straight into runs_dir
        ({"name": "../elsewhere"}, "name"),  # ... or outside it
        ({"name": ".."}, "name"),
        ({"stage1": {"epochs": 1, "lr": float("inf")}}, "stage1.lr"),  # NaN weights, then "best.pt not found"
        ({"sigma": float("nan")}, "sigma"),
    ],
)
def test_a_bad_recipe_value_is_one_line_naming_the_key(override: dict, named: str) -> None:
    with pytest.raises(TrainError, match=f"recipe: {named}: ") as error:
        load_recipe(None, override)
    assert error.value.exit_code == 9


def test_a_recipe_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_bytes(b"\xff\xfeviews: 2\n")
    with pytest.raises(TrainError, match="cannot read the recipe"):
        load_recipe(str(recipe), {})


def test_a_device_this_torch_cannot_use_is_refused_before_the_crops() -> None:
    if torch.backends.mps.is_available():
        pytest.skip("this machine has an Apple GPU")
    with pytest.raises(TrainError, match="mps"):
        _device("mps")


def test_an_empty_labels_file_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels.csv").write_bytes(b"")  # the csv reader's header was read after the file closed
    with pytest.raises(DataError, match="missing column"):
        load_dataset(tmp_path)


def test_a_split_in_other_case_is_that_split_and_an_unknown_one_a_bad_row(tiny_appa: Path, tmp_path: Path) -> None:
    """A "Test" split was kept as an unknown split, so an export tuned on it (tuning_rows: every row but
    "test" ones where there is no "valid")."""
    (tmp_path / "images").symlink_to(tiny_appa / "images")
    lines = (tiny_appa / "labels.csv").read_text().splitlines()
    valid = [i for i, line in enumerate(lines) if line.endswith(",valid")]
    for i in valid[:-1]:
        lines[i] = lines[i].replace(",valid", ",Test")
    lines[valid[-1]] = lines[valid[-1]].replace(",valid", ",validation")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    ds = load_dataset(tmp_path)
    assert len(ds.split("test")) == len(valid) - 1
    assert {s.split for s in ds.tuning_rows()} == {"train"}
    assert [row.reason for row in ds.bad_rows] == ["split 'validation' is not train, valid or test"]


def test_describe_counts_a_photo_of_a_few_pixels_instead_of_failing(tiny_appa: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    photo = cv2.imread(str(next((tiny_appa / "images").iterdir())))
    cv2.imwrite(str(data / "images" / "tiny.png"), photo[:3, :3])  # OpenCV cannot decode it at a quarter size
    cv2.imwrite(str(data / "images" / "face.png"), photo)
    (data / "labels.csv").write_text("file_name,real_age\ntiny.png,30\nface.png,40\n")
    describe([str(data)], str(tmp_path / "report"), 0)
    assert (tmp_path / "report" / "summary.md").is_file()


def test_a_crop_cache_on_a_full_disk_is_skipped_not_fatal(
    assets: Path, tiny_appa: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge.vision.faces import CropSpec
    from train.assets import detector_path

    monkeypatch.setattr(cv2, "imwrite", lambda *args: False)  # what OpenCV returns on a full disk
    ds = load_dataset(tiny_appa)
    cache = CropCache(tmp_path / "crops", detector_path(None), CropSpec(64, 0.3), workers=1)
    kept, crops = cache.crops_for(ds, ds.samples[:3], "crops")
    assert len(kept) == len(crops) >= 1 and cache.write_failed
    assert not [p for p in (tmp_path / "crops").rglob("*") if p.is_file()]  # no temporary file left behind


def test_a_checkpoint_on_a_full_disk_is_exit_6_and_leaves_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1})

    def full(data: object, target: Path) -> None:
        Path(target).write_bytes(b"torn")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")  # torch's ENOSPC

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(StateError, match=r"cannot write .*last\.pt") as error:
        save_checkpoint(path, {"epoch": 2})
    assert error.value.exit_code == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}


def test_two_datasets_with_one_folder_name_are_refused(tiny_appa: Path, tmp_path: Path) -> None:
    """Valid metrics, select_on and holdout go by the folder's name: two folders named alike were merged."""
    from train.splits import load_splits

    twin = tmp_path / tiny_appa.name
    twin.mkdir()
    (twin / "images").symlink_to(tiny_appa / "images")
    (twin / "labels.csv").write_text((tiny_appa / "labels.csv").read_text())
    cfg = load_recipe(None, {"data": [str(tiny_appa), str(twin)]})
    with pytest.raises(DataError, match="two datasets are named"):
        load_splits(cfg, None)
