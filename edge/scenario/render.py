"""`agecam simulate`: renders a scenario plan (edge.scenario.plan) to a till video with real face photos,
and writes its POS script and ground truth. Deterministic for a given seed.

Each customer's photo is blended in with a soft elliptical mask above a plain 'body', walks in from
the right, sways at the till, and walks out to the left, with motion blur while walking, a per-customer
focus blur and exposure, and sensor noise on every frame.
"""

from __future__ import annotations

import json
import logging
import math
import random
from pathlib import Path

import cv2
import numpy as np

from edge.errors import PosError
from edge.pipeline.progress import progress_bar
from edge.scenario.output import VideoFile, staged_folder, write_error
from edge.scenario.plan import (
    POS,
    TRUTH,
    VIDEO,
    WALK_S,
    Visit,
    ground_truth,
    pick_faces,
    plan_visits,
    pos_script,
    read_faces,
)

log = logging.getLogger(__name__)


class Actor:
    """One customer's appearance, prepared once: face patch (sharp and motion-blurred), mask, body colour."""

    def __init__(self, visit: Visit, side: int, rng: random.Random, walk_blur_px: int) -> None:
        photo = cv2.imread(visit.file, cv2.IMREAD_COLOR)
        if photo is None:
            raise PosError(f"cannot read the face photo {visit.file}: check the images/ folder")
        patch = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
        patch = np.clip(patch * rng.uniform(0.85, 1.1), 0, 255)
        sigma = rng.uniform(0.0, 1.2)
        self.patch = cv2.GaussianBlur(patch, (0, 0), sigma) if sigma > 0.3 else patch
        kernel = np.full((1, max(1, walk_blur_px)), 1.0 / max(1, walk_blur_px), np.float32)
        self.walking = cv2.filter2D(self.patch, -1, kernel)
        mask = np.zeros((side, side), np.float32)
        cv2.ellipse(mask, (side // 2, side // 2), (int(side * 0.46), int(side * 0.5)), 0, 0, 360, 1.0, -1)
        self.mask = cv2.GaussianBlur(mask, (0, 0), side * 0.04)[..., None]
        self.body = tuple(int(rng.uniform(40, 200)) for _ in range(3))
        self.visit, self.side = visit, side
        self.phase = rng.uniform(0, 2 * math.pi)

    def position(self, t: float, width: int, height: int) -> tuple[float, float, bool] | None:
        """FacePhoto centre at time t and whether walking, or None when off screen."""
        v, centre, off = self.visit, width / 2, self.side
        if t < v.enter or t > v.leave + WALK_S:
            return None
        if t < v.arrive:
            x, walking = width + off / 2 + (centre - width - off / 2) * (t - v.enter) / WALK_S, True
        elif t <= v.leave:
            x, walking = centre + 10 * math.sin(2.5 * t + self.phase), False
        else:
            x, walking = centre + (-off / 2 - centre) * (t - v.leave) / WALK_S, True
        return x, height * 0.4 + 4 * math.sin(3.1 * t + self.phase), walking

    def draw(self, frame: np.ndarray, x: float, y: float, walking: bool) -> None:
        side, height, width = self.side, frame.shape[0], frame.shape[1]
        cv2.ellipse(frame, (int(x), int(y + side * 1.25)), (int(side * 0.9), int(side * 0.8)), 0, 0, 360, self.body, -1)
        left, top = round(x - side / 2), round(y - side / 2)
        x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + side, width), min(top + side, height)
        if x0 >= x1 or y0 >= y1:
            return
        patch = (self.walking if walking else self.patch)[y0 - top : y1 - top, x0 - left : x1 - left]
        mask = self.mask[y0 - top : y1 - top, x0 - left : x1 - left]
        region = frame[y0:y1, x0:x1]
        region[:] = region * (1 - mask) + patch * mask


def background(width: int, height: int, rng: random.Random) -> np.ndarray:
    """A plain store-like backdrop: a wall gradient, shelves of coloured boxes, a counter."""
    gradient = np.linspace(150, 95, height, dtype=np.float32)[:, None, None]
    image = np.repeat(np.repeat(gradient, width, axis=1), 3, axis=2)
    for shelf in range(3):
        y = int(height * (0.12 + 0.22 * shelf))
        cv2.rectangle(image, (0, y), (width, y + 6), (70, 70, 80), -1)
        for x in range(0, width, 24):
            colour = tuple(rng.uniform(60, 190) for _ in range(3))
            cv2.rectangle(image, (x + 3, y - rng.randint(16, 34)), (x + 19, y), colour, -1)
    cv2.rectangle(image, (0, int(height * 0.86)), (width, height), (90, 85, 80), -1)
    return cv2.GaussianBlur(image, (0, 0), 1.0)


def render(visits: list[Visit], out: Path, fps: float, width: int, height: int, seed: int, shown: Path) -> int:
    rng = random.Random(seed)
    side = int(height * 0.36)
    walk_blur = int((width / 2 + side) / (WALK_S * fps) * 0.35)
    actors = [Actor(visit, int(side * rng.uniform(0.9, 1.1)), rng, walk_blur) for visit in visits]
    backdrop = background(width, height, rng)
    noise = np.random.default_rng(seed)
    end = visits[-1].leave + WALK_S + 0.5
    frames = int(end * fps)
    bar = progress_bar(frames, "simulate", "frame")
    with VideoFile(out, fps, (width, height), shown) as video:
        try:
            for index in range(frames):
                bar.update()
                t = index / fps
                frame = backdrop.copy()
                for actor in actors:
                    if (where := actor.position(t, width, height)) is not None:
                        actor.draw(frame, *where)
                frame += noise.standard_normal(frame.shape, dtype=np.float32) * 3.0
                video.write(np.clip(frame, 0, 255).astype(np.uint8))
        finally:
            bar.close()
        video.commit()
    return frames


def simulate(
    faces_dir: Path, out: Path, count: int, seed: int, fps: float, size: tuple[int, int], split: str | None
) -> dict:
    """`split` None: the folder's valid rows, or every row when it has no splits (see read_faces)."""
    rng = random.Random(seed)
    faces, split = read_faces(faces_dir, split)
    visits = plan_visits(pick_faces(faces, count, rng), rng)
    settings = {"faces": str(faces_dir), "split": split, "customers": count, "seed": seed, "fps": fps, "size": size}
    events = pos_script(visits)
    # Written whole or not at all: a failure midway leaves a previous scenario in `out` as it was.
    with staged_folder(out, (VIDEO, POS, TRUTH)) as staging:
        frames = render(visits, staging / VIDEO, fps, *size, seed, out / VIDEO)
        _write_text(staging, out, POS, "".join(json.dumps(event) + "\n" for event in events))
        _write_text(staging, out, TRUTH, json.dumps(ground_truth(visits, settings), indent=1))
    return {"video": str(out / VIDEO), "frames": frames, "seconds": round(frames / fps, 1), "events": len(events)}


def _write_text(staging: Path, out: Path, name: str, text: str) -> None:
    try:
        (staging / name).write_text(text)
    except OSError as error:
        raise write_error(out / name, error) from None
