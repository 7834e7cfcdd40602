"""`agecam bench edge`: throughput of the till pipeline against decode+detect alone, as JSON; `agecam bench model`."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from edge.config import Config
from edge.errors import SourceError
from edge.pipeline.frame import FrameResult
from edge.pipeline.runner import StopSignal, run_source
from edge.store.eventlog import EventLog
from edge.vision.age_model import AgeModel
from edge.vision.detector import load_detector
from edge.vision.faces import crop_face
from edge.vision.source import SourceSpec, open_capture

log = logging.getLogger(__name__)


CROP_FRAMES = 10  # bench model times the age model on the faces of a clip's first frames


def first_frames(video: str, count: int) -> list[np.ndarray]:
    """The first `count` frames of a clip (fewer if it is shorter), read no further: bench model decoded the
    whole clip to use ten frames, all of a long clip's frames held in memory at once (gigabytes at 1080p)."""
    capture = open_capture(SourceSpec("file", video))
    frames: list[np.ndarray] = []
    try:
        while len(frames) < count:
            ok, image = capture.read()
            if not ok:
                break
            frames.append(image)
    finally:
        capture.release()
    return frames


def count_frames(video: str) -> int:
    capture = open_capture(SourceSpec("file", video))
    frames = 0
    while capture.grab():
        frames += 1
    capture.release()
    return frames


MIN_FRAMES = 600  # a 41-frame clip swung the ratio 0.65-1.12 between rounds; whole replays of it up to this


def detector_throughput(config: Config, video: str, min_frames: int = 0) -> dict:
    """Decode and detect every frame, replaying the whole clip until at least `min_frames` were seen."""
    detector = load_detector(config)
    frames, decode_s, detect_s = 0, 0.0, 0.0
    first = None
    while frames == 0 or frames < min_frames:
        capture = open_capture(SourceSpec("file", video))
        while True:
            start = time.perf_counter()
            ok, image = capture.read()
            decoded = time.perf_counter()
            if not ok:
                break
            if first is None:
                first = image
                detector.detect(image)  # first call allocates; keep it out of the timing
                decoded = time.perf_counter()
            detector.detect(image)
            decode_s, detect_s = decode_s + decoded - start, detect_s + time.perf_counter() - decoded
            frames += 1
        capture.release()
    assert first is not None
    return {
        "frames": frames,
        "frame_size": list(first.shape[1::-1]),
        "detection_size": [detector.detection_width, round(first.shape[0] * detector.detection_width / first.shape[1])],
        "detect_only_fps": round(frames / detect_s, 2),
        "decode_detect_fps": round(frames / (detect_s + decode_s), 2),
        "decode_ms": round(1000 * decode_s / frames, 3),
    }


class FrameLimit:
    """Run hooks that stop a looping replay after `frames` frames (edge.pipeline.runner.RunHooks)."""

    def __init__(self, frames: int, stop: StopSignal) -> None:
        self.frames, self.stop, self.seen = frames, stop, 0

    def start(self, event_log: EventLog, run_id: int, origin: float) -> None:
        pass

    def on_frame(self, result: FrameResult) -> None:
        self.seen += 1
        if self.seen >= self.frames:
            self.stop.set()

    def on_idle(self) -> None:
        pass

    def finish(self, status: str = "completed") -> None:
        pass


def pipeline_throughput(config: Config, video: str, frames: int, clip_frames: int) -> dict:
    """The pipeline over `frames` frames: the clip replayed whole, as often as that takes."""
    stop = StopSignal()
    with tempfile.TemporaryDirectory() as folder:
        result = run_source(
            config,
            SourceSpec("file", video, loop=frames > clip_frames),
            fast=True,
            db_path=Path(folder) / "bench.db",
            stop=stop,
            hooks=FrameLimit(frames, stop),
        )
    age_ms = 1000 * result.stage_seconds.get("age", 0.0) / max(result.age_inferences, 1)
    return {
        "frames": result.frames,
        "fps": round(result.frames / result.elapsed_s, 2),
        "faces_per_frame": round(result.faces / result.frames, 2),
        "full_detections_per_frame": round(result.full_detections / result.frames, 3),
        "age_inferences_per_frame": round(result.age_inferences / result.frames, 3),
        "age_ms_per_face": round(age_ms, 3),
        "stage_ms": {stage: round(1000 * s / result.frames, 3) for stage, s in result.stage_seconds.items()},
        "provider": result.model.provider,
    }


