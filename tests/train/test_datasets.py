"""Dataset adapters and bad rows, on real photos."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from train.datasets import hashed_split, load_dataset
from train.errors import DataError


def test_labels_folder_with_splits(tiny_appa: Path) -> None:
    ds = load_dataset(tiny_appa)
    assert ds.layout == "labels.csv" and ds.has_split
    assert (len(ds.split("train")), len(ds.split("valid"))) == (24, 12)
    assert not ds.bad_rows
    assert all(s.path.is_file() and 0 <= s.age <= 110 for s in ds.samples)


def test_bad_rows_are_skipped_and_counted(tiny_appa: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    shutil.copytree(tiny_appa, folder)
    (folder / "images" / "garbage.jpg").write_bytes(b"not a jpeg")
    good = next(csv.DictReader((folder / "labels.csv").open()))
    extra = [
        "missing.jpg,30,train",
        f"{good['file_name']},31,train",
        "garbage.jpg,abc,train",
        f"{good['file_name'][:-4]}x.jpg,150,train",
    ]
    with (folder / "labels.csv").open("a") as handle:
        handle.write("\n".join(extra) + "\n")
    ds = load_dataset(folder)
    reasons = sorted(row.reason.split(":")[0] for row in ds.bad_rows)
    assert reasons == ["age 'abc' is not a number", "age 150 is outside 0-110", "duplicate file", "image missing"]
    assert len(ds.samples) == 36
    assert {row.row for row in ds.bad_rows} == {38, 39, 40, 41}


def test_no_split_column_is_hashed_deterministically(tiny_appa: Path, tmp_path: Path) -> None:
    folder = tmp_path / "nosplit"
    shutil.copytree(tiny_appa, folder)
    rows = list(csv.DictReader((tiny_appa / "labels.csv").open()))
    with (folder / "labels.csv").open("w") as handle:
        handle.write("file_name,real_age\n" + "".join(f"{r['file_name']},{r['real_age']}\n" for r in rows))
    first, second = load_dataset(folder, 0.3), load_dataset(folder, 0.3)
    assert not first.has_split
    assert [s.split for s in first.samples] == [s.split for s in second.samples]
    assert {s.split for s in first.samples} == {"train", "valid"}
    assert hashed_split("a.jpg", 0.3) == hashed_split("a.jpg", 0.3)


def test_appa_official_layout(tiny_appa: Path, tmp_path: Path) -> None:
    rows = list(csv.DictReader((tiny_appa / "labels.csv").open()))
    for split in ("train", "valid"):
        (tmp_path / split).mkdir()
        chosen = [r for r in rows if r["split"] == split][:5]
        with (tmp_path / f"gt_avg_{split}.csv").open("w") as handle:
            handle.write("file_name,num_ratings,apparent_age_avg,apparent_age_std,real_age\n")
            for r in chosen:
                shutil.copy(tiny_appa / "images" / r["file_name"], tmp_path / split / f"{r['file_name']}_face.jpg")
                handle.write(f"{r['file_name']},30,25.5,3.1,{r['real_age']}\n")
    ds = load_dataset(tmp_path)
    assert ds.layout == "appa-real official"
    assert (len(ds.split("train")), len(ds.split("valid"))) == (5, 5)
    assert ds.samples[0].file_name.endswith(".jpg_face.jpg") and ds.samples[0].path.is_file()


def test_utkface_names(assets: Path, utk_rows: list[dict[str, str]], tmp_path: Path) -> None:
    for row in utk_rows:
        shutil.copy(assets / "data" / "utkface" / "images" / row["file_name"], tmp_path)
    (tmp_path / "notes_about.jpg").write_bytes(b"x")
    ds = load_dataset(tmp_path)
    assert ds.layout == "utkface names" and not ds.has_split
    assert sorted(s.file_name for s in ds.samples) == sorted(r["file_name"] for r in utk_rows)
    for sample in ds.samples:
        assert sample.age == float(sample.file_name.split("_")[0])
        assert sample.gender in (0, 1) and sample.race in range(5)
    assert [row.file_name for row in ds.bad_rows] == ["notes_about.jpg"]


@pytest.mark.parametrize("labels", ["file_name,real_age\nnothing.jpg,20\n", "name,age\na.jpg,3\n"])
def test_nothing_usable_is_an_error(tmp_path: Path, labels: str) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels.csv").write_text(labels)
    with pytest.raises(DataError) as error:
        load_dataset(tmp_path)
    assert error.value.exit_code == 8 and str(tmp_path) in str(error.value)


def test_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a dataset folder"):
        load_dataset(tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_dataset(tmp_path / "absent")


def test_a_labels_file_with_a_bom_loads_as_one_without(tiny_appa: Path, tmp_path: Path) -> None:
    # Spreadsheets save "CSV UTF-8" with a byte order mark; it must not read as a missing file_name column.
    (tmp_path / "images").symlink_to(tiny_appa / "images")
    (tmp_path / "labels.csv").write_bytes(b"\xef\xbb\xbf" + (tiny_appa / "labels.csv").read_bytes())
    assert len(load_dataset(tmp_path).samples) == len(load_dataset(tiny_appa).samples)


def test_a_header_without_rows_says_there_are_no_rows_not_that_columns_are_missing(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels.csv").write_text("file_name,real_age,split\n")
    with pytest.raises(DataError, match="no usable rows"):
        load_dataset(tmp_path)


def test_an_export_never_tunes_on_a_test_split(tiny_appa: Path, tmp_path: Path) -> None:
    """Without a `valid` split, the export's calibration, temperature and parity rows used to be every row,
    test ones included; now they are every row but those."""
    (tmp_path / "images").symlink_to(tiny_appa / "images")
    text = (tiny_appa / "labels.csv").read_text()
    (tmp_path / "labels.csv").write_text(text.replace(",valid", ",test"))
    ds = load_dataset(tmp_path)
    assert len(ds.split("test")) == 12 and not ds.split("valid")
    assert ds.tuning_rows() == ds.split("train")
    assert load_dataset(tiny_appa).tuning_rows() == load_dataset(tiny_appa).split("valid")
