"""Run and evaluation reports: predictions and bad rows as CSV, and the plots."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from edge.errors import StateError
from train.datasets import BadRow, Dataset, Sample
from train.metrics import group_mae
from train.plots import plot_curves, write_plots


def check_creatable(path: Path) -> None:
    """StateError unless `path` is, or can be made in, a writable folder (a read-only mount, another's folder)."""
    existing = next(folder for folder in (path, *path.parents) if folder.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise StateError(f"cannot write {path}: {existing} is not a writable folder")


def output_folder(path: Path) -> Path:
    """`path`, created if need be; StateError (exit 6: an output that can't be written) where it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StateError(f"cannot create {path} ({error.strerror}): choose a writable folder") from None
    return path


# Every file `agecam eval` may write into its report folder: a plot an earlier report had and this one has
# not (reliability.png of a model with age_probs, the groups of a dataset with gender labels) must not stay
# behind to be read as this report's.
EVAL_REPORT_FILES = (
    "metrics.json",
    "predictions.csv",
    "bad_rows.csv",
    "mae_by_age.png",
    "pred_vs_true.png",
    "mae_by_group.png",
    "curves.png",
    "reliability.png",
)


def clear_eval_report(folder: Path) -> None:
    """Remove an earlier report's files (metrics.json first: a report cut short then has none); other files
    in the folder stay. StateError (exit 6) where one cannot be removed."""
    for name in EVAL_REPORT_FILES:
        try:
            (folder / name).unlink(missing_ok=True)
        except OSError as error:
            raise StateError(f"cannot replace {folder / name} ({error.strerror}): choose another --out") from None


def _labels(samples: list[Sample], attribute: str) -> np.ndarray:
    return np.array([-1 if getattr(s, attribute) is None else getattr(s, attribute) for s in samples])


def write_predictions(
    path: Path, samples: list[Sample], pred: np.ndarray, std: np.ndarray, faces: list[bool] | None = None
) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dataset", "file_name", "real_age", "age", "age_std", "face"])
        for i, sample in enumerate(samples):
            face = True if faces is None else faces[i]
            writer.writerow([sample.dataset, sample.file_name, sample.age, f"{pred[i]:.2f}", f"{std[i]:.2f}", face])


def write_bad_rows(path: Path, rows: list[BadRow]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dataset", "row", "file_name", "reason"])
        writer.writerows([row.dataset, row.row, row.file_name, row.reason] for row in rows)


def group_labels(samples: list[Sample]) -> dict[str, np.ndarray]:
    """Gender and race labels per sample (-1 where a dataset has none)."""
    return {attribute: _labels(samples, attribute) for attribute in ("gender", "race")}


def group_metrics(samples: list[Sample], pred: np.ndarray) -> dict[str, dict]:
    true = np.array([s.age for s in samples])
    out = {}
    for attribute in ("gender", "race"):
        stats = group_mae(true, pred, _labels(samples, attribute))
        if stats:
            out[f"mae_by_{attribute}"] = stats
    return out


def sample_plots(out: Path, samples: list[Sample], pred: np.ndarray, history: list[dict] | None) -> list[Path]:
    true = np.array([s.age for s in samples], dtype=np.float64)
    return write_plots(
        out, true, np.asarray(pred, np.float64), _labels(samples, "gender"), _labels(samples, "race"), history
    )


def write_run_report(run_dir: Path, metrics: dict, predictions: dict[str, tuple], datasets: list[Dataset]) -> None:
    """Adds plots, group metrics and CSVs for a finished run; records the files in metrics['plots']."""
    plots = [plot_curves(metrics["history"], run_dir / "curves.png")]
    for name, (samples, pred, std) in predictions.items():
        out = run_dir / f"valid-{name}"
        plots += sample_plots(out, samples, pred, None)
        write_predictions(out / "predictions.csv", samples, pred, std)
        metrics["valid"][name].update(group_metrics(samples, pred))
    write_bad_rows(run_dir / "bad_rows.csv", [row for ds in datasets for row in ds.bad_rows])
    metrics["plots"] = [str(p.relative_to(run_dir)) for p in plots]
