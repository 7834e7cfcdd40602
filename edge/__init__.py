"""agecam edge runtime: capture, face detection, tracking, ONNX age estimation, statistics, event log.

This package never imports torch: it runs on a till PC with only OpenCV and ONNX Runtime.
"""

__version__ = "0.1.0"
