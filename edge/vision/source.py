"""Video sources and the capture thread: decoding overlaps inference through a bounded queue."""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.config import SourceConfig, without_password
from edge.errors import SourceError
from edge.vision.frame_times import Decoded, FrameTimes, decode

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 10.0  # longer than a stream's read timeout, so a stalled stream still lets go
STREAM_TIMEOUT_MS = 5000  # per open and per read
SHORT_FILE = 0.9  # of a file's header frame count (an estimate in some containers): less means it was cut short


@dataclass(frozen=True)
class SourceSpec:
    """kind: 'camera' (index or /dev path), 'stream' (rtsp/http URL) or 'file'. Live kinds drop frames
    when processing falls behind and are reopened when lost. A looping file restarts at its end and
    never ends, like a camera (for demos and soak tests)."""

    kind: str
    value: str | int
    loop: bool = False

    @property
    def live(self) -> bool:
        return self.kind != "file"

    def __str__(self) -> str:
        """For log lines, messages and the run's row (which the review app shows): a stream's password out."""
        return without_password(self.value) if self.kind == "stream" else str(self.value)


def parse_source(uri: str, loop: bool = False) -> SourceSpec:
    if loop:
        return SourceSpec("file", uri, loop=True)
    if re.fullmatch(r"\d+", uri):
        return SourceSpec("camera", int(uri))
    if uri.startswith("/dev/"):
        return SourceSpec("camera", uri)
    if re.match(r"^(rtsp|rtsps|rtmp|http|https)://", uri, re.IGNORECASE):
        return SourceSpec("stream", uri)
    return SourceSpec("file", uri)


def open_capture(spec: SourceSpec, width: int | None = None, height: int | None = None) -> cv2.VideoCapture:
    if spec.kind == "file" and not Path(str(spec.value)).is_file():
        raise SourceError(f"video not found: {spec.value}: check the path")
    # Bounded waits on streams: a stalled camera must not hold the capture thread (and shutdown) for 30 s.
    params = (
        [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS]
        if spec.kind == "stream"
        else []
    )
    capture = cv2.VideoCapture(spec.value, cv2.CAP_ANY, params)
    if not capture.isOpened():
        raise SourceError(
            f"cannot open video source {spec}: check that it exists and is a video "
            "(or a camera index, /dev/videoN, or an rtsp:// URL)"
        )
    if width:
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    if height:
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    return capture


def video_seconds(path: str) -> float | None:
    """A video file's length from its header, or None when the file doesn't say (or won't open)."""
    capture = cv2.VideoCapture(path)
    try:
        frames, fps = capture.get(cv2.CAP_PROP_FRAME_COUNT), capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()
    return frames / fps if frames > 0 and 1 <= fps <= 240 else None


def as_bgr(image: np.ndarray) -> np.ndarray:
    """The frame as 3-channel uint8 BGR, which YuNet, the motion check and the age model's crops all need. Some
    camera formats come through OpenCV as one grey channel or with alpha: a grey frame crashed the motion
    check (cvtColor), and a BGRA one failed every age batch (4-channel crops), dropping every sample."""
    if image.dtype != np.uint8:
        image = as_uint8(image)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def as_uint8(image: np.ndarray) -> np.ndarray:
    """A frame of another depth (a 16-bit mono camera, a float frame) stretched from its own range to 0-255.
    YuNet found no face in a uint16 or float32 frame, a float64 one crashed the motion check, and NaN
    pixels gave YuNet infinite face boxes. Its own range, because a 10- or 12-bit sensor fills only part of
    a 16-bit word and floats may be 0-1 or 0-255; non-finite pixels become 0."""
    values = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return cv2.normalize(values, None, 0, 255, cv2.NORM_MINMAX, cv2.CV_8U)


@dataclass(frozen=True)
class Frame:
    index: int
    image: np.ndarray
    t: float  # seconds since the source started: video time for files, wall time for live sources
    decode_ms: float


