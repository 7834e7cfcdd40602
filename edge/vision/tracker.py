"""Face tracking across frames: greedy matching on box overlap, with a centre-distance fallback for
fast movers at low frame rates. A track not seen for `forget_after_s` ends."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from edge.vision.faces import Face

VELOCITY_SMOOTHING = 0.5  # weight of the newest step in the velocity: detector jitter averages out


@dataclass
class Track:
    track_id: int
    face: Face
    first_seen: float
    last_seen: float
    hits: int = 1
    velocity: tuple[float, float] = (0.0, 0.0)  # of the face centre, pixels per second

    def see(self, face: Face, now: float) -> None:
        """Continue the track with this frame's face, updating its velocity."""
        elapsed = now - self.last_seen
        if elapsed > 0:
            (old_x, old_y), (new_x, new_y) = self.face.center, face.center
            weight = VELOCITY_SMOOTHING if self.hits > 1 else 1.0  # the first step has nothing to average with
            vx, vy = self.velocity
            self.velocity = (
                (1 - weight) * vx + weight * (new_x - old_x) / elapsed,
                (1 - weight) * vy + weight * (new_y - old_y) / elapsed,
            )
        self.face, self.last_seen, self.hits = face, now, self.hits + 1

    def rescale(self, sx: float, sy: float) -> None:
        """Move the track into a frame resized by (sx, sy): the source came back at another resolution."""
        factors = np.array([sx, sy], dtype=np.float32)
        box = self.face.box * np.tile(factors, 2)
        self.face = Face(box=box, landmarks=self.face.landmarks * factors, score=self.face.score)
        self.velocity = (self.velocity[0] * sx, self.velocity[1] * sy)

    def predict(self, now: float) -> Face:
        """Where the face should be at `now`, moving at constant velocity since it was last seen."""
        elapsed = now - self.last_seen
        shift = np.array([self.velocity[0] * elapsed, self.velocity[1] * elapsed], dtype=np.float32)
        box = self.face.box.copy()
        box[:2] += shift
        return Face(box=box, landmarks=self.face.landmarks + shift, score=self.face.score)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    inter_w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    inter_h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = inter_w * inter_h
    union = aw * ah + bw * bh - inter
    return float(inter / union) if union > 0 else 0.0


class FaceTracker:
    def __init__(self, iou_threshold: float = 0.2, max_center_shift: float = 1.0, forget_after_s: float = 2.0):
        self.iou_threshold = iou_threshold
        self.max_center_shift = max_center_shift
        self.forget_after_s = forget_after_s
        self.tracks: dict[int, Track] = {}
        self._ids = itertools.count(1)

    def _match_score(self, track: Track, face: Face) -> float:
        """Higher is better; an overlap match always beats a distance match; 0 means no match."""
        iou = box_iou(track.face.box, face.box)
        if iou >= self.iou_threshold:
            return 1.0 + iou
        (tx, ty), (fx, fy) = track.face.center, face.center
        limit = self.max_center_shift * max(track.face.size, face.size)
        distance = math.hypot(fx - tx, fy - ty)
        size_ratio = min(track.face.size, face.size) / max(track.face.size, face.size)
        if distance > limit or size_ratio < 0.5:
            return 0.0
        return 1.0 - distance / limit if distance < limit else 0.0

    def update(self, faces: list[Face], now: float) -> tuple[list[Track], list[Track]]:
        """Assign this frame's faces to tracks. Returns (tracks seen in this frame, tracks that ended)."""
        pairs = [
            (score, track_id, index)
            for track_id, track in self.tracks.items()
            for index, face in enumerate(faces)
            if (score := self._match_score(track, face)) > 0
        ]
        used_tracks: set[int] = set()
        used_faces: set[int] = set()
        seen: list[Track] = []
        for _, track_id, index in sorted(pairs, reverse=True):
            if track_id in used_tracks or index in used_faces:
                continue
            track = self.tracks[track_id]
            track.see(faces[index], now)
            used_tracks.add(track_id)
            used_faces.add(index)
            seen.append(track)
        for index, face in enumerate(faces):
            if index not in used_faces:
                track = Track(next(self._ids), face, now, now)
                self.tracks[track.track_id] = track
                seen.append(track)
        ended = [track for track in self.tracks.values() if now - track.last_seen > self.forget_after_s]
        for track in ended:
            del self.tracks[track.track_id]
        return seen, ended

    def rescale(self, sx: float, sy: float) -> None:
        """Keep every track through a change of frame size, assuming the same view at another resolution."""
        for track in self.tracks.values():
            track.rescale(sx, sy)

    def end_all(self) -> list[Track]:
        """End every open track (at the end of a replay or on shutdown)."""
        ended = list(self.tracks.values())
        self.tracks.clear()
        return ended
