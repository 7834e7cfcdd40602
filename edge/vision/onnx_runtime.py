"""ONNX Runtime, imported in one place: its telemetry off, and a one-line error naming the install profile
when neither build is installed (the base install carries none: `agecam[cpu]` or `agecam[gpu]` adds one)."""

from __future__ import annotations

from types import ModuleType

from edge.errors import ConfigError

MISSING = (
    "ONNX Runtime is not installed, and the age model needs it: pip install 'agecam[cpu]' "
    "(or 'agecam[gpu]' on a till with an NVIDIA GPU)"
)

ort: ModuleType | None
try:
    import onnxruntime as ort
except ImportError:  # a base install without the cpu or gpu extra
    ort = None
else:
    ort.disable_telemetry_events()  # edge/__init__.py already stopped it from starting; this is belt and braces


def require_onnx_runtime() -> ModuleType:
    """The onnxruntime module, or a ConfigError (exit 2: an install to fix, not a model to replace)."""
    if ort is None:
        raise ConfigError(MISSING)
    return ort
