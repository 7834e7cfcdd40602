"""agecam edge runtime: capture, face detection, tracking, ONNX age estimation, statistics, event log.

This package never imports torch: it runs on a till PC with only OpenCV and ONNX Runtime.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("agecam")  # one version, in pyproject.toml
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
