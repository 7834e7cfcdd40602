"""CLI entry point (entry-point group agecam.commands): `agecam train`, `agecam eval`, `agecam candidates`,
`agecam data describe`.

Heavy imports (torch) happen inside the handlers, so `agecam --help` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from train.config import BACKBONES

log = logging.getLogger("agecam.train")


# Recipe settings that `train` and `candidates` both take as flags (None: the recipe's own).
RUN_FLAGS = ("max_per_split", "runs_dir", "cache_dir", "device", "threads")


def _run_overrides(args: argparse.Namespace) -> dict[str, object]:
    return {key: getattr(args, key) for key in RUN_FLAGS}


def _train(args: argparse.Namespace) -> int:
    from train.config import load_recipe
    from train.trainer import Trainer

    overrides = {
        **_run_overrides(args),
        "name": args.name,
        "data": args.data,
        "backbone": args.backbone,
        "head": args.head,
        "views": args.views,
        "crop_size": args.crop_size,
        "seed": args.seed,
    }
    cfg = load_recipe(args.recipe, overrides)
    for stage, epochs in (("stage1", args.epochs1), ("stage2", args.epochs2)):
        if epochs is not None:
            setattr(cfg, stage, getattr(cfg, stage).model_copy(update={"epochs": epochs}))
    trainer = Trainer(cfg, args.config, args.resume)
    with _stopped_as(trainer.run_dir):
        metrics = trainer.run()
    best = metrics["best"]
    log.info(
        "kept (%s): stage %d epoch %d, valid MAE %.2f; run in %s (%.0f s)",
        metrics["kept"],
        best["stage"],
        best["epoch"],
        best["mae"],
        metrics["run"],
        metrics["timings"]["total_s"],
    )
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _stopped_as(run_dir: Path | None) -> Iterator[None]:
    """SIGTERM (systemd, a job scheduler) stops a run as Ctrl-C does, and either ends in one line saying what
    the run folder holds and how to go on, with exit code 130: an unfinished run is not a success."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    except KeyboardInterrupt:
        from train.errors import TrainInterrupted

        if run_dir is None:  # agecam candidates resumes every unfinished run by itself
            raise TrainInterrupted("candidates stopped: the same command goes on from each run's last epoch") from None
        if (run_dir / "last.pt").is_file():  # written whole after every epoch (train/atomic.py)
            raise TrainInterrupted(
                f"training stopped: {run_dir / 'last.pt'} holds the last finished epoch; the same command with "
                "--resume continues it"
            ) from None
        raise TrainInterrupted("training stopped before its first epoch ended: run the same command again") from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _eval(args: argparse.Namespace) -> int:
    from train.eval_text import format_report
    from train.evaluate import evaluate
    from train.intervals import Bootstrap

    boot = Bootstrap(resamples=args.resamples, seed=args.seed)
    report = evaluate(args.model, args.data, args.split, args.out, args.config, args.cache_dir, boot)
    if args.json:
        print(json.dumps(report, indent=2))
        print(f"report: {report['report']}", file=sys.stderr)  # stdout is the JSON alone
    else:
        print(format_report(report))  # ends with the report folder
    return 0


def _candidates(args: argparse.Namespace) -> int:
    from train.candidates import markdown, run_matrix

    with _stopped_as(None):
        summary = run_matrix(args.recipes, args.data, args.seeds, _run_overrides(args), args.config)
    table = markdown(summary)
    out = Path(args.runs_dir)
    (out / "candidates.json").write_text(json.dumps(summary, indent=2))
    (out / "candidates.md").write_text(table + "\n")
    print(json.dumps(summary, indent=2) if args.json else table)
    return 0


def _describe(args: argparse.Namespace) -> int:
    from train.describe import describe

    summary = describe(args.dirs, args.out, args.seed)
    print(summary)
    return 0


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train an age model on labelled face photos")
    p.add_argument("--data", nargs="+", help="dataset folder(s), combined")
    p.add_argument("--recipe", help="recipe YAML (train/config.py); flags override it")
    p.add_argument("--name", help="run name: the run goes to RUNS_DIR/NAME")
    p.add_argument("--backbone", choices=BACKBONES, help="default mobilenet_v2 (see docs/training.md)")
    p.add_argument("--head", choices=["l1", "dist"])
    p.add_argument("--epochs1", type=int, help="stage 1 epochs (head on frozen features)")
    p.add_argument("--epochs2", type=int, help="stage 2 epochs (later blocks unfrozen)")
    p.add_argument("--views", type=int, help="cached views per training photo (1 clean + augmented)")
    p.add_argument("--crop-size", type=int, help="crop side in px (default: the backbone's input size)")
    p.add_argument("--max-per-split", type=int, help="use at most N photos per dataset split (tiny runs)")
    p.add_argument("--runs-dir")
    p.add_argument("--cache-dir", help="crop cache (default $AGECAM_CACHE, else ~/.cache/agecam/crops)")
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int, help="CPU threads for torch (0: default)")
    p.add_argument("--resume", action="store_true", help="continue RUNS_DIR/NAME from last.pt")
    p.set_defaults(handler=_train)


def _add_candidates(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "candidates",
        help="compare recipes on in-domain and cross-dataset valid MAE over seeds (docs/training.md)",
    )
    p.add_argument("recipes", nargs="+", metavar="RECIPE", help="recipe YAML files to compare")
    p.add_argument("--data", nargs="+", required=True, help="dataset folders: each is also held out once")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="seeds per recipe (default 0 1)")
    p.add_argument("--runs-dir", default="runs/candidates", help="where the runs and the tables go")
    p.add_argument("--max-per-split", type=int, help="use at most N photos per dataset split (tiny runs)")
    p.add_argument("--cache-dir")
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, help="CPU threads for torch (0: default)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of the table")
    p.set_defaults(handler=_candidates)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def _add_eval(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="score a model on a dataset the way the till runs it")
    p.add_argument("--model", required=True, help="a checkpoint (.pt) or an exported model (.onnx)")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument(
        "--split", help="split to score (default: valid if the data has splits, else all rows; 'all' for every row)"
    )
    p.add_argument("--out", help="report folder (default: runs/eval-<model>-<dataset>-<split> in the current folder)")
    p.add_argument("--cache-dir")
    p.add_argument("--resamples", type=_positive, default=1000, help="bootstrap resamples for the 95 %% intervals")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0: the same intervals every run)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(handler=_eval)


def _add_data(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="explore datasets")
    sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    d = sub.add_parser("describe", help="counts, age statistics, histogram, bad rows and contact sheets")
    d.add_argument("dirs", nargs="+", metavar="DIR")
    d.add_argument("--out", default="data-report", help="report folder (default: data-report)")
    d.add_argument("--seed", type=int, default=0, help="seed for picking contact sheet samples")
    d.set_defaults(handler=_describe)


def register(subparsers: argparse._SubParsersAction) -> None:
    _add_train(subparsers)
    _add_eval(subparsers)
    _add_candidates(subparsers)
    _add_data(subparsers)
