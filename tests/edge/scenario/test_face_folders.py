"""`agecam simulate` reads a face folder the way `agecam eval` and `agecam train` do: a labels.csv without a
split column means every row; a split that matches nothing says so."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge.errors import PosError
from edge.scenario.plan import read_faces

from pos_scenario import make_faces


@pytest.fixture(scope="module")
def faces(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 real photos, labels.csv with file_name and real_age only (no split column)."""
    # In a folder named faces: the privacy test skips the scenario inputs by that name.
    return make_faces(assets / "data" / "utkface", tmp_path_factory.mktemp("face-folders") / "faces")


def with_splits(faces: Path, folder: Path, splits: list[str]) -> Path:
    lines = (faces / "labels.csv").read_text().splitlines()
    rows = [f"{line},{split}" for line, split in zip(lines[1:], splits, strict=False)]
    folder.mkdir()
    (folder / "images").symlink_to(faces / "images")
    (folder / "labels.csv").write_text("\n".join([f"{lines[0]},split", *rows]) + "\n")
    return folder


def test_no_split_column_means_every_row(faces):
    photos, split = read_faces(faces, None)
    assert len(photos) == 8 and split == "all"


def test_the_valid_rows_by_default_when_there_are_splits(faces, tmp_path):
    folder = with_splits(faces, tmp_path / "split", ["train"] * 5 + ["valid"] * 3)
    photos, split = read_faces(folder, None)
    assert len(photos) == 3 and split == "valid"
    assert len(read_faces(folder, "all")[0]) == 8 and len(read_faces(folder, "train")[0]) == 5


def test_a_split_that_matches_nothing_says_so(faces, tmp_path):
    folder = with_splits(faces, tmp_path / "split", ["train"] * 8)
    with pytest.raises(PosError, match=r"no rows in split 'valid' \(found train\)"):
        read_faces(folder, "valid")
    with pytest.raises(PosError, match="has no split column, so --split valid matches nothing"):
        read_faces(faces, "valid")


def test_simulate_uses_a_folder_without_splits(agecam, faces, tmp_path):
    args = ["simulate", "--faces", faces, "--out", tmp_path / "till", "--customers", "4", "--fps", "5"]
    result = agecam(*args, "--size", "320x240")
    assert result.code == 0, result.err
    assert result.json()["events"] >= 8


def test_too_few_faces_counts_them_all(agecam, faces, tmp_path):
    result = agecam("simulate", "--faces", faces, "--out", tmp_path / "till", "--customers", "9")
    assert result.code == 11
    assert "only 8 of the 8 faces are aged 13 to 75, and 9 customers were asked for" in result.err


def relabelled(faces: Path, folder: Path, labels: bytes) -> Path:
    """The same photos with a labels.csv of the given bytes."""
    folder.mkdir()
    (folder / "images").symlink_to(faces / "images")
    (folder / "labels.csv").write_bytes(labels)
    return folder


def test_a_labels_file_with_a_bom_reads_as_one_without(faces, tmp_path):
    # Spreadsheets save "CSV UTF-8" with a byte order mark; it must not hide the file_name column.
    folder = relabelled(faces, tmp_path / "bom", b"\xef\xbb\xbf" + (faces / "labels.csv").read_bytes())
    assert len(read_faces(folder, None)[0]) == 8


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (b"face0.jpg,inf\n", r"line 10: needs file_name and a numeric real_age"),
        (b"face0.jpg,1e999\n", r"line 10: needs file_name and a numeric real_age"),
        (b"face0.jpg,45,caf\xe9\n", r"save it as a UTF-8 CSV"),
    ],
)
def test_an_unusable_labels_file_is_one_line_and_exit_11(agecam, faces, tmp_path, row, message):
    folder = relabelled(faces, tmp_path / "bad", (faces / "labels.csv").read_bytes() + row)
    result = agecam("simulate", "--faces", folder, "--out", tmp_path / "till", "--customers", "2")
    assert result.code == 11, result.err
    assert "Traceback" not in result.err and "labels.csv" in result.err
    assert re.search(message, result.err)
