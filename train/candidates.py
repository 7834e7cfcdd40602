"""`agecam candidates`: compare training recipes on figures that generalise (issue #13), not on the best
`valid` epoch of many runs.

For each recipe and seed: one run on every dataset, and one run per dataset with that dataset's train photos
held out. The figures are each dataset's valid MAE from the full run (in-domain) and each held-out dataset's
valid MAE from the run that never saw it (cross-dataset), with their mean and spread over the seeds. The
choice is the lowest mean of those figures. Every run keeps its last, weight-averaged epoch (`keep: last`),
so no figure is selected on the photos it reports. A run whose metrics.json exists is read, not retrained:
an interrupted matrix continues where it stopped.
"""

from __future__ import annotations

import collections
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from train.config import load_recipe
from train.datasets import load_dataset
from train.errors import TrainError

log = logging.getLogger(__name__)
# The age bin whose signed error #13 sets a target for on a dataset never trained on (within +-1.5 years).
CHILDREN = "0-12"


@dataclass(frozen=True)
class PlannedRun:
    recipe: str  # the recipe's name
    path: str | None  # its file (None: the default recipe)
    seed: int
    holdout: str | None  # the dataset left out of training, or None for the run on all of them

    @property
    def name(self) -> str:
        return f"{self.recipe}-seed{self.seed}-" + ("all" if self.holdout is None else f"without-{self.holdout}")


def plan(recipes: dict[str, str | None], datasets: list[str], seeds: list[int]) -> list[PlannedRun]:
    """Every recipe x seed x (all data, then each dataset held out)."""
    return [
        PlannedRun(name, path, seed, holdout)
        for name, path in recipes.items()
        for seed in seeds
        for holdout in (None, *datasets)
    ]


def _train(run: PlannedRun, overrides: dict[str, object], config_path: str | None) -> dict:
    from train.trainer import Trainer  # torch: only when a run has to be trained

    holdout = [run.holdout] if run.holdout else []
    cfg = load_recipe(run.path, {**overrides, "name": run.name, "seed": run.seed, "holdout": holdout, "keep": "last"})
    resume = (Path(cfg.runs_dir) / run.name / "last.pt").is_file()  # an interrupted run continues
    return Trainer(cfg, config_path, resume).run()


def run_matrix(
    recipes: list[str | None],
    data: list[str],
    seeds: list[int],
    overrides: dict[str, object],
    config_path: str | None = None,
) -> dict[str, object]:
    """Train (or read) every planned run and summarise; overrides are recipe settings for every run."""
    if len(data) < 2:
        raise TrainError("agecam candidates needs two or more datasets in --data: each is held out once in turn")
    names = {(load_recipe(path, {}).name if path else "default"): path for path in recipes}
    if len(names) < len(recipes):
        raise TrainError("two recipes share a name: give each recipe file its own `name:`")
    datasets = [load_dataset(path).name for path in data]
    runs_dir = Path(str(overrides.get("runs_dir") or "runs"))
    valid: dict[PlannedRun, dict] = {}
    devices: dict[PlannedRun, str] = {}
    for run in plan(names, datasets, seeds):
        metrics_file = runs_dir / run.name / "metrics.json"
        if metrics_file.is_file():
            log.info("%s: done before, reading %s", run.name, metrics_file)
            metrics = json.loads(metrics_file.read_text())
        else:
            log.info("%s: training", run.name)
            metrics = _train(run, {**overrides, "data": data, "runs_dir": str(runs_dir)}, config_path)
        valid[run], devices[run] = metrics["valid"], str(metrics.get("device", "unknown"))
    return summarise(valid, list(names), datasets, seeds, devices)


def _stats(values: list[float | None]) -> dict[str, object]:
    """Per seed, mean and spread (max - min); a seed without a value (no teens in that valid split) is left
    out of the mean, and with none at all the mean is None."""
    known = [v for v in values if v is not None]
    return {
        "per_seed": [None if v is None else round(v, 3) for v in values],
        "mean": round(float(np.mean(known)), 3) if known else None,
        "spread": round(float(np.ptp(known)), 3) if known else None,
    }


def summarise(
    valid: dict[PlannedRun, dict],
    recipes: list[str],
    datasets: list[str],
    seeds: list[int],
    devices: dict[PlannedRun, str],
) -> dict[str, object]:
    """Per recipe: each figure's MAE (and teen rate under 25, and children's signed mean error) over the seeds,
    the score, the devices its runs were trained on (a CPU and a GPU run of one recipe differ by rounding,
    which a reader should know), and the choice."""
    table = {}
    for recipe in recipes:
        figures = {}
        for dataset in datasets:
            for kind, holdout in (("valid", None), ("cross", dataset)):
                rows = [
                    by_dataset[dataset]
                    for run, by_dataset in valid.items()
                    if (run.recipe, run.holdout) == (recipe, holdout)
                ]
                figures[f"{dataset} {kind}"] = {
                    "mae": _stats([row["mae"] for row in rows]),
                    "teens_under_25": _stats([row["c25_teen_recall"] for row in rows]),
                    # runs trained before the trainer recorded mean_error_by_age_bin give None
                    "children_mean_error": _stats([row.get("mean_error_by_age_bin", {}).get(CHILDREN) for row in rows]),
                }
        score = float(np.mean([figure["mae"]["mean"] for figure in figures.values()]))
        trained_on = collections.Counter(device for run, device in devices.items() if run.recipe == recipe)
        table[recipe] = {"figures": figures, "score": round(score, 3), "trained_on": dict(sorted(trained_on.items()))}
    chosen = min(table, key=lambda name: table[name]["score"])
    return {"seeds": seeds, "datasets": datasets, "recipes": table, "chosen": chosen}


def markdown(summary: dict) -> str:
    """The comparison as a markdown table: MAE mean ± spread per figure, the score, and the devices."""
    names = list(next(iter(summary["recipes"].values()))["figures"])
    lines = [
        "| recipe | " + " | ".join(names) + " | score (mean MAE) | runs trained on |",
        "|---|" + "---|" * (len(names) + 2),
    ]
    for recipe, row in summary["recipes"].items():
        cells = [
            f"{row['figures'][n]['mae']['mean']:.2f} ± {row['figures'][n]['mae']['spread'] / 2:.2f}" for n in names
        ]
        mark = " (chosen)" if recipe == summary["chosen"] else ""
        trained_on = ", ".join(f"{device} {count}" for device, count in row["trained_on"].items())
        lines.append(f"| {recipe}{mark} | " + " | ".join(cells) + f" | {row['score']:.3f} | {trained_on or '-'} |")
    seeds = ", ".join(str(s) for s in summary["seeds"])
    lines.append(f"\nMAE in years, mean over seeds {seeds} ± half their spread; cross: trained without that dataset.")
    for recipe, row in summary["recipes"].items():
        crossed = {n: row["figures"][n]["children_mean_error"]["mean"] for n in names if n.endswith(" cross")}
        if any(value is not None for value in crossed.values()):
            shown = ", ".join(f"{n} {'-' if v is None else f'{v:+.1f}'}" for n, v in crossed.items())
            lines.append(f"{recipe}: children's (0-12) mean error on the dataset never seen (+: older): {shown}")
    return "\n".join(lines)
