"""A video file's frame times: each frame's own time stamp, not its index over an average frame rate.

A camera or recorder that lowers its frame rate (a quiet scene, low light, a network recorder that drops
frames) writes a variable-frame-rate file, whose header gives only the average rate. Timing frame N at
N / average put a POS script's sale, timed by the recording's clock, on frames of another moment: a beer
sold at 15 s to an empty till (the customer walked in at 29 s) went to that customer, and no `no_face`
flag was raised.
"""

from __future__ import annotations

import math

import cv2


class FrameTimes:
    """Seconds from the file's first frame, by the decoder's time stamps (CAP_PROP_POS_MSEC, read after each
    frame). A frame without a usable stamp (none, not finite, or not after the previous frame: a broken or
    wrapped stamp) is timed one frame period after the previous one. A looping file goes on from its end."""

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self.last: float | None = None  # the previous frame's time
        self._zero: float | None = None  # the stamp of the current pass's first frame
        self._offset = 0.0  # where the current pass starts (a looping file's later passes)

    def next(self, capture: cv2.VideoCapture) -> float:
        """The time of the frame just read from `capture`."""
        stamp = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        fallback = 0.0 if self.last is None else self.last + self.period
        if not math.isfinite(stamp):
            t = fallback
        else:
            if self._zero is None:
                self._zero = stamp
            t = self._offset + stamp - self._zero
            if self.last is not None and t <= self.last:
                t = fallback
        self.last = t
        return t

    def restart(self) -> None:
        """The file was opened again from its start (a loop): its next pass follows one period after this one."""
        if self.last is not None:
            self._offset = self.last + self.period
        self._zero = None
