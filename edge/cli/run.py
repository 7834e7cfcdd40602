"""CLI subcommands of the till runtime: run, replay, record, config."""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import yaml

from edge.challenge.events import load_script
from edge.challenge.link import PosLink
from edge.cli.common import event_log_option, load, path_option
from edge.cli.fleet import till_services
from edge.cli.last_good import LastGood, remove_copies
from edge.config import Config
from edge.errors import ConfigError, DetectorError, ModelError, SourceError, StateError
from edge.pipeline.progress import ReplayProgress, logs_above_bars, on_terminal
from edge.pipeline.runner import StopSignal, run_source
from edge.pipeline.summary import build_summary, format_summary
from edge.scenario.output import VideoFile
from edge.store.queries import run_alerts
from edge.vision.age_model import AgeModel, config_remedy, load_age_model
from edge.vision.detector import detector_file, load_detector
from edge.vision.source import SourceSpec, open_capture, parse_source, video_seconds

log = logging.getLogger("agecam")
STATUS_LOG_EVERY_S = 60.0
START_RANGE = (0.0, datetime(3000, 1, 1, tzinfo=UTC).timestamp())  # --start: 1970 to 2999


def parse_start(text: str | None) -> float | None:
    if text is None:
        return None
    example = "2026-11-22T09:00:00+00:00"
    try:
        moment = datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError):
        raise ConfigError(f"--start {text!r} is not an ISO date-time such as {example}") from None
    # The log writes every time as a UTC date-time: a start late in year 9999 failed at the first customer
    # (a traceback, with the run already in the log).
    if not START_RANGE[0] <= moment < START_RANGE[1]:
        raise ConfigError(f"--start {text!r}: give a time from 1970 to 2999, such as {example}")
    return moment


def _replay(args: argparse.Namespace) -> int:
    config = load(args)
    config.fleet.enabled = False  # a replay is a test or a diagnosis: never the chain's statistics
    origin = parse_start(args.start)
    link = PosLink(config, load_script(path_option(args.pos, "--pos"))) if args.pos is not None else None
    progress = ReplayProgress(video_seconds(args.video) if on_terminal() else None, link)
    with StopSignal().installed() as stop, logs_above_bars():
        result = run_source(
            config,
            SourceSpec("file", args.video),
            fast=args.fast,
            db_path=Path(args.db) if args.db else None,
            origin=origin,
            stop=stop,
            hooks=progress,
        )
    summary = build_summary(result, config.policy.threshold)
    if link:
        summary["pos"] = {
            **link.summary(),
            "threshold": config.policy.threshold,
            "config": config.origin,
            "alerts_and_flags": run_alerts(result.db_path, result.run_id),
        }
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


