"""Dataset adapters: a labels.csv folder, the official APPA-REAL release, and UTKFace file names.

Every adapter yields `Sample`s and `BadRow`s. Bad rows are skipped and counted, never fatal, unless
nothing is left to use.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from train.errors import DataError

AGE_MIN, AGE_MAX = 0, 110
APPA_SPLITS = ("train", "valid", "test")
UTK_NAME = re.compile(r"^(\d+)_(\d)_(\d)_\d+\.jpg(\.chip\.jpg)?$")


@dataclass(frozen=True)
class Sample:
    dataset: str
    file_name: str  # relative to the dataset root's image folder; the key of the crop cache
    path: Path
    age: float
    split: str
    gender: int | None = None
    race: int | None = None


@dataclass(frozen=True)
class BadRow:
    dataset: str
    row: int  # 1-based line in the labels file (the header is line 1); 0 where there is no file
    file_name: str
    reason: str


@dataclass
class Dataset:
    name: str
    root: Path
    layout: str
    has_split: bool
    samples: list[Sample] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Stable cache key: the folder name plus a hash of its absolute path."""
        digest = hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:8]
        return f"{self.name}-{digest}"

    def split(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.split == name]

    def tuning_rows(self) -> list[Sample]:
        """The `valid` rows an export tunes on (int8 calibration, temperature, parity); without a `valid`
        split, every row but the `test` ones: a test split is never read to build a model."""
        return self.split("valid") or [s for s in self.samples if s.split != "test"]


def hashed_split(file_name: str, valid_fraction: float) -> str:
    """A deterministic split for data without one: the same file always lands in the same split."""
    bucket = int(hashlib.sha1(file_name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "valid" if bucket < valid_fraction else "train"


def _age(value: str) -> float | str:
    """The age as a float, or the reason it is unusable."""
    try:
        age = float(value)
    except (TypeError, ValueError):
        return f"age {value!r} is not a number"
    if not AGE_MIN <= age <= AGE_MAX:
        return f"age {value} is outside {AGE_MIN}-{AGE_MAX}"
    return age


def _optional_int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _read_rows(path: Path, columns: Iterable[str] = ("file_name", "real_age")) -> list[dict[str, str]]:
    """The rows of a labels file whose header has `columns`."""
    try:
        # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a BOM, which would otherwise hide file_name
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            # The header itself, not the first row: a file with a header and no rows has its columns. Read
            # while the file is open: an empty file leaves it unread, and reading it later would fail.
            header = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: cannot read the labels file ({error}): check it is a UTF-8 CSV") from None
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}: the header needs file_name,real_age")
    return rows


def _samples_from_rows(
    ds: Dataset,
    rows: list[dict[str, str]],
    labels: Path,
    image_dir: Path,
    suffix: str,
    default_split: str | None,
    valid_fraction: float,
) -> None:
    seen: set[str] = set()
    for number, row in enumerate(rows, start=2):
        name = (row.get("file_name") or "").strip()
        age = _age((row.get("real_age") or "").strip())
        reason = None
        if not name:
            reason = "empty file_name"
        elif name in seen:
            reason = "duplicate file"
        elif isinstance(age, str):
            reason = age
        elif not (image_dir / (name + suffix)).is_file():
            reason = f"image missing: {image_dir / (name + suffix)}"
        if reason:
            ds.bad_rows.append(BadRow(ds.name, number, name, reason))
            continue
        # Case folded: a "Test" row read as an unknown split would be tuned on (Dataset.tuning_rows).
        split = (row.get("split") or "").strip().lower() or default_split or hashed_split(name, valid_fraction)
        if split not in APPA_SPLITS:
            ds.bad_rows.append(BadRow(ds.name, number, name, f"split {split!r} is not train, valid or test"))
            continue
        seen.add(name)
        ds.samples.append(
            Sample(
                ds.name,
                name + suffix,
                image_dir / (name + suffix),
                float(age),
                split,
                _optional_int(row.get("gender")),
                _optional_int(row.get("race")),
            )
        )


def load_labels_folder(root: Path, valid_fraction: float = 0.15) -> Dataset:
    """Layout 1: root/labels.csv (file_name,real_age[,split,gender,race]) and root/images/."""
    labels = root / "labels.csv"
    rows = _read_rows(labels)
    has_split = bool(rows) and "split" in rows[0]
    ds = Dataset(root.name, root, "labels.csv", has_split)
    _samples_from_rows(ds, rows, labels, root / "images", "", None, valid_fraction)
    return ds


def load_appa_official(root: Path) -> Dataset:
    """Layout 2: the APPA-REAL release, gt_avg_{train,valid,test}.csv with SPLIT/NAME.jpg_face.jpg crops."""
    ds = Dataset(root.name, root, "appa-real official", True)
    for split in APPA_SPLITS:
        labels = root / f"gt_avg_{split}.csv"
        if labels.is_file():
            rows = _read_rows(labels)
            _samples_from_rows(ds, rows, labels, root / split, "_face.jpg", split, 0.0)
    return ds


def _utk_files(root: Path) -> Iterator[Path]:
    folder = root / "images" if (root / "images").is_dir() else root
    yield from sorted(p for p in folder.iterdir() if p.suffix == ".jpg")


def load_utk_names(root: Path, valid_fraction: float = 0.15) -> Dataset:
    """Layout 3: UTKFace files named age_gender_race_date.jpg[.chip.jpg]; the split is hashed."""
    ds = Dataset(root.name, root, "utkface names", False)
    for path in _utk_files(root):
        match = UTK_NAME.match(path.name)
        age = _age(match.group(1)) if match else "file name is not age_gender_race_date.jpg"
        if isinstance(age, str):
            ds.bad_rows.append(BadRow(ds.name, 0, path.name, age))
            continue
        ds.samples.append(
            Sample(
                ds.name,
                path.name,
                path,
                age,
                hashed_split(path.name, valid_fraction),
                int(match.group(2)),
                int(match.group(3)),
            )
        )
    return ds


def load_dataset(root: Path | str, valid_fraction: float = 0.15) -> Dataset:
    """Load one dataset folder in whichever supported layout it has."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root}: give a folder with labels.csv and images/")
    if (root / "labels.csv").is_file():
        ds = load_labels_folder(root, valid_fraction)
    elif any((root / f"gt_avg_{s}.csv").is_file() for s in APPA_SPLITS):
        ds = load_appa_official(root)
    elif any(UTK_NAME.match(p.name) for p in _utk_files(root)):
        ds = load_utk_names(root, valid_fraction)
    else:
        raise DataError(f"{root}: no labels.csv, gt_avg_*.csv or UTKFace-named images: not a dataset folder")
    if not ds.samples:
        raise DataError(f"{root}: no usable rows ({len(ds.bad_rows)} bad): fix the labels or the images")
    return ds