def every_face_config(config: Config) -> Config:
    """The same config with sampling never stopping: the worst case, one inference per face per frame."""
    every = config.model_copy(deep=True)
    every.customer.max_samples = 1_000_000
    every.customer.stable_window = 1_000_000
    every.customer.min_quality = 0.0
    every.customer.sample_interval_s = 0.0
    return every


def _median_round(rounds: list[dict], key: str) -> dict:
    """The round whose `key` ratio is the median one (rounds sorted by it)."""
    return sorted(rounds, key=lambda r: r[key])[len(rounds) // 2]


def run_bench(config: Config, video: str, loops: int, min_frames: int = MIN_FRAMES) -> dict:
    """Rounds of decode+detect alone, the pipeline, and the pipeline inferring every face, in turn: each
    round's ratios compare passes run under the same machine load, and the median round is reported.
    Each pass replays the whole clip until it has seen at least `min_frames` frames."""
    rounds, every_face = [], every_face_config(config)
    clip_frames = count_frames(video)
    frames = clip_frames * max(1, -(-min_frames // clip_frames))
    for _ in range(loops):
        detect = detector_throughput(config, video, frames)
        pipeline = pipeline_throughput(config, video, frames, clip_frames)
        worst = pipeline_throughput(every_face, video, frames, clip_frames)
        rounds.append(
            {
                **detect,
                "pipeline": pipeline,
                "pipeline_every_face": worst,
                "pipeline_vs_decode_detect": round(pipeline["fps"] / detect["decode_detect_fps"], 3),
                "every_face_vs_decode_detect": round(worst["fps"] / detect["decode_detect_fps"], 3),
            }
        )
    median = _median_round(rounds, "pipeline_vs_decode_detect")
    return {
        "video": video,
        "model": str(config.path_setting("age_model", "path")),
        "detection_interval": config.detector.interval,
        "loops": loops,
        "clip_frames": clip_frames,
        **median,
        "every_face_vs_decode_detect": _median_round(rounds, "every_face_vs_decode_detect")[
            "every_face_vs_decode_detect"
        ],
        "rounds_pipeline_vs_decode_detect": sorted(r["pipeline_vs_decode_detect"] for r in rounds),
    }


def model_speed(
    config: Config, model_path: Path, video: str, batches: tuple[int, ...] = (1, 8), repeats: int = 30
) -> dict:
    """Milliseconds per face of an age model alone, on real crops from a clip, at each batch size (each
    warmed up first). With padded batches (a GPU, or age_model.batch_padding: on) the same batches also
    go through plain session runs, to show what padding and IO binding cost or save once warm."""
    settings = config.age_model
    model = AgeModel(
        model_path,
        settings.providers,
        settings.threads,
        max(batches),
        batch_padding=settings.batch_padding,
        remedy="check the MODEL paths given to agecam bench model",
    )
    detector = load_detector(config)
    frames = first_frames(video, CROP_FRAMES)
    crops = [crop_face(image, face, model.info.crop) for image in frames for face in detector.detect(image)]
    if not crops:  # a ZeroDivisionError traceback before
        raise SourceError(
            f"{video}: no face in its first {CROP_FRAMES} frames to time the model on: give a clip with faces"
        )
    result = {
        "model": str(model_path),
        "precision": model.info.metadata.get("precision", "unknown"),
        "provider": model.provider,
        "bytes": model_path.stat().st_size,
        "padded": model.runner is not None,
    }
    for batch in batches:
        result[f"batch{batch}_ms_per_face"] = _ms_per_face(model, (crops * batch)[:batch], repeats)
    if model.runner is not None:
        runner, model.runner = model.runner, None
        for batch in batches:
            result[f"unpadded_batch{batch}_ms_per_face"] = _ms_per_face(model, (crops * batch)[:batch], repeats)
        model.runner = runner
    return result


def _ms_per_face(model: AgeModel, crops: list, repeats: int) -> float:
    model.predict(crops)  # the first run of a shape sets the provider up for it; keep it out of the timing
    start = time.perf_counter()
    for _ in range(repeats):
        model.predict(crops)
    return round(1000 * (time.perf_counter() - start) / (repeats * len(crops)), 3)