class FrameGrabber(threading.Thread):
    """Reads frames in its own thread. Files replay at native rate (paced) or as fast as possible
    (`fast`, never dropping). Live sources and paced replays drop the oldest queued frame when the
    consumer is behind, like a real camera, and count the drops."""

    _END = None

    def __init__(self, spec: SourceSpec, config: SourceConfig, fast: bool = False) -> None:
        super().__init__(name="capture", daemon=True)
        self.spec, self.config, self.fast = spec, config, fast
        self.capture = open_capture(spec, config.width, config.height)
        # One frame read ahead: a file frame's time needs the next frame's stamp (FrameTimes: a corrupt one).
        self._ahead: Decoded | None = decode(self.capture)
        if self._ahead is None:
            self.capture.release()
            raise SourceError(f"cannot decode any frame from {spec.value}: the file is damaged or not a video")
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1 <= fps <= 240 else 25.0
        self.times = FrameTimes(self.fps)  # a file's frames are timed by their own stamps (variable frame rates)
        self.frames: queue.Queue[Frame | None] = queue.Queue(maxsize=config.queue_size)
        self.dropped = 0
        self.reconnects = 0
        self.state = "live" if spec.live else "replaying"
        self.error: Exception | None = None  # why the source ended for good, if it did not just end
        self._stop_event = threading.Event()
        self._clock_start = time.monotonic()

    def stop(self) -> None:
        self._stop_event.set()

    def close(self, timeout: float = JOIN_TIMEOUT_S) -> None:
        """Stop and wait for the thread to release the capture. A thread still inside OpenCV when the
        interpreter exits aborts the whole process (SIGABRT), losing the exit code systemd sees."""
        self.stop()
        if self.ident is None:  # never started: the capture opened in __init__ is still ours to release
            self.capture.release()
            return
        self.join(timeout)
        if self.is_alive():
            log.warning("capture thread for %s did not stop within %.0f s", self.spec, timeout)

    def _put(self, frame: Frame) -> None:
        if self.fast and not self.spec.live:
            while not self._stop_event.is_set():
                try:
                    self.frames.put(frame, timeout=0.1)
                    return
                except queue.Full:
                    continue
            return
        while True:
            try:
                self.frames.put_nowait(frame)
                return
            except queue.Full:
                try:
                    self.frames.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _read(self) -> tuple[np.ndarray | None, float, float]:
        """The next image (None at the end or when lost), its decode time in ms and its file time."""
        current, self._ahead = self._ahead, None
        if current is None:
            current = decode(self.capture)
        if current is None:
            return None, 0.0, 0.0
        if self.spec.live:
            return current.image, current.decode_ms, 0.0
        self._ahead = decode(self.capture)
        following = None if self._ahead is None else self._ahead.stamp
        return current.image, current.decode_ms, self.times.next(current.stamp, following)

    def _reopen(self) -> bool:
        """Reopen a lost live source with exponential backoff; False if asked to stop meanwhile."""
        self.state = "reconnecting"
        delay = self.config.reconnect_initial_s
        while not self._stop_event.wait(delay):
            self.capture.release()
            self.reconnects += 1
            try:
                self.capture = open_capture(self.spec, self.config.width, self.config.height)
                log.info("source %s is back after %d attempt(s)", self.spec, self.reconnects)
                self.state = "live"
                return True
            except SourceError:
                log.warning("source %s still unavailable; next try in %.1f s", self.spec, delay)
                delay = min(delay * 2, self.config.reconnect_max_s)
        return False

    def run(self) -> None:
        index = pass_start = 0
        self._clock_start = time.monotonic()
        try:
            while not self._stop_event.is_set():
                image, decode_ms, video_t = self._read()
                if image is None:
                    if self.spec.loop:
                        # A file replaced by one that opens but has no frame reopened it without end, a core busy.
                        if index == pass_start:
                            raise SourceError(f"video {self.spec} has no frame to loop: it was replaced or damaged")
                        pass_start = index
                        self.capture.release()
                        self.capture = open_capture(self.spec)
                        self.times.restart()
                        continue
                    if not self.spec.live:
                        self._check_length(index)
                        break
                    log.warning("source %s lost; reconnecting", self.spec)
                    if not self._reopen():
                        break
                    continue
                t = video_t if not self.spec.live else time.monotonic() - self._clock_start
                if not self.spec.live and not self.fast:
                    self._stop_event.wait(max(0.0, self._clock_start + video_t - time.monotonic()))
                self._put(Frame(index, image, t, decode_ms))
                index += 1
        except Exception as error:  # e.g. a looping file that cannot be reopened: the run must fail, not complete
            self.error = error
            log.error("source %s failed: %s", self.spec, error)
        finally:
            self.state = "ended" if not self._stop_event.is_set() else "stopped"
            self.capture.release()
            self._put_end()

    def _check_length(self, frames: int) -> None:
        """Warn when a file ends well before the frame count in its header: OpenCV stops at the first packet
        it cannot decode, so a damaged or truncated file ended its replay early without a word."""
        expected = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if expected > 0 and frames < SHORT_FILE * expected:
            log.warning(
                "video %s ended after %d of the %d frames its header gives: the rest is damaged or missing",
                self.spec,
                frames,
                expected,
            )

    def _put_end(self) -> None:
        while True:
            try:
                self.frames.put(self._END, timeout=0.1)
                return
            except queue.Full:
                if self._stop_event.is_set():
                    with contextlib.suppress(queue.Empty):
                        self.frames.get_nowait()

    def get(self, timeout: float) -> Frame | None:
        """The next frame, or None if none came within `timeout` (a slow or lost source).
        Raises EOFError once the source has ended or stop() was called."""
        try:
            frame = self.frames.get(timeout=timeout)
        except queue.Empty:
            return None
        if frame is self._END:
            raise EOFError
        return frame

    def __iter__(self) -> Iterator[Frame]:
        """Frames until the source ends or stop() is called."""
        while True:
            try:
                frame = self.get(timeout=1.0)
            except EOFError:
                return
            if frame is not None:
                yield frame
