"""The customer zone: which track dominates a polygon of the frame over a time window.

Presence is the face's area (a fraction of the frame) times the time it was seen, so the customer
standing at the till outweighs a small face passing behind them, or someone queueing at the edge.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_STEP_S = 0.5  # a gap in frames counts at most this long, so a stall doesn't inflate one sighting


@dataclass(frozen=True)
class ZoneFace:
    """A tracked face in one frame, in fractions of the frame: centre and area."""

    track_id: int
    x: float
    y: float
    area: float


@dataclass(frozen=True)
class Association:
    track_id: int
    share: float  # the track's part of all zone presence in the window
    start: float
    end: float
    presence: dict[int, float] = field(default_factory=dict)  # every candidate's presence, for the record
    run_id: int | None = None  # the earlier run whose track and times these are; None: this run's

    def as_dict(self, run_id: int) -> dict:
        """For the record; `run_id` is this run's, for an association made in it."""
        return {
            "track_id": self.track_id,
            "share": round(self.share, 3),
            "window": [round(self.start, 3), round(self.end, 3)],
            "presence": {str(k): round(v, 5) for k, v in sorted(self.presence.items())},
            "run_id": self.run_id if self.run_id is not None else run_id,
        }

    @classmethod
    def from_dict(cls, data: dict, run_id: int) -> Association:
        """An association as an earlier run recorded it (as_dict); `run_id`: that run, if the record lacks it."""
        return cls(
            int(data["track_id"]),
            float(data["share"]),
            *map(float, data["window"]),
            {int(k): float(v) for k, v in data.get("presence", {}).items()},
            int(data.get("run_id", run_id)),
        )


def inside(polygon: list[tuple[float, float]], x: float, y: float) -> bool:
    """Ray casting: is (x, y) inside the polygon?"""
    result = False
    count = len(polygon)
    for index in range(count):
        (x1, y1), (x2, y2) = polygon[index], polygon[(index + 1) % count]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            result = not result
    return result


class ZoneHistory:
    """Sightings of faces inside the zone, kept for `keep_s` seconds."""

    def __init__(self, polygon: list[tuple[float, float]], keep_s: float) -> None:
        self.polygon = polygon
        self.keep_s = keep_s
        self.sightings: deque[tuple[float, int, float]] = deque()  # (t, track id, presence)
        self._last_t: float | None = None

    def observe(self, t: float, faces: list[ZoneFace]) -> None:
        step = 0.0 if self._last_t is None else min(max(t - self._last_t, 0.0), MAX_STEP_S)
        self._last_t = t
        for face in faces:
            if inside(self.polygon, face.x, face.y):
                self.sightings.append((t, face.track_id, face.area * max(step, 1e-3)))
        while self.sightings and self.sightings[0][0] < t - self.keep_s:
            self.sightings.popleft()

    def dominant(self, start: float, end: float, eligible: Callable[[int], bool] | None = None) -> Association | None:
        """The track with the most presence in [start, end] (among the eligible ones), or None.

        Presence is weighted by recency, rising linearly from 0 at `start` to 1 at `end`, so the customer
        who just arrived outweighs the previous one walking away early in the window."""
        presence: dict[int, float] = {}
        span = max(end - start, 1e-6)
        for t, track_id, weight in reversed(self.sightings):  # newest first, so the scan stops at `start`
            if t < start:
                break
            if t <= end and (eligible is None or eligible(track_id)):
                presence[track_id] = presence.get(track_id, 0.0) + weight * max((t - start) / span, 1e-3)
        if not presence:
            return None
        best = max(presence, key=lambda track_id: (presence[track_id], -track_id))
        return Association(best, presence[best] / sum(presence.values()), start, end, presence)
