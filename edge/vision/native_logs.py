"""OpenCV's and FFmpeg's own log output, which native code writes straight to stderr.

They print lines such as `moov atom not found` or `Camera index out of range` before agecam's one-line
error, which already says what failed and what to do. The CLI silences them unless the user asked for
DEBUG logs or set OpenCV's own variables.
"""

from __future__ import annotations

import os

import cv2
import cv2.utils.logging

FFMPEG_QUIET = "-8"  # AV_LOG_QUIET


def set_native_logs(verbose: bool) -> None:
    """Silence OpenCV's and FFmpeg's messages (verbose: leave their defaults); an explicit setting in the
    environment wins. FFmpeg reads its variable when the first video opens, so this must run before that."""
    if verbose:
        return
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", FFMPEG_QUIET)
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
