"""Imports edge first: it switches ONNX Runtime's telemetry off before anything here imports onnxruntime."""

import edge  # noqa: F401
