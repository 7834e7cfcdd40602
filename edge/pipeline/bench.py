"""`agecam bench edge`: throughput of the till pipeline against decode+detect alone, as JSON; `agecam bench model`."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from edge.config import Config
from edge.pipeline.runner import run_source
from edge.vision.age_model import AgeModel
from edge.vision.detector import load_detector
from edge.vision.faces import crop_face
from edge.vision.source import SourceSpec, open_capture

log = logging.getLogger(__name__)


def decode_all(video: str) -> tuple[list, float]:
    """All frames of a clip, and the decode time in seconds."""
    capture = open_capture(SourceSpec("file", video))
    frames, start = [], time.perf_counter()
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames, time.perf_counter() - start


def detector_throughput(config: Config, video: str, loops: int) -> dict:
    detector = load_detector(config)
    frames, decode_s = decode_all(video)
    detector.detect(frames[0])  # first call allocates; keep it out of the timing
    start = time.perf_counter()
    for _ in range(loops):
        for image in frames:
            detector.detect(image)
    detect_s = (time.perf_counter() - start) / loops
    return {
        "frames": len(frames),
        "frame_size": list(frames[0].shape[1::-1]),
        "detection_size": [
            detector.detection_width,
            round(frames[0].shape[0] * detector.detection_width / frames[0].shape[1]),
        ],
        "detect_only_fps": round(len(frames) / detect_s, 2),
        "decode_detect_fps": round(len(frames) / (detect_s + decode_s), 2),
        "decode_ms": round(1000 * decode_s / len(frames), 3),
    }


def pipeline_throughput(config: Config, video: str, loops: int) -> dict:
    frames = faces = inferences = 0
    elapsed = 0.0
    stage_seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for loop in range(loops):
            result = run_source(
                config,
                SourceSpec("file", video),
                fast=True,
                db_path=Path(folder) / "bench.db",
                origin=time.time() + loop * 3600,
            )
            frames, faces, inferences = (
                frames + result.frames,
                faces + result.faces,
                inferences + result.age_inferences,
            )
            elapsed += result.elapsed_s
            for stage, seconds in result.stage_seconds.items():
                stage_seconds[stage] = stage_seconds.get(stage, 0.0) + seconds
            provider = result.model.provider
    age_ms = 1000 * stage_seconds.get("age", 0.0) / max(inferences, 1)
    return {
        "fps": round(frames / elapsed, 2),
        "faces_per_frame": round(faces / frames, 2),
        "age_inferences_per_frame": round(inferences / frames, 3),
        "age_ms_per_face": round(age_ms, 3),
        "stage_ms": {stage: round(1000 * seconds / frames, 3) for stage, seconds in stage_seconds.items()},
        "provider": provider,
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


def run_bench(config: Config, video: str, loops: int) -> dict:
    """Rounds of decode+detect alone, the pipeline, and the pipeline inferring every face, in turn: each
    round's ratios compare passes run under the same machine load, and the median round is reported."""
    rounds, every_face = [], every_face_config(config)
    for _ in range(loops):
        detect = detector_throughput(config, video, 1)
        pipeline = pipeline_throughput(config, video, 1)
        worst = pipeline_throughput(every_face, video, 1)
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
        "loops": loops,
        **median,
        "every_face_vs_decode_detect": _median_round(rounds, "every_face_vs_decode_detect")[
            "every_face_vs_decode_detect"
        ],
        "rounds_pipeline_vs_decode_detect": sorted(r["pipeline_vs_decode_detect"] for r in rounds),
    }


def model_speed(
    config: Config, model_path: Path, video: str, batches: tuple[int, ...] = (1, 8), repeats: int = 30
) -> dict:
    """Milliseconds per face of an age model alone, on real crops from a clip, at each batch size."""
    model = AgeModel(model_path, config.age_model.providers, config.age_model.threads, max(batches))
    detector = load_detector(config)
    frames, _ = decode_all(video)
    crops = [crop_face(image, face, model.info.crop) for image in frames[:10] for face in detector.detect(image)]
    result = {
        "model": str(model_path),
        "precision": model.info.metadata.get("precision", "unknown"),
        "provider": model.provider,
        "bytes": model_path.stat().st_size,
    }
    for batch in batches:
        chosen = (crops * batch)[:batch]
        model.predict(chosen)
        start = time.perf_counter()
        for _ in range(repeats):
            model.predict(chosen)
        result[f"batch{batch}_ms_per_face"] = round(1000 * (time.perf_counter() - start) / (repeats * batch), 3)
    return result
