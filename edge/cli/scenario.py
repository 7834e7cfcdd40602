"""`agecam simulate` and `agecam score`: simulated tills and how a replay of one did."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
from collections.abc import Iterator

from edge.cli.common import path_option
from edge.errors import ConfigError
from edge.scenario.render import simulate
from edge.scenario.score import check_same_scenario, format_score, load_truth, score
from edge.store.queries import scenario_run


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size {text!r}: give WIDTHxHEIGHT, e.g. 640x480") from None
    if not (160 <= width <= 3840 and 120 <= height <= 2160):
        raise ConfigError(f"--size {text!r}: width 160-3840 and height 120-2160")
    return width, height


RUN_IDS = range(1, 2**63)  # SQLite's integers: a larger --run was an OverflowError, a traceback


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (`timeout`, a CI job cancelled) stops simulate as Ctrl-C does: its temporaries are removed and the
    previous scenario stays (exit 130). Its default action killed the process and left a .partial- folder."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _simulate(args: argparse.Namespace) -> int:
    if args.customers < 1:
        raise ConfigError(f"--customers {args.customers}: give 1 or more")
    if not 1 <= args.fps <= 60:  # nan too
        raise ConfigError(f"--fps {args.fps}: give a frame rate from 1 to 60")
    if args.seed < 0:  # numpy's generator, which draws the sensor noise, takes no negative seed (a traceback)
        raise ConfigError(f"--seed {args.seed}: give a whole number from 0 up")
    size, faces, out = _size(args.size), path_option(args.faces, "--faces"), path_option(args.out, "--out")
    with _sigterm_as_ctrl_c():
        result = simulate(faces, out, args.customers, args.seed, args.fps, size, args.split)
    print(json.dumps(result))
    return 0


def _score(args: argparse.Namespace) -> int:
    if args.run is not None and args.run not in RUN_IDS:  # run 0 read as "the latest"
        raise ConfigError(f"--run {args.run}: give a run id of the log (1 up), or leave --run out for the latest run")
    scenario, db = path_option(args.scenario, "SCENARIO"), path_option(args.db, "--db")
    truth, run = load_truth(scenario), scenario_run(db, args.run)
    check_same_scenario(truth, run, scenario, db)  # another scenario's replay would score without a word
    result = score(truth, run)
    print(json.dumps(result, indent=2) if args.json else format_score(result))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    command = subparsers.add_parser("simulate", help="compose a till video, POS script and ground truth from faces")
    command.add_argument("--faces", required=True, help="folder with labels.csv (file_name, real_age) and images/")
    command.add_argument("--out", required=True, help="scenario folder to write (till.mp4, pos.jsonl, truth.json)")
    command.add_argument("--customers", type=int, default=12, help="how many customers (default 12)")
    command.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    command.add_argument("--fps", type=float, default=15.0, help="video frame rate (default 15)")
    command.add_argument("--size", default="640x480", help="video size WIDTHxHEIGHT (default 640x480)")
    command.add_argument(
        "--split",
        help="use only rows of this split ('all' for every row; default: valid if labels.csv has splits, else all)",
    )
    command.set_defaults(handler=_simulate)

    command = subparsers.add_parser("score", help="compare a scenario replay's flags with the ground truth")
    command.add_argument("scenario", help="the folder `agecam simulate` wrote")
    command.add_argument("--db", required=True, help="the event log of the replay")
    command.add_argument("--run", type=int, help="run id (default: the latest)")
    command.add_argument("--json", action="store_true", help="print JSON")
    command.set_defaults(handler=_score)