class StatusLog:
    """The status line a live run logs: at most one a minute, and at once when the source changes state
    (lost, reconnecting, back). The heartbeat calls it every 10 s, as often as it updates systemd's STATUS=;
    logging each call (with its POS line) was about 17,000 journal lines a day per till."""

    def __init__(
        self, link: PosLink | None, every_s: float = STATUS_LOG_EVERY_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.link, self.every_s, self.clock = link, every_s, clock
        self.next_at, self.source = 0.0, ""

    def __call__(self, status: dict) -> None:
        now = self.clock()
        if now < self.next_at and status["source"] == self.source:
            return
        self.next_at, self.source = now + self.every_s, status["source"]
        log.info(
            "status: %(fps).1f fps, %(frames)d frames, %(customers)d customers, %(dropped)d dropped, source %(source)s",
            status,
        )
        if self.link:
            log.info("POS: %s", ", ".join(f"{value} {key}" for key, value in self.link.summary().items()))


def _run(args: argparse.Namespace) -> int:
    """Runs until SIGTERM or Ctrl-C. SIGHUP stops the run cleanly and starts a new one with the config read
    again (open POS transactions carry over); a config that no longer loads keeps the previous one."""
    config = load(args)
    last_good = LastGood()
    last_good.remember(config)
    with StopSignal().installed() as stop:
        while _run_once(args, config, stop) and stop.rearm():
            config = _reload(args, config, last_good)
    return 0


def _run_once(args: argparse.Namespace, config: Config, stop: StopSignal) -> bool:
    """One run; True if it stopped for a reload."""
    spec = parse_source(args.source or config.source.uri, loop=args.loop or config.source.loop)
    link = PosLink(config, serve=True) if config.pos.enabled else None
    status_log = StatusLog(link)
    with till_services(config, link) as (hooks, on_status):

        def report(status: dict) -> None:
            status_log(status)
            on_status(status, link.summary() if link else None)

        # Recorded as 'live' whatever the source: a file given to `agecam run` is a stand-in for a camera.
        result = run_source(config, spec, stop=stop, on_status=report, hooks=hooks, mode="live")
    log.info("run %d %s after %d frames", result.run_id, result.status, result.frames)
    return stop.reload


def _reload(args: argparse.Namespace, config: Config, last_good: LastGood) -> Config:
    """The config read again, and its models loaded once to check them: a reload naming a missing or broken
    model (or detector) ended the till (exit 4 or 5), and systemd's restarts then failed the same way. Where
    the previous config's model or detector file was replaced by a broken one too, the till runs the one it
    last loaded (edge/cli/last_good.py)."""
    try:
        fresh = load(args)
        load_detector(fresh)
        load_age_model(fresh)  # released at once: the new run loads its own
    except (ConfigError, ModelError, DetectorError) as error:
        return last_good.fallback(config, error) or config  # none: the run refuses it (exit 4 or 5), as before
    log.info("reload: configuration %s read again; starting a new run", fresh.origin)
    last_good.remember(fresh)
    remove_copies(fresh)
    return fresh


def _record(args: argparse.Namespace) -> int:
    """The file appears only once whole: a failure midway (a full disk, a bad source) leaves a previous one as
    it was. SIGTERM or Ctrl-C ends the recording early, keeping what was recorded (exit 0)."""
    config = load(args)
    out = Path(args.out)
    if out.suffix.lower() not in (".mp4", ".avi", ".mkv"):
        raise ConfigError(f"{out}: give the output a .mp4, .avi or .mkv name")
    if not (math.isfinite(args.seconds) and args.seconds > 0):  # nan or 0 wrote an empty file, inf never ended
        raise ConfigError(f"--seconds {args.seconds}: give a number of seconds above 0, such as 60")
    if not out.parent.is_dir():  # before the source, which may take long to open
        raise StateError(f"cannot write {out}: its folder {out.parent} does not exist; create it first")
    spec = parse_source(args.source)
    capture = open_capture(spec, config.source.width, config.source.height)
    try:
        frames, fps = _record_capture(capture, spec, out, args.seconds)
    finally:
        capture.release()
    log.info("recorded %d frames (%.1f s at %.1f fps) from %s to %s", frames, frames / fps, fps, spec, out)
    return 0


def _record_capture(capture: cv2.VideoCapture, spec: SourceSpec, out: Path, seconds: float) -> tuple[int, float]:
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if 1 <= fps <= 240 else 15.0
    ok, image = capture.read()
    if not ok:
        raise SourceError(f"cannot read a frame from {spec}: check the source")
    height, width = image.shape[:2]
    first_at, held = time.monotonic(), image
    with StopSignal().installed() as stop, VideoFile(out, fps, (width, height)) as video:
        deadline = time.monotonic() + seconds  # a camera by the clock, a file by its frames
        done = (lambda: time.monotonic() >= deadline) if spec.live else (lambda: video.frames >= seconds * fps)
        # The frame read above always goes in: a camera's --seconds that ran out while the file was being
        # made, or a signal then, committed a file without a frame (exit 0), over any previous one.
        while ok and not (video.frames and (stop.event.is_set() or done())):
            if image.shape[:2] != (height, width):  # a stream that came back at another size
                image = cv2.resize(image, (width, height))
            slot = int((time.monotonic() - first_at) * fps) if spec.live else video.frames
            held = _write_until(video, held, image, slot)
            ok, image = capture.read()
        video.commit()
        if stop.event.is_set():
            log.info("recording stopped by a signal: keeping the %d frames recorded so far", video.frames)
        return video.frames, fps


def _write_until(video: VideoFile, held: np.ndarray, image: np.ndarray, slot: int) -> np.ndarray:
    """Write `image` at frame `slot` of the constant-rate file, the `held` (previous) frame repeated until then;
    returns the frame now held. A camera's frames are placed by their arrival: a 5 fps stream that says 25 fps
    (or that a slow link thins out) made a file five times too short, so a POS script timed by the recording's
    clock missed its customers. A frame that comes a little early (jitter, a burst) takes the next slot; only
    one that finds the file more than a frame ahead of the clock (a camera faster than the file) is dropped."""
    while video.frames < slot:
        video.write(held)
    if video.frames <= slot + 1:
        video.write(image)
    return image


def _config_check(args: argparse.Namespace) -> int:
    """The settings, and that the age model and detector they name load (systemd/install.sh relies on it):
    exit 4 or 5 with one line, as a run would end."""
    config = load(args)
    path = config.path_setting("age_model", "path")
    model = AgeModel(path, ["CPUExecutionProvider"], threads=1, remedy=config_remedy(config))
    detector = detector_file(config)
    load_detector(config)
    print(f"ok: {config.origin}")
    print(f"  age model: {model.path} ({model.info.describe()})")
    print(f"  detector: {detector}")
    return 0


def _config_show(args: argparse.Namespace) -> int:
    print(yaml.safe_dump(load(args).model_dump(), sort_keys=False), end="")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    replay = subparsers.add_parser("replay", help="process a video file and print a summary")
    replay.add_argument("video", help="a video file (mp4, avi, gif, ...)")
    replay.add_argument("--fast", action="store_true", help="as fast as possible (default: the file's frame rate)")
    replay.add_argument("--json", action="store_true", help="print the summary as JSON")
    replay.add_argument("--db", type=event_log_option, help="event log file (default: STATE_DIR/agecam.db)")
    replay.add_argument("--start", help="wall-clock time of the first frame, ISO 8601 (default: now)")
    replay.add_argument("--pos", metavar="EVENTS.jsonl", help="POS events to replay, each with t (video seconds)")
    replay.set_defaults(handler=_replay)

    run = subparsers.add_parser("run", help="process a live camera or stream until stopped (SIGTERM/Ctrl-C)")
    run.add_argument("--source", help="camera index, /dev/videoN, rtsp:// or http:// URL (default: source.uri)")
    run.add_argument("--loop", action="store_true", help="replay a video file source forever (source.loop)")
    run.set_defaults(handler=_run)

    record = subparsers.add_parser("record", help="save a source to a video file, for later replay")
    record.add_argument("source", help="camera index, /dev/videoN, URL or file")
    record.add_argument("out", help="output file (.mp4, .avi or .mkv)")
    record.add_argument("--seconds", type=float, required=True, help="how long to record")
    record.set_defaults(handler=_record)

    config = subparsers.add_parser("config", help="validate or show the effective configuration")
    actions = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    actions.add_parser(
        "check",
        help="validate the config, and load the age model and detector it names (exit 2, 4 or 5 if bad)",
    ).set_defaults(handler=_config_check)
    actions.add_parser("show", help="print the effective config with all defaults").set_defaults(handler=_config_show)
