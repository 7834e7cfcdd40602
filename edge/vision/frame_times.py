"""A video file's frame times: each frame's own time stamp, not its index over an average frame rate.

A camera or recorder that lowers its frame rate (a quiet scene, low light, a network recorder that drops
frames) writes a variable-frame-rate file, whose header gives only the average rate. Timing frame N at
N / average put a POS script's sale, timed by the recording's clock, on frames of another moment: a beer
sold at 15 s to an empty till (the customer walked in at 29 s) went to that customer, and no `no_face`
flag was raised.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Decoded:
    """A frame just decoded, with its decode time in ms and the decoder's time stamp (seconds; NaN: none)."""

    image: np.ndarray
    decode_ms: float
    stamp: float


def decode(capture: cv2.VideoCapture) -> Decoded | None:
    """The capture's next frame, or None at the end or when lost."""
    start = time.perf_counter()
    ok, image = capture.read()
    if not ok:
        return None
    return Decoded(image, (time.perf_counter() - start) * 1000, capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)


class FrameTimes:
    """Seconds from the file's first frame, by the decoder's time stamps (read after each frame). A
    frame without a usable stamp (none, not finite, or not after the previous frame: a broken or wrapped stamp)
    is timed one frame period after the previous one. A stamp ahead of the next frame's, which itself follows
    the previous frame (a glitch in one frame's pts), is corrupt: that frame is timed between its neighbours,
    or it would push every later frame after it. A jump the next frame confirms (a paused camera, dropped
    frames) is kept. A looping file goes on from its end."""

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self.last: float | None = None  # the previous frame's time
        self._zero: float | None = None  # the stamp of the current pass's first frame
        self._offset = 0.0  # where the current pass starts (a looping file's later passes)

    def next(self, stamp: float, following: float | None = None) -> float:
        """The time of a frame from its stamp and the next frame's (None: none, the end of the file)."""
        t = self._time(stamp)
        if t is None or (self.last is not None and t <= self.last):
            t = 0.0 if self.last is None else self.last + self.period
        elif self.last is not None and following is not None:
            after = self._time(following)
            if after is not None and self.last < after <= t:  # the next frame goes back to the previous timeline
                t = min(self.last + self.period, (self.last + after) / 2)
        self.last = t
        return t

    def _time(self, stamp: float) -> float | None:
        """A usable stamp as seconds from the start (the first one of a pass sets where it starts)."""
        if not math.isfinite(stamp):
            return None
        if self._zero is None:
            self._zero = stamp
        return self._offset + stamp - self._zero

    def restart(self) -> None:
        """The file was opened again from its start (a loop): its next pass follows one period after this one."""
        if self.last is not None:
            self._offset = self.last + self.period
        self._zero = None
