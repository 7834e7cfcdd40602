"""Operations commands: `agecam assets`, `agecam bench` and `agecam purge`."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from edge.assets import DEMO_CLIP, assets_dir, fetch, manifest, status, verified_path
from edge.challenge.evidence import FOLDER, purge
from edge.cli.common import event_log_option, load
from edge.errors import AssetError, ConfigError, StateError
from edge.pipeline.bench import MIN_FRAMES, model_speed, run_bench
from edge.store.storage import unfit_for_a_log
from edge.vision.age_model import check_model_file

DETECTION_WIDTHS = (160, 3840)  # the range of detector.detection_width


def _assets_fetch(args: argparse.Namespace) -> int:
    folder = assets_dir()
    for name, outcome in fetch(folder).items():
        print(f"{outcome:>20}  {folder / name}")
    return 0


def _assets_list(args: argparse.Namespace) -> int:
    folder = assets_dir()
    states = {asset.name: status(asset, folder) for asset in manifest().values()}
    for name, state in states.items():
        print(f"{state:>9}  {folder / name}")
    return 0 if all(state == "ok" for state in states.values()) else AssetError.exit_code


def _at_least_one(option: str, value: int) -> None:
    """A bench of no rounds has no median: without this, --loops 0 or --repeats 0 ended in a traceback."""
    if value < 1:
        raise ConfigError(f"{option} {value}: give at least 1")


def _clip(video: str | None) -> str:
    """The clip given, else the demo clip, verified: a missing one said 'video not found: check the path'
    (exit 3) of a path the user never gave, where `agecam assets fetch` (as `make bench` forgot) is the fix."""
    return video or str(verified_path(DEMO_CLIP))


def _bench_model(args: argparse.Namespace) -> int:
    config = load(args)
    _at_least_one("--repeats", args.repeats)
    logging.getLogger().setLevel(args.log_level or "WARNING")
    video = _clip(args.video)
    reports = [model_speed(config, Path(path), video, repeats=args.repeats) for path in args.models]
    print(json.dumps(reports, indent=None if args.json else 2))
    return 0


def _bench_edge(args: argparse.Namespace) -> int:
    config = load(args)
    _at_least_one("--loops", args.loops)
    if args.min_frames < 0:
        raise ConfigError(f"--min-frames {args.min_frames}: give 0 or more frames (0: each pass replays the clip once)")
    if args.model:
        model = Path(args.model).resolve()
        check_model_file(model, "check --model")  # the run's own error would send the user to age_model.path
        config.age_model.path = str(model)
    if args.width is not None:  # only when asked: the config's detection width is what the till runs
        low, high = DETECTION_WIDTHS  # set after validation, so checked here: --width 0 failed in OpenCV
        if not low <= args.width <= high:
            raise ConfigError(f"--width {args.width}: give a detection width from {low} to {high}")
        config.detector.detection_width = args.width
    logging.getLogger().setLevel(args.log_level or "WARNING")
    report = run_bench(config, _clip(args.video), args.loops, args.min_frames)
    print(json.dumps(report, indent=2 if not args.json else None))
    return 0


def _purge(args: argparse.Namespace) -> int:
    config = load(args)
    days = args.days if args.days is not None else config.evidence.retention_days
    if not days >= 0:  # also refuses nan
        raise ConfigError(f"--days {days}: give 0 or more days")
    if args.db and not Path(args.db).is_file():
        # purge() skips a log that is not there: a mistyped --db deleted the crops and left the real log's
        # flags pointing at them.
        missing = f"event log not found: {args.db}: check --db (default: STATE_DIR/agecam.db)"
        raise StateError(unfit_for_a_log(Path(args.db)) or missing)
    removed = purge(config.state_dir(), days, Path(args.db) if args.db else None)
    print(f"removed {len(removed)} evidence crop(s) older than {days:g} days from {config.state_dir() / FOLDER}")
    return 0


def _register_assets(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("assets", help="download and verify the detector and sample clips")
    commands = parser.add_subparsers(dest="assets_command", required=True, metavar="ACTION")
    commands.add_parser("fetch", help="download missing assets into $AGECAM_ASSETS, verifying SHA-256").set_defaults(
        handler=_assets_fetch
    )
    commands.add_parser("list", help="show each asset's state (exit 7 if any is missing or bad)").set_defaults(
        handler=_assets_list
    )


def _register_bench(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks that print JSON")
    targets = parser.add_subparsers(dest="bench_target", required=True, metavar="TARGET")
    edge = targets.add_parser("edge", help="pipeline fps against decode+detect-only fps on the same clip")
    edge.add_argument("video", nargs="?", help=f"clip to replay (default: $AGECAM_ASSETS/{DEMO_CLIP})")
    edge.add_argument("--model", help="age model to use (default: age_model.path)")
    edge.add_argument("--width", type=int, help="detection width (default: detector.detection_width)")
    edge.add_argument("--loops", type=int, default=5, help="rounds to take the median of")
    edge.add_argument(
        "--min-frames",
        type=int,
        default=MIN_FRAMES,
        help=f"each pass replays the whole clip until it has seen this many frames (default {MIN_FRAMES})",
    )
    edge.add_argument("--json", action="store_true", help="compact JSON on one line")
    edge.set_defaults(handler=_bench_edge)
    model = targets.add_parser("model", help="ms per face of age models alone (batch 1 and 8) on real crops")
    model.add_argument("models", nargs="+", help="ONNX age models")
    model.add_argument("--video", help=f"clip to take face crops from (default: $AGECAM_ASSETS/{DEMO_CLIP})")
    model.add_argument("--repeats", type=int, default=30, help="timed runs per batch size")
    model.add_argument("--json", action="store_true", help="compact JSON on one line")
    model.set_defaults(handler=_bench_model)


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_assets(subparsers)
    _register_bench(subparsers)
    command = subparsers.add_parser("purge", help="delete evidence crops older than evidence.retention_days now")
    command.add_argument("--days", type=float, help="override the retention (0 deletes every crop)")
    command.add_argument(
        "--db", type=event_log_option, help="event log whose flags refer to the crops (default: STATE_DIR/agecam.db)"
    )
    command.set_defaults(handler=_purge)
