"""agecam edge runtime: capture, face detection, tracking, ONNX age estimation, statistics, event log.

This package never imports torch: it runs on a till PC with only OpenCV and ONNX Runtime.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# ONNX Runtime's telemetry starts when onnxruntime is imported: it writes a device id and queues events
# under ~/.cache/Microsoft. A privacy product sends nothing, so it is off before any module here imports
# onnxruntime (edge.vision.onnx_runtime switches off the events too).
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

try:
    __version__ = version("agecam")  # one version, in pyproject.toml
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
